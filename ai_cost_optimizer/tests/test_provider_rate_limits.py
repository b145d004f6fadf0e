"""The providers' own rate limits (DESIGN section 13): the headers of every answer, both protocols, calls and
streams, kept on the provider and shown on its form; while a provider reports no room left, the next calls go
to the fallback before a request is sent to it, until the time it named; a 429 with its headers marks it so;
and none of it costs a write per call."""

import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from unittest.mock import patch

from odoo import SUPERUSER_ID, api, fields, sql_db
from odoo.fields import Command
from odoo.tests import Form, tagged
from odoo.tools import SQL

from ..exceptions import AiProviderError
from .common import AiCostCase, CommittedProviderCase

MESSAGES = [{"role": "user", "content": "Qualify lead 42: ACME, 500 seats, budget approved."}]
PATHS = {"anthropic": "/v1/messages", "openai_compatible": "/v1/chat/completions"}
# An answer that says nothing is left until half a minute from now.
EXHAUSTED = {"rate_limits": {"requests": 0, "requests_reset": 30}}


@contextmanager
def provider_updates():
    """The UPDATE statements of ai_service_provider any cursor of this process sends meanwhile."""
    sent = []
    execute = sql_db.Cursor.execute

    def recording(cursor, query, params=None, log_exceptions=True):
        text = str(getattr(query, "code", query))
        if text.lstrip().upper().startswith("UPDATE") and "ai_service_provider" in text:
            sent.append(text)
        return execute(cursor, query, params, log_exceptions)

    with patch.object(sql_db.Cursor, "execute", recording):
        yield sent


