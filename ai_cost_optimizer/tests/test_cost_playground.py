from odoo import SUPERUSER_ID, api
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..exceptions import AiBudgetExceeded
from .common import AiCostCase, CommittedProviderCase


@tagged("post_install", "-at_install")
class TestCostPlayground(AiCostCase):
    def _playground(self, **vals):
        return self.env["ai.cost.playground"].create({"prompt": "Translate 'good morning' to French.", **vals})

    def test_estimate_then_send(self):
        playground = self._playground(provider_id=self.gpt.id)
        playground.action_estimate()
        self.assertEqual(playground.state, "estimated")
        self.assertGreater(playground.token_estimate, 5)
        self.assertTrue(playground.estimate_exact)
        self.assertGreater(playground.estimated_cost_usd, 0)
        self.fake.set_reply("Bonjour.")
        playground.action_send()
        usage = playground.usage_id
        self.assertEqual((playground.state, playground.answer), ("sent", "Bonjour."))
        self.assertEqual((usage.operation, usage.provider_id), ("playground", self.gpt))
        self.assertAlmostEqual(playground.actual_cost_usd, usage.cost_usd, places=12)
        self.assertGreater(playground.actual_cost_usd, 0)

    def test_estimate_with_the_optimizer(self):
        if "ai.cost.optimizer" not in self.env:
            self.skipTest("the optimizer is not installed")
        playground = self._playground()
        playground.action_estimate()
        self.assertTrue(playground.recommended_provider_id)
        self.assertTrue(playground.recommendation_reasoning)

    def test_empty_prompt(self):
        playground = self._playground(prompt=" ")
        with self.assertRaisesRegex(UserError, "Type a prompt"):
            playground.action_estimate()

    def test_title_is_the_prompt(self):
        """The breadcrumb and the title read the prompt, never 'ai.cost.playground,1'."""
        self.assertEqual(self._playground().display_name, "Translate 'good morning' to French.")
        long_prompt = self._playground(prompt="Summarize " + "the thread " * 20 + "\nsecond line")
        self.assertEqual(len(long_prompt.display_name), 60)
        self.assertTrue(long_prompt.display_name.startswith("Summarize the thread"))
        self.assertTrue(long_prompt.display_name.endswith("…"))
        self.assertEqual(self.env["ai.cost.playground"].new({}).display_name, "New prompt")

    def test_no_provider_can_answer(self):
        """No provider with a key: no estimated cost, no Send, and a Send forced anyway says why."""
        self.env["ai.service.provider"].search([]).api_key = False
        playground = self._playground()
        playground.action_estimate()
        self.assertFalse(playground.recommended_provider_id, "nothing qualifies without a key")
        self.assertIn("has no API key", playground.send_refusal)
        self.assertEqual(playground.estimated_cost_usd, 0.0)
        with self.assertRaisesRegex(UserError, "has no API key"):
            playground.action_send()
        self.assertEqual(self.fake.requests, [])

    def test_a_provider_that_can_answer(self):
        self.env["ai.cost.budget"].create({"name": "Haiku cap", "budget_amount": 10.0, "provider_ids": self.claude.ids})
        playground = self._playground(provider_id=self.claude.id)
        playground.action_estimate()
        self.assertFalse(playground.send_refusal)
        self.assertGreater(playground.estimated_cost_usd, 0)
        self.assertIn("Haiku cap: 0 % used", playground.budgets_touched)


@tagged("post_install", "-at_install")
class TestPlaygroundRefusedSend(CommittedProviderCase):
    """Outside test mode, as in production: the playground's transaction rolls back when Send is refused."""

    def _budget_vals(self):
        return {"budget_amount": 0.000001}  # less than any call: every call is blocked

    def test_a_refused_send_leaves_its_usage_row(self):
        with self.assertRaises(AiBudgetExceeded), self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            playground = env["ai.cost.playground"].create({
                "prompt": "Draft a follow-up for the lead.", "provider_id": self.provider_id,
            })
            playground.action_estimate()
            self.assertFalse(playground.send_refusal)
            playground.action_send()
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT status, operation FROM ai_token_usage WHERE provider_id = %s", [self.provider_id]
            )
            self.assertEqual(cr.fetchall(), [("blocked", "playground")])
        self.assertEqual(self.fake.requests, [], "a blocked call reaches no provider")


@tagged("post_install", "-at_install")
class TestPlaygroundSendCommitted(CommittedProviderCase):
    """Outside test mode, as in production: the usage row the gateway commits apart, after the playground's
    transaction first read the database, is the one the playground shows."""

    def test_send_shows_the_row_committed_apart(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            playground = env["ai.cost.playground"].create({
                "prompt": "Draft a follow-up for the lead.", "provider_id": self.provider_id,
            })
            playground.action_estimate()
            playground.action_send()
            playground_id = playground.id
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            playground = env["ai.cost.playground"].browse(playground_id)
            self.assertEqual(playground.state, "sent")
            self.assertEqual((playground.usage_id.operation, playground.usage_id.status), ("playground", "ok"))
            self.assertAlmostEqual(playground.actual_cost_usd, playground.usage_id.cost_usd, places=12)
