from odoo import Command
from odoo.addons.ai_cost_optimizer.models.ai_token_usage import ROLLUP_MODELS
from odoo.addons.ai_cost_optimizer.tests.fake_provider import FakeProviderServer
from odoo.exceptions import UserError
from odoo.tests import TransactionCase, new_test_user, tagged

# Every table a call writes to, besides the usage ledger's rollups.
CALL_MODELS = (
    "ai.token.usage", "ai.cost.budget.period", "ai.cost.budget.reservation", "ai.provider.benchmark",
    "ai.cost.recommendation", "ai.response.cache", *ROLLUP_MODELS,
)


@tagged("post_install", "-at_install")
class TestGatewayInAModuleTest(TransactionCase):
    """Another module's plain TransactionCase, as its developer would write it: no test mode, a provider and a
    budget of its own, created in the test's transaction. The calls work, and their rows stay in that
    transaction, so they roll back with it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake = FakeProviderServer().start()
        cls.addClassCleanup(cls.fake.stop)
        cls.provider = cls.env["ai.service.provider"].create({
            "name": "Module test provider", "kind": "openai_compatible", "base_url": cls.fake.openai_base_url,
            "api_key": "sk-test-client", "model": "gpt-4o-mini", "timeout": 5, "max_retries": 1,
        })
        cls.budget = cls.env["ai.cost.budget"].create({
            "name": "Module test budget", "budget_amount": 10, "provider_ids": [Command.set(cls.provider.ids)],
        })
        cls.user = new_test_user(
            cls.env, login="ai_test_client_user", groups="base.group_user,ai_cost_optimizer.group_ai_cost_user"
        )

    def _committed_counts(self):
        """The rows of every table a call writes to, as another transaction sees them."""
        with self.registry.cursor() as cr:
            counts = {}
            for model in CALL_MODELS:
                cr.execute(f'SELECT count(*) FROM "{self.env[model]._table}"')
                counts[model] = cr.fetchone()[0]
            return counts

    def test_calls_are_served_and_their_rows_stay_in_the_test(self):
        before = self._committed_counts()
        send = self.env(user=self.user)["ai.service"].send_message
        messages = [{"role": "user", "content": "Draft a two-line welcome note for a new customer."}]
        first = send(messages, provider=self.provider.id, operation="welcome_note", res_model="res.partner",
                     res_id=self.user.partner_id.id)
        repeat = send(messages, provider=self.provider.id, operation="welcome_note")
        self.assertEqual((first["provider_id"], first["cache_hit"]), (self.provider.id, False))
        self.assertGreater(first["cost_usd"], 0)
        self.assertTrue(repeat["cache_hit"], "an identical request of the same transaction is a hit")
        self.assertEqual(len(self.fake.requests), 1)

        usages = self.env["ai.token.usage"].search([("provider_id", "=", self.provider.id)], order="id")
        self.assertEqual(usages.ids, [first["usage_id"], repeat["usage_id"]])
        self.assertEqual(usages.user_id, self.user)
        self.assertAlmostEqual(self.budget.current_spend, first["cost_usd"], places=8)
        daily = self.env["ai.token.usage.daily"].search([("provider_id", "=", self.provider.id)])
        self.assertAlmostEqual(sum(daily.mapped("cost_usd")), first["cost_usd"], places=8)

        self.assertEqual(self._committed_counts(), before, "nothing committed outside the test's transaction")

    def test_this_module_s_fields_and_create_apply_to_gateway_rows(self):
        """The gateway writes its usage rows through create(): this module's computed field, default and
        create() override apply to them, to failed calls' rows too."""
        result = self.env["ai.service"].send_message(
            [{"role": "user", "content": "Classify this ticket: the invoice is wrong."}], provider=self.provider.id,
            operation="ticket_triage", res_model="res.partner", res_id=self.user.partner_id.id,
        )
        self.fake.queue_responses([{"status": 500}] * 2)  # max_retries 1: two attempts
        try:  # not assertRaises: its savepoint would roll back the failed call's rows, kept in this transaction
            self.env["ai.service"].send_message([{"role": "user", "content": "Again?"}], provider=self.provider.id)
        except UserError:
            pass
        else:
            self.fail("the provider failed: send_message must raise")
        served = self.env["ai.token.usage"].browse(result["usage_id"])
        failed = self.env["ai.token.usage"].search(
            [("provider_id", "=", self.provider.id), ("status", "=", "error")], limit=1
        )
        self.assertEqual(
            (served.client_label, served.client_channel, served.client_created),
            ("ticket_triage about res.partner", "odoo", True),
        )
        self.assertEqual((failed.client_label, failed.client_created), ("call about nothing", True))