@tagged("post_install", "-at_install")
class TestProviderRateLimits(AiCostCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        (cls.claude | cls.gpt).write({"max_retries": 1, "retry_backoff": 0.001})
        cls.env.company.ai_fallback_on_failure = True

    def send(self, provider, **kwargs):
        return self.env["ai.service"].send_message(MESSAGES, provider=provider, **kwargs)

    def paths(self, since):
        return [request["path"] for request in self.fake.requests[since:]]

    def for_each_protocol(self, check):
        """`check(provider, other)` for the Anthropic provider, then the OpenAI-compatible one."""
        for provider, other in ((self.claude, self.gpt), (self.gpt, self.claude)):
            with self.subTest(protocol=provider.kind):
                self.fake.reset()
                check(provider, other)
            self._forget_rate_limits()

    def _forget_rate_limits(self):
        """Both providers as before any answer: what one subtest's calls stored does not route the next's."""
        (self.claude | self.gpt).write({
            "rate_limit_requests_left": -1, "rate_limit_tokens_left": -1, "rate_limit_requests_reset_at": False,
            "rate_limit_tokens_reset_at": False, "rate_limit_reported_at": False, "rate_limited_until": False,
        })
        self.registry.clear_cache()

    def assertAbout(self, when, seconds_from_now, delta=3):
        expected = fields.Datetime.now() + timedelta(seconds=seconds_from_now)
        self.assertTrue(when, "a time is stored")
        when = fields.Datetime.to_datetime(when)
        self.assertLessEqual(abs((when - expected).total_seconds()), delta, f"{when} is about {expected}")

    # -- the headers, kept and shown ---------------------------------------------------------------

    def test_the_form_shows_what_remained_at_the_last_answer(self):
        def check(provider, _other):
            self.assertEqual(Form(provider).rate_limit_requests_left, -1, "nothing reported yet")
            self.fake.set_rate_limits(requests=41, tokens=7000, requests_reset=20, tokens_reset=360)
            self.send(provider)
            form = Form(provider)
            self.assertEqual((form.rate_limit_requests_left, form.rate_limit_tokens_left), (41, 7000))
            self.assertAbout(form.rate_limit_requests_reset_at, 20)
            self.assertAbout(form.rate_limit_tokens_reset_at, 360)
            self.assertAbout(form.rate_limit_reported_at, 0)
            self.assertFalse(form.rate_limited_until)
            self.assertFalse(form.rate_limited_now)

        self.for_each_protocol(check)

    def test_a_stream_reports_them_when_it_opens(self):
        def check(provider, _other):
            self.fake.set_rate_limits(requests=12, tokens=None)
            with self.env["ai.service"].stream_message(MESSAGES, provider=provider) as stream:
                self.assertEqual(provider.rate_limit_requests_left, 12, "known before the first chunk")
                self.assertTrue("".join(stream))
            self.assertEqual((provider.rate_limit_requests_left, provider.rate_limit_tokens_left), (12, -1))

        self.for_each_protocol(check)

    def test_a_provider_without_headers_keeps_nothing(self):
        self.fake.set_rate_limits(None)
        self.send(self.gpt)
        self.assertEqual((self.gpt.rate_limit_requests_left, self.gpt.rate_limit_reported_at), (-1, False))

    def test_not_a_write_per_call(self):
        self.send(self.gpt)  # the first report of the process is stored
        with provider_updates() as updates:
            for _call in range(3):
                self.send(self.gpt)
        self.assertEqual(updates, [], "figures that change nothing are stored again only once they are old")
        self.fake.queue_responses([EXHAUSTED])
        with provider_updates() as updates:
            self.send(self.gpt)
        self.assertEqual(len(updates), 1, "running out of room is stored at once")

    # -- an exhausted provider is skipped before sending -------------------------------------------

    def test_an_exhausted_provider_sends_the_next_call_to_the_fallback(self):
        def check(provider, other):
            self.fake.queue_responses([EXHAUSTED])
            self.send(provider)
            self.assertAbout(provider.rate_limited_until, 30)
            self.assertTrue(provider.rate_limited_now)
            sent, last_row = len(self.fake.requests), self.usage_rows()[-1:].id
            result = self.send(provider)
            self.assertEqual(self.paths(sent), [PATHS[other.kind]],
                             "one request, to the fallback; none to the exhausted provider")
            self.assertEqual((result["provider_id"], result["switched_from"]), (other.id, provider.id))
            rows = self.usage_rows().filtered(lambda row: row.id > last_row)
            self.assertEqual([(row.provider_id, row.status) for row in rows], [(other, "ok")],
                             "nothing was sent to the exhausted provider: no row of it")
            # A stream too.
            sent = len(self.fake.requests)
            with self.env["ai.service"].stream_message(MESSAGES, provider=provider) as stream:
                "".join(stream)
            self.assertEqual(stream.result["provider_id"], other.id)
            self.assertEqual(len(self.paths(sent)), 1)

        self.for_each_protocol(check)

    def test_after_the_reset_time_it_is_used_again(self):
        self.fake.queue_responses([{"rate_limits": {"requests": 0, "requests_reset": 1}}])
        self.send(self.gpt)
        until = self.gpt.rate_limited_until
        self.assertTrue(until)
        self.assertEqual(self.send(self.gpt)["provider_id"], self.claude.id, "skipped before the reset")
        time.sleep(max(0.0, (until - fields.Datetime.now()).total_seconds()) + 0.2)
        sent = len(self.fake.requests)
        result = self.send(self.gpt)
        self.assertEqual((result["provider_id"], self.paths(sent)), (self.gpt.id, ["/v1/chat/completions"]))
        self.assertFalse(self.gpt.rate_limited_until, "its answer had room again: it is no longer skipped")
        self.assertEqual(self.gpt.rate_limit_requests_left, 999)

    def test_a_429_with_headers_marks_it_exhausted(self):
        def check(provider, other):
            refused = {"status": 429, "rate_limits": {"tokens": 0, "tokens_reset": 45}}
            self.fake.queue_responses([refused, refused])
            result = self.send(provider)
            self.assertEqual(result["provider_id"], other.id, "this call fell back after its retries")
            self.assertAbout(provider.rate_limited_until, 45)
            self.assertEqual(provider.rate_limit_tokens_left, 0)
            sent = len(self.fake.requests)
            self.assertEqual(self.send(provider)["provider_id"], other.id)
            self.assertEqual(len(self.paths(sent)), 1, "the next call sent nothing to the exhausted provider")

        self.for_each_protocol(check)

    def test_a_429_retry_after_alone_marks_it_until_then(self):
        self.fake.queue_responses([{"status": 429, "retry_after": "20"}] * 2)
        with patch("time.sleep"):
            self.send(self.gpt)
        self.assertAbout(self.gpt.rate_limited_until, 20)

    def test_every_process_reads_it_from_postgresql(self):
        self.fake.queue_responses([EXHAUSTED])
        self.send(self.gpt)
        # What another process starts with: nothing of this one's memory.
        self.registry.clear_cache()
        sent = len(self.fake.requests)
        self.assertEqual(self.send(self.gpt)["provider_id"], self.claude.id)
        self.assertEqual(self.paths(sent), ["/v1/messages"])

    # -- no fallback: the call goes out -----------------------------------------------------------

    def test_without_a_fallback_the_call_goes_out(self):
        self.fake.queue_responses([EXHAUSTED])
        self.send(self.gpt)
        self.env.company.ai_fallback_on_failure = False
        sent = len(self.fake.requests)
        self.assertEqual(self.send(self.gpt)["provider_id"], self.gpt.id)
        self.assertEqual(self.paths(sent), ["/v1/chat/completions"], "the provider decides")

    def test_the_test_connection_goes_out(self):
        self.fake.queue_responses([EXHAUSTED])
        self.send(self.gpt)
        sent = len(self.fake.requests)
        self.gpt.action_test_connection()
        self.assertEqual(self.paths(sent), ["/v1/chat/completions"], "a single attempt to this provider")

    def test_when_every_provider_is_exhausted_the_call_goes_to_its_own(self):
        self.fake.queue_responses([EXHAUSTED, EXHAUSTED])
        self.send(self.gpt)
        self.send(self.claude)
        self.assertTrue(self.gpt.rate_limited_now and self.claude.rate_limited_now)
        sent = len(self.fake.requests)
        self.assertEqual(self.send(self.gpt)["provider_id"], self.gpt.id)
        self.assertEqual(self.paths(sent), ["/v1/chat/completions"])

    def test_a_call_whose_fallback_its_budget_refuses_goes_out_with_its_budget_held(self):
        """The fallback's budget refuses the call after its own provider's reservation was given back: the call
        goes out to its own provider after all, and its cost is booked on that provider's budget."""
        self.fake.queue_responses([EXHAUSTED])
        self.send(self.gpt)
        Budget = self.env["ai.cost.budget"]
        own = Budget.create({"name": "GPT", "budget_amount": 100.0, "provider_ids": [Command.set(self.gpt.ids)]})
        Budget.create({"name": "Claude", "budget_amount": 0.000001, "provider_ids": [Command.set(self.claude.ids)]})
        spent = own.current_spend  # the period counts what its scope spent already: the first call
        sent = len(self.fake.requests)
        result = self.send(self.gpt)
        self.assertEqual((result["provider_id"], self.paths(sent)), (self.gpt.id, ["/v1/chat/completions"]))
        self.env.invalidate_all()
        period = own.period_ids.filtered(lambda p: p.date_start == own.current_period_start)
        self.assertEqual((period.call_count, period.reserved), (1, 0.0))
        self.assertAlmostEqual(period.spend, spent + result["cost_usd"], places=9)

    def test_a_call_no_provider_served_names_the_skipped_one(self):
        self.fake.queue_responses([EXHAUSTED])
        self.send(self.gpt)
        self.fake.queue_responses([{"status": 503}] * 2)
        error = self.assertCallFails(AiProviderError, messages=MESSAGES, provider=self.gpt)
        skipped = f"'{self.gpt.name}': Not sent: the provider reported no requests or tokens left until"
        self.assertIn(skipped, str(error))
        self.assertIn(f"'{self.claude.name}': Provider server error (HTTP 503)", str(error))
        self.assertEqual(self.paths(len(self.fake.requests) - 2), ["/v1/messages"] * 2)

    def test_embeddings_report_them_too(self):
        embedder = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "openai_compatible", name="Embedder", model="text-embedding-3-small")
        )
        self.fake.set_rate_limits(requests=77)
        self.env["ai.service"].embed(["a desk", "a chair"], provider=embedder)
        self.assertEqual(embedder.rate_limit_requests_left, 77)


