"""Rate limits (DESIGN section 13): requests and tokens per minute of a scope, counted in PostgreSQL; a call
beyond a limit waits for room or is refused with AiRateLimited and a usage row of status rate_limited. A call
that moves to another provider (a fallback, a budget's switch) passes the limits of that provider's scope, and
gives its minute back to those of a provider to which nothing was sent. The two-process check, order of waiting
calls included, is tests/scale's."""

import time
from datetime import timedelta

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from ..exceptions import AiBudgetExceeded, AiProviderError, AiRateLimited
from ..models import ai_cost_rate_limit
from .common import AiCostCase
from .test_gateway_caches import statements

MESSAGES = [{"role": "user", "content": "Qualify lead 42: ACME, 500 seats."}]


@tagged("post_install", "-at_install")
class TestRateLimits(AiCostCase):
    def _limit(self, **vals):
        return self.env["ai.cost.rate.limit"].create({"name": "Agent", "requests_per_minute": 2, **vals})

    def _send(self, **kwargs):
        return self.env["ai.service"].send_message(MESSAGES, provider=self.gpt, max_tokens=50, **kwargs)

    def test_refuse_beyond_the_requests_per_minute(self):
        limit = self._limit(action="refuse")
        self._send()
        self._send()
        error = self.assertCallFails(AiRateLimited, provider=self.gpt, max_tokens=50)
        self.assertIn("Rate limit 'Agent' (2 requests per minute) is reached: room comes back in", str(error))
        self.assertEqual(len(self.fake.requests), 2, "the refused call never reaches the provider")
        refused = self.usage_rows().filtered(lambda row: row.status == "rate_limited")
        self.assertEqual((len(refused), refused.rate_limit_id, refused.cost_usd), (1, limit, 0.0))
        limit.invalidate_recordset()
        self.assertEqual((limit.served_last_minute, limit.refused_this_hour), (2, 1))

    def test_wait_for_room_then_serve(self):
        # A one-second minute, so that the test waits for room as a call would for a minute.
        self.patch(ai_cost_rate_limit, "WINDOW", timedelta(seconds=1))
        limit = self._limit(requests_per_minute=1, action="wait", max_wait_seconds=5)
        self._send()
        self._send()
        self.assertEqual(len(self.fake.requests), 2, "the second call was served")
        first, second = self.env["ai.cost.rate.limit.hit"].search([("limit_id", "=", limit.id)]).mapped("at")
        self.assertGreaterEqual(second - first, timedelta(seconds=1), "once the first call's minute had passed")

    def test_a_wait_longer_than_allowed_is_refused_at_once(self):
        self._limit(requests_per_minute=1, action="wait", max_wait_seconds=2)
        self._send()
        started = time.monotonic()
        self.assertCallFails(AiRateLimited, provider=self.gpt, max_tokens=50)
        self.assertLess(time.monotonic() - started, 1.5, "room comes back in a minute: no use waiting 2 s")

    def test_tokens_per_minute_count_the_prompt_and_max_tokens(self):
        self._limit(requests_per_minute=0, tokens_per_minute=100, action="refuse")
        self._send()  # about 20 prompt tokens and 50 of max_tokens
        self.assertCallFails(AiRateLimited, provider=self.gpt, max_tokens=50)
        error = self.assertCallFails(AiRateLimited, provider=self.gpt, max_tokens=500)
        self.assertIn("exceed the limit. Lower max_tokens or raise the limit.", str(error))

    def test_scope(self):
        operation = self.env["ai.cost.budget.operation"].create({"name": "lead_qualification"})
        self._limit(requests_per_minute=1, action="refuse", operation_ids=[Command.set(operation.ids)])
        self._send(operation="lead_qualification")
        for _ in range(3):
            self._send(operation="ticket_summary")
        self.assertCallFails(AiRateLimited, provider=self.gpt, max_tokens=50, operation="lead_qualification")

    def test_a_call_a_budget_refuses_leaves_its_minute(self):
        limit = self._limit(requests_per_minute=5, action="refuse")
        self.env["ai.cost.budget"].create({"name": "Empty", "budget_amount": 0.0000001})
        self.assertCallFails(AiBudgetExceeded, provider=self.gpt, max_tokens=50)
        limit.invalidate_recordset()
        self.assertEqual(limit.served_last_minute, 0)

    def test_bad_limits_are_refused(self):
        for vals, message in (
            ({"requests_per_minute": 0}, "limits nothing"),
            ({"max_wait_seconds": 601}, "between 0 and 600 seconds"),
        ):
            with self.subTest(vals=vals), self.assertRaisesRegex(ValidationError, message):
                self._limit(**vals)


