from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import AiCostCase


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