@tagged("post_install", "-at_install")
class TestProviderRateLimitsCommitted(CommittedProviderCase):
    """Outside test mode, as in production: the report is committed in a transaction of its own, and running out
    of room tells the other Odoo processes to clear their caches."""

    def _signal(self):
        with self.registry.cursor() as cr:
            cr.execute(SQL("SELECT last_value FROM base_cache_signaling_default"))
            return cr.fetchone()[0]

    def _stored(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            provider = env["ai.service.provider"].browse(self.provider_id)
            return provider.rate_limit_requests_left, provider.rate_limited_until

    def test_running_out_is_committed_and_signaled(self):
        self.fake.set_rate_limits(requests=5)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["ai.service"].send_message(MESSAGES, provider=self.provider_id, use_cache=False)
            signal = self._signal()
            self.assertEqual(self._stored(), (5, False), "committed, the caller's transaction still open")
            self.fake.queue_responses([EXHAUSTED])
            env["ai.service"].send_message(MESSAGES, provider=self.provider_id, use_cache=False)
            left, until = self._stored()
            self.assertEqual(left, 0)
            self.assertGreater(until, datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=25))
            self.assertGreater(self._signal(), signal, "the other processes clear their caches")
            cr.rollback()
        self.assertEqual(self._stored()[0], 0, "kept, though the caller rolled back: the provider said so")
