from odoo import SUPERUSER_ID, api
from odoo.tests import TransactionCase, tagged

from .common import AiCostCase, delete_rows_of
from .fake_provider import FakeProviderServer


@tagged("post_install", "-at_install")
class TestLedgerSurvivesRollback(TransactionCase):
    """Real, separately committed transactions: the caller rolls back, the usage row stays."""

    def test_usage_row_survives_caller_rollback(self):
        registry = self.registry
        with FakeProviderServer() as fake, registry.cursor() as setup_cr:
            env = api.Environment(setup_cr, SUPERUSER_ID, {})
            provider = env["ai.service.provider"].create(AiCostCase._provider_vals(fake, "openai_compatible"))
            setup_cr.commit()
            try:
                with registry.cursor() as caller_cr:
                    caller_env = api.Environment(caller_cr, SUPERUSER_ID, {})
                    result = caller_env["ai.service"].send_message(
                        [{"role": "user", "content": "Summarize ticket 7."}], provider=provider.id, operation="rollback"
                    )
                    caller_cr.rollback()
                with registry.cursor() as check_cr:
                    usage = api.Environment(check_cr, SUPERUSER_ID, {})["ai.token.usage"].browse(result["usage_id"])
                    self.assertTrue(usage.exists(), "the usage row must survive the caller's rollback")
                    self.assertEqual((usage.operation, usage.status), ("rollback", "ok"))
                    self.assertGreater(usage.cost_usd, 0)
                    self.assertEqual(usage.input_tokens, fake.last_usage["prompt_tokens"])
            finally:
                # Its rollups too: they keep the history of deleted rows, and would count in the next tests.
                delete_rows_of(env, provider)
                provider.unlink()
                setup_cr.commit()
