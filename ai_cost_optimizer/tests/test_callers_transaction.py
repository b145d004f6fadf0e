from odoo import SUPERUSER_ID, api
from odoo.tests import new_test_user, tagged

from ..ledger.cursors import HOLDS_CALL_ROWS
from .common import AiCostCase, CommittedProviderCase

PROMPT = [{"role": "user", "content": "Summarize the onboarding rules of the new sales rep."}]


@tagged("post_install", "-at_install")
class TestCallersTransaction(CommittedProviderCase):
    """The gateway inside the caller's open transaction, outside test mode, as in production: every
    transaction below really commits or rolls back."""

    def _delete_provider(self, provider_id):
        with self.registry.cursor() as cr:
            self.delete_provider(api.Environment(cr, SUPERUSER_ID, {}), provider_id)

    def _committed_usage(self, usage_id):
        """The usage row as another transaction sees it: (provider, user, status), or None."""
        with self.registry.cursor() as cr:
            cr.execute("SELECT provider_id, user_id, status FROM ai_token_usage WHERE id = %s", [usage_id])
            return cr.fetchone()

    def _delete_user(self, login):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            user = env["res.users"].search([("login", "=", login)])
            env["ai.token.usage"].search([("user_id", "in", user.ids)]).unlink()
            user.unlink()

    def test_a_provider_of_the_open_transaction(self):
        """A provider created in the caller's transaction and used before it commits: the call is served and
        recorded in that transaction, and so are the later calls of that transaction; the rows commit with it."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            provider = env["ai.service.provider"].create(
                AiCostCase._provider_vals(self.fake, "openai_compatible", name="Provider of the open transaction")
            )
            self.addCleanup(self._delete_provider, provider.id)
            result = env["ai.service"].send_message(PROMPT, provider=provider.id, operation="onboarding")
            self.assertEqual(result["provider_id"], provider.id)
            self.assertGreater(result["cost_usd"], 0)
            usage = env["ai.token.usage"].browse(result["usage_id"])
            self.assertEqual((usage.provider_id, usage.status), (provider, "ok"))
            self.assertIsNone(self._committed_usage(usage.id), "not committed before its provider is")
            later = env["ai.service"].send_message(PROMPT, provider=self.provider_id, use_cache=False)
            self.assertIsNone(self._committed_usage(later["usage_id"]))
        self.assertEqual(self._committed_usage(usage.id), (provider.id, SUPERUSER_ID, "ok"))
        self.assertEqual(self._committed_usage(later["usage_id"]), (self.provider_id, SUPERUSER_ID, "ok"))

    def test_a_user_of_the_open_transaction_in_a_budget(self):
        """A user created in the caller's transaction calls a provider of a budget: the budget's hold names the
        user too, and goes in that transaction with the call's rows."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            user = new_test_user(
                env, login="ai_new_sales_rep", groups="base.group_user,ai_cost_optimizer.group_ai_cost_user"
            )
            self.addCleanup(self._delete_user, user.login)
            result = env(user=user)["ai.service"].send_message(PROMPT, provider=self.provider_id)
            self.assertEqual(result["budget"]["status"], "ok")
            budget = env["ai.cost.budget"].browse(self.budget_id)
            self.assertAlmostEqual(budget.current_spend, result["cost_usd"], places=8)
            self.assertEqual(budget.current_reserved, 0.0)
            self.assertIsNone(self._committed_usage(result["usage_id"]))
        self.assertEqual(self._committed_usage(result["usage_id"]), (self.provider_id, user.id, "ok"))
        with self.registry.cursor() as cr:
            budget = api.Environment(cr, SUPERUSER_ID, {})["ai.cost.budget"].browse(self.budget_id)
            self.assertAlmostEqual(budget.current_spend, result["cost_usd"], places=8)

    def test_a_rollback_ends_the_transaction_that_kept_the_rows(self):
        """The rows of a call about a record of the transaction go with it when it rolls back; the next
        transaction on the same cursor writes its calls' rows in their own transaction again."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            provider = env["ai.service.provider"].create(
                AiCostCase._provider_vals(self.fake, "openai_compatible", name="Rolled back provider")
            )
            result = env["ai.service"].send_message(PROMPT, provider=provider.id)
            self.assertTrue(cr.postcommit.data.get(HOLDS_CALL_ROWS))
            cr.rollback()
            self.assertFalse(cr.postcommit.data.get(HOLDS_CALL_ROWS))
            served = env["ai.service"].send_message(PROMPT, provider=self.provider_id, use_cache=False)
            self.assertEqual(self._committed_usage(served["usage_id"])[2], "ok", "committed on its own")
            cr.rollback()
        self.assertIsNone(self._committed_usage(result["usage_id"]))
        self.assertEqual(self._committed_usage(served["usage_id"])[2], "ok", "the money was spent")

    def test_an_identical_request_in_the_same_transaction_is_a_hit(self):
        """The probe reads what was committed since the caller's snapshot: a repeat is a hit without a commit
        in between, and with one."""
        messages = [{"role": "user", "content": "List the three steps of our refund policy."}]
        with self.registry.cursor() as cr:
            send = api.Environment(cr, SUPERUSER_ID, {})["ai.service"].send_message
            first = send(messages, provider=self.provider_id)
            repeat = send(messages, provider=self.provider_id)
            cr.commit()
            after_commit = send(messages, provider=self.provider_id)
        self.assertEqual([first["cache_hit"], repeat["cache_hit"], after_commit["cache_hit"]], [False, True, True])
        self.assertEqual(repeat["content"], first["content"])
        self.assertEqual(len(self.fake.requests), 1)

    def test_an_identical_request_in_a_transaction_that_keeps_its_rows_is_a_hit(self):
        messages = [{"role": "user", "content": "List the two steps of our exchange policy."}]
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            provider = env["ai.service.provider"].create(
                AiCostCase._provider_vals(self.fake, "openai_compatible", name="Cached provider of the transaction")
            )
            self.addCleanup(self._delete_provider, provider.id)
            first = env["ai.service"].send_message(messages, provider=provider.id)
            repeat = env["ai.service"].send_message(messages, provider=provider.id)
            self.assertTrue(cr.postcommit.data.get(HOLDS_CALL_ROWS))
        self.assertEqual([first["cache_hit"], repeat["cache_hit"]], [False, True])
        self.assertEqual(len(self.fake.requests), 1)
