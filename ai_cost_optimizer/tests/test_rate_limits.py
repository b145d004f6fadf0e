"""Rate limits (DESIGN section 13): requests and tokens per minute of a scope, counted in PostgreSQL; a call
beyond a limit waits for room or is refused with AiRateLimited and a usage row of status rate_limited. The
two-process check, order of waiting calls included, is tests/scale's."""

import time
from datetime import timedelta

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from ..exceptions import AiBudgetExceeded, AiRateLimited
from ..models import ai_cost_rate_limit
from .common import AiCostCase

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