@tagged("post_install", "-at_install")
class TestRateLimitsOfAMovedCall(AiCostCase):
    """A call that leaves its provider for another one, through the real gateway and the fake provider: gpt (the
    OpenAI protocol) fails or is skipped, claude (the Anthropic one) is the fallback."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        (cls.claude | cls.gpt).write({"max_retries": 1, "retry_backoff": 0.001})
        cls.env.company.ai_fallback_on_failure = True

    def _limit(self, providers, **vals):
        """A limit scoped to `providers` (none: every provider)."""
        return self.env["ai.cost.rate.limit"].create({
            "name": " and ".join(providers.mapped("name")) or "Company", "requests_per_minute": 5, "action": "refuse",
            "provider_ids": [Command.set(providers.ids)], **vals,
        })

    def _send(self, provider):
        return self.env["ai.service"].send_message(MESSAGES, provider=provider, max_tokens=50)

    def _served(self, *limits):
        """How many calls each limit counts in its minute."""
        limits = self.env["ai.cost.rate.limit"].concat(*limits)
        limits.invalidate_recordset()
        return limits.mapped("served_last_minute")

    def _paths(self, since):
        return [request["path"] for request in self.fake.requests[since:]]

    def test_a_full_limit_of_the_fallback_refuses_it(self):
        claude_limit = self._limit(self.claude, requests_per_minute=1)
        self._send(self.claude)  # the fallback's one request of the minute
        sent = len(self.fake.requests)
        self.fake.queue_responses([{"status": 503}] * 2)
        error = self.assertCallFails(AiProviderError, messages=MESSAGES, provider=self.gpt, max_tokens=50)
        self.assertEqual(self._paths(sent), ["/v1/chat/completions"] * 2, "nothing was sent to the fallback")
        self.assertIn(f"The AI provider '{self.gpt.name}' failed", str(error), "no provider left: it fails as before")
        self.assertEqual(self._served(claude_limit), [1])
        self.assertEqual(self.usage_rows().mapped("status"), ["ok", "error", "error"], "no row for the refused move")

    def test_a_fallback_refused_by_its_limit_leaves_the_next_provider_to_serve(self):
        third = self.env["ai.service.provider"].create(self._provider_vals(
            self.fake, "openai_compatible", name="GPT-4o (fake)", model="gpt-4o",
        ))
        self._limit(self.claude, requests_per_minute=1)
        self._send(self.claude)
        self.fake.queue_responses([{"status": 503}] * 2)
        recommendation = self.env["ai.cost.optimizer"].recommend_provider("chat", 20)
        alternatives = [alternative["provider_id"] for alternative in recommendation["alternatives"]]
        self.assertLess(alternatives.index(self.claude.id), alternatives.index(third.id), "claude comes first")
        result = self._send(self.gpt)
        self.assertEqual((result["provider_id"], result["switched_from"]), (third.id, self.gpt.id))

    def test_a_full_limit_of_the_fallback_makes_it_wait(self):
        # A one-second minute, so that the fallback waits for room as a call would for a minute.
        self.patch(ai_cost_rate_limit, "WINDOW", timedelta(seconds=1))
        claude_limit = self._limit(self.claude, requests_per_minute=1, action="wait", max_wait_seconds=5)
        self._send(self.claude)
        self.fake.queue_responses([{"status": 503}] * 2)
        result = self._send(self.gpt)
        self.assertEqual((result["provider_id"], result["switched_from"]), (self.claude.id, self.gpt.id))
        first, second = self.env["ai.cost.rate.limit.hit"].search([("limit_id", "=", claude_limit.id)]).mapped("at")
        self.assertGreaterEqual(second - first, timedelta(seconds=1), "served once the first call's minute passed")

    def test_a_provider_that_was_sent_the_request_keeps_counting_it(self):
        gpt_limit, claude_limit, company_limit = (
            self._limit(self.gpt), self._limit(self.claude), self._limit(self.env["ai.service.provider"]),
        )
        self.fake.queue_responses([{"status": 503}] * 2)
        self.assertEqual(self._send(self.gpt)["provider_id"], self.claude.id)
        self.assertEqual(self._served(gpt_limit, claude_limit, company_limit), [1, 1, 1],
                         "gpt was sent the request, claude served it, the company's limit counts the call once")

    def test_a_skipped_provider_gives_its_minute_back(self):
        gpt_limit, claude_limit, both_limit, company_limit = (
            self._limit(self.gpt), self._limit(self.claude), self._limit(self.gpt | self.claude),
            self._limit(self.env["ai.service.provider"]),
        )
        self.fake.queue_responses([{"rate_limits": {"requests": 0, "requests_reset": 30}}])
        self._send(self.gpt)  # served, and gpt reports no room left: the next call skips it
        sent = len(self.fake.requests)
        self.assertEqual(self._send(self.gpt)["provider_id"], self.claude.id)
        self.assertEqual(self._paths(sent), ["/v1/messages"], "nothing was sent to gpt")
        self.assertEqual(self._served(gpt_limit, claude_limit, both_limit, company_limit), [1, 1, 2, 2],
                         "gpt's own limit counts only the call it was sent; the others count both calls once")

    def test_a_budget_switch_passes_the_new_providers_limits(self):
        self.env["ai.cost.budget"].create({
            "name": "Claude spend", "budget_amount": 0.001, "provider_ids": [Command.set(self.claude.ids)],
            "auto_switch_at_threshold": 1, "block_at_threshold": 0,
        })
        claude_limit, gpt_limit = self._limit(self.claude), self._limit(self.gpt, requests_per_minute=2)
        result = self._send(self.claude)
        self.assertEqual((result["provider_id"], result["budget"]["status"]), (self.gpt.id, "switched"))
        self.assertEqual(self._served(claude_limit, gpt_limit), [0, 1], "claude was never sent the call")
        self._send(self.gpt)
        result = self._send(self.claude)
        self.assertEqual(result["provider_id"], self.claude.id, "gpt's limit is full: the call stays on claude")
        self.assertIn("none qualifies", result["budget"]["message"])
        self.assertEqual(self._served(claude_limit, gpt_limit), [1, 2])

    def test_without_limits_a_moved_call_sends_no_rate_limit_statement(self):
        exhausted = {"rate_limits": {"requests": 0, "requests_reset": 30}}
        self.fake.queue_responses([{"status": 503}] * 2 + [exhausted])
        with statements() as sent:
            # A fallback after gpt's failures, served by claude, which then reports no room left.
            self.assertEqual(self._send(self.gpt)["provider_id"], self.claude.id)
            self.assertEqual(self._send(self.claude)["provider_id"], self.gpt.id, "a fallback before sending")
        # The rules are read once per cache clear (running out of room clears the caches): no admission or
        # release of a minute, which is what a limit costs.
        self.assertEqual([query for query in sent if "ai_cost_rate_limit_hit" in query], [])
        # Such a statement would be seen: a limit's admission is one.
        self._limit(self.gpt)
        with statements() as sent:
            self._send(self.gpt)
        self.assertEqual(len([query for query in sent if "ai_cost_rate_limit_hit" in query]), 1)
