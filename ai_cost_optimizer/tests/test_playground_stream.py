import json
import time

from odoo import http
from odoo.tests import HttpCase, new_test_user, tagged

from .common import AiCostCase, FakeProviderMixin

# Cut by the fake provider into pieces of three words, one event each.
ANSWER = "Bonjour, voici la traduction: good morning means bonjour."
CHUNK_DELAY = 0.2


@tagged("post_install", "-at_install")
class TestPlaygroundStream(FakeProviderMixin, HttpCase):
    """The playground's streaming route over real HTTP, as the browser reads it: the answer arrives in pieces
    while the provider (the fake one on 127.0.0.1) still writes, the call leaves one priced usage row that the
    playground shows, and a refused or broken call answers a clear message and is recorded all the same."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        groups = "base.group_user,ai_cost_optimizer.group_ai_cost_user"
        cls.user = new_test_user(cls.env, login="ai_stream_user", groups=groups)
        cls.colleague = new_test_user(cls.env, login="ai_stream_colleague", groups=groups)
        cls.outsider = new_test_user(cls.env, login="ai_stream_outsider", groups="base.group_user")
        cls.provider = cls.env["ai.service.provider"].create(
            AiCostCase._provider_vals(cls.fake, "openai_compatible", name="Stream provider")
        )
        # The fake provider is the only one that can answer, whatever the recommendation.
        (cls.env["ai.service.provider"].search([]) - cls.provider).api_key = False
        cls.env.company.ai_default_provider_id = cls.provider
        cls.env.company.ai_response_cache = False

    def setUp(self):
        super().setUp()
        self.fake.set_reply(ANSWER)
        self.playground = self.env["ai.cost.playground"].with_user(self.user).create({
            "prompt": "Translate 'good morning' to French.", "provider_id": self.provider.id,
        })

    def _post(self, login, playground_id):
        """Open the route as `login`, the body left unread (stream=True)."""
        self.authenticate(login, login)
        return self.opener.post(
            f"{self.base_url()}/ai_cost/playground/{playground_id}/stream",
            data={"csrf_token": http.Request.csrf_token(self)}, stream=True, timeout=30,
        )

    @staticmethod
    def _events(response):
        """The server-sent events of `response`, as (arrival time, name, data), read as the bytes come."""
        events, buffer = [], b""
        for piece in response.iter_content(chunk_size=None):
            arrived = time.monotonic()
            buffer += piece
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                name, data = (line.split(b": ", 1)[1] for line in block.split(b"\n"))
                events.append((arrived, name.decode(), json.loads(data)))
        return events

    def _rows(self):
        return self.env["ai.token.usage"].search([("provider_id", "=", self.provider.id)])

    def test_the_answer_streams_to_the_browser(self):
        self.fake.set_chunk_delay(CHUNK_DELAY)
        response = self._post("ai_stream_user", self.playground.id)
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.headers["Content-Type"].startswith("text/event-stream"))
        events = self._events(response)
        chunks = [(arrived, data["text"]) for arrived, name, data in events if name == "chunk"]
        self.assertGreater(len(chunks), 1)
        self.assertEqual("".join(text for _arrived, text in chunks), ANSWER)
        # Each piece came as the provider wrote it, not all at once when it had finished.
        self.assertGreater(chunks[-1][0] - chunks[0][0], (len(chunks) - 1) * CHUNK_DELAY * 0.5)
        self.assertEqual([name for _arrived, name, _data in events], ["chunk"] * len(chunks) + ["done"])
        row = self._rows()
        self.assertEqual(len(row), 1)
        self.assertEqual((row.status, row.operation, row.kind, row.user_id), ("ok", "playground", "chat", self.user))
        self.assertGreater(row.cost_usd, 0)
        self.assertEqual(events[-1][2], {"usage_id": row.id, "cost_usd": row.cost_usd})
        self.assertTrue(self.fake.requests[-1]["json"]["stream"])
        # The playground shows the recorded call, as after Send.
        self.env.invalidate_all()
        self.assertEqual(
            (self.playground.state, self.playground.answer, self.playground.usage_id), ("sent", ANSWER, row)
        )
        self.assertAlmostEqual(self.playground.actual_cost_usd, row.cost_usd, places=12)

    def test_a_refused_call_says_why_and_leaves_its_row(self):
        self.env["ai.cost.budget"].create({
            "name": "Stream cap", "budget_amount": 0.000001, "provider_ids": self.provider.ids,
        })
        response = self._post("ai_stream_user", self.playground.id)
        self.assertEqual(response.status_code, 200)
        events = self._events(response)
        self.assertEqual([name for _arrived, name, _data in events], ["error"])
        self.assertIn("Stream cap", events[0][2]["message"])
        self.assertNotIn("Traceback", events[0][2]["message"])
        self.assertEqual(self._rows().mapped("status"), ["blocked"])
        self.assertEqual(self.fake.requests, [], "a blocked call reaches no provider")
        self.env.invalidate_all()
        self.assertEqual(self.playground.state, "draft")

    def test_a_broken_stream_says_why_and_is_recorded(self):
        self.env.company.ai_fallback_on_failure = False
        self.fake.queue_responses([{"disconnect_after": 2}])  # the role chunk, then one piece of text
        events = self._events(self._post("ai_stream_user", self.playground.id))
        self.assertEqual([name for _arrived, name, _data in events], ["chunk", "error", "done"])
        self.assertIn("Stream provider", events[1][2]["message"])
        row = self._rows()
        self.assertEqual((len(row), row.status), (1, "error"))
        self.assertGreater(row.cost_usd, 0, "the piece received is paid for")
        self.env.invalidate_all()
        self.assertEqual((self.playground.usage_id, self.playground.answer), (row, events[0][2]["text"]))

    def test_only_the_owner_streams_the_playground(self):
        for login, status in (("ai_stream_colleague", 404), ("ai_stream_outsider", 403)):
            with self.subTest(login):
                response = self._post(login, self.playground.id)
                self.assertEqual(response.status_code, status)
                self.assertEqual(response.headers["Content-Type"], "application/json")
                self.assertTrue(response.json()["error"]["message"])
        response = self._post("ai_stream_user", self.playground.id + 1000)
        self.assertEqual(response.status_code, 404)
        self.assertEqual(self.fake.requests, [])
        self.assertFalse(self._rows())

    def test_stream_tour(self):
        """In the browser: Stream shows the answer growing, then the form shows the recorded call."""
        self.fake.set_chunk_delay(CHUNK_DELAY)
        self.start_tour(
            "/odoo/action-ai_cost_optimizer.action_ai_cost_playground", "ai_cost_playground_stream_tour",
            login="ai_stream_user",
        )
        row = self._rows()
        self.assertEqual((len(row), row.status, row.completion_text), (1, "ok", ANSWER))
