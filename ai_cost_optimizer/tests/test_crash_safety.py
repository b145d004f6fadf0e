"""Rollback and crash safety of the ledger and the budgets, on real, separately committed
transactions (see test_cost_budget_concurrency for the Registry._lock swap and the cleanup)."""

from datetime import timedelta
from unittest.mock import patch

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.modules.registry import DummyRLock, Registry
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL

from ..core.call import GatewayCall
from ..exceptions import AiProviderError
from ..models.ai_cost_budget_period import RESERVATION_TTL
from ..models.ai_token_usage import ROLLUP_MODELS
from .common import AiCostCase, FakeProviderMixin, delete_rows_of

MESSAGES = [{"role": "user", "content": "Summarize ticket 7."}]
MEASURES = ["cost_usd:sum", "input_tokens:sum", "output_tokens:sum"]


@tagged("post_install", "-at_install")
class TestCommittedCrashSafety(FakeProviderMixin, TransactionCase):
    """What a caller's rollback or a dead worker leaves behind, with every transaction committed."""

    def setUp(self):
        super().setUp()
        patcher = patch.object(Registry, "_lock", DummyRLock())
        patcher.start()
        self.addCleanup(patcher.stop)
        self.setup_cr = self.registry.cursor()
        self.addCleanup(self.setup_cr.close)
        env = api.Environment(self.setup_cr, SUPERUSER_ID, {})
        self.provider = env["ai.service.provider"].create(AiCostCase._provider_vals(self.fake, "openai_compatible"))
        self.budget = env["ai.cost.budget"].create({
            "name": "Crash", "budget_amount": 100.0, "provider_ids": [Command.set(self.provider.ids)],
        })
        self.setup_cr.commit()
        self.addCleanup(self._cleanup, env)

    def _cleanup(self, env):
        self.setup_cr.rollback()
        env.invalidate_all()
        self.budget.unlink()
        delete_rows_of(env, self.provider)
        self.provider.unlink()
        self.setup_cr.commit()

    def _period(self, env):
        """The budget's current period, as committed now."""
        return env["ai.cost.budget"].browse(self.budget.id).period_ids.filtered(
            lambda period: period.date_start == self.budget.current_period_start
        )

    def test_caller_rollback_keeps_usage_and_budget_spend(self):
        with self.registry.cursor() as caller_cr:
            caller_env = api.Environment(caller_cr, SUPERUSER_ID, {})
            result = caller_env["ai.service"].send_message(MESSAGES, provider=self.provider.id, operation="rollback")
            caller_cr.rollback()
        with self.registry.cursor() as check_cr:
            env = api.Environment(check_cr, SUPERUSER_ID, {})
            usage = env["ai.token.usage"].browse(result["usage_id"])
            self.assertEqual((usage.exists(), usage.status), (usage, "ok"), "the usage row survives the rollback")
            self.assertGreater(usage.cost_usd, 0)
            period = self._period(env)
            self.assertAlmostEqual(period.spend, usage.cost_usd, places=12, msg="so does the budget spend")
            self.assertEqual((period.reserved, period.call_count), (0.0, 1))
            daily = env["ai.token.usage.daily"].search([("provider_id", "=", self.provider.id)])
            self.assertEqual(sum(daily.mapped("call_count")), 1, "and the rollup of the call")

    def test_worker_killed_after_reserving_leaves_a_reservation_that_expires(self):
        with self.registry.cursor() as worker_cr:
            # The steps of send_message up to the budget check; the worker then dies: nothing settles.
            Service = api.Environment(worker_cr, SUPERUSER_ID, {})["ai.service"]
            call = GatewayCall(
                MESSAGES, provider=self.provider.id, quality_required="medium", max_tokens=256, operation="killed",
                use_cache=False,
            )
            Service._validate_request(call)
            Service._resolve_provider(call)
            Service._estimate_tokens(call)
            check = Service._check_budget(call)
            self.assertEqual(check["status"], "ok")
            estimate = check["estimated_cost"]
            self.assertGreater(estimate, 0)
            # The worker's own transaction dies with it.
            worker_cr.rollback()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            period = self._period(env)
            self.assertAlmostEqual(period.reserved, estimate, places=12, msg="the reservation was committed")
            reservation = env["ai.cost.budget.reservation"].search([("period_id", "=", period.id)])
            self.assertEqual(reservation.ids, call.budget_reservations)
            # Within the TTL the worker may still be running: the cron leaves its reservation.
            env["ai.cost.budget.period"]._cron_expire_reservations()
            cr.commit()
            self.assertTrue(reservation.exists())
            # Thirty minutes later (the reservation's clock moved back rather than the server's).
            cr.execute(SQL(
                "UPDATE ai_cost_budget_reservation SET create_date = %s WHERE id IN %s",
                fields.Datetime.now() - RESERVATION_TTL - timedelta(seconds=1), tuple(reservation.ids),
            ))
            cr.commit()
        with self.registry.cursor() as cron_cr:
            api.Environment(cron_cr, SUPERUSER_ID, {})["ai.cost.budget.period"]._cron_expire_reservations()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            period = self._period(env)
            self.assertEqual((period.reserved, period.spend, period.call_count), (0.0, 0.0, 0))
            self.assertFalse(env["ai.cost.budget.reservation"].search([("period_id", "=", period.id)]))
            # The budget is whole again: a real call goes through, reserves and settles.
            result = env["ai.service"].send_message(MESSAGES, provider=self.provider.id, use_cache=False)
        with self.registry.cursor() as cr:
            period = self._period(api.Environment(cr, SUPERUSER_ID, {}))
            self.assertAlmostEqual(period.spend, result["cost_usd"], places=12)
            self.assertEqual((period.reserved, period.call_count), (0.0, 1))


@tagged("post_install", "-at_install")
class TestRebuildFromLedger(AiCostCase):
    """Budget period totals and per-day rollups, kept up to date call by call, equal what a rebuild
    from the raw usage rows gives, and a rebuild repairs them."""

    def test_budget_totals_and_rollups_rebuild_to_the_ledger(self):
        # Scoped to this test's providers: the database may hold other (demo) usage rows.
        ours = Command.set((self.gpt | self.claude).ids)
        budgets = self.env["ai.cost.budget"].create([
            {"name": "All", "budget_amount": 100.0, "provider_ids": [ours]},
            {"name": "GPT", "budget_amount": 100.0, "provider_ids": [Command.set(self.gpt.ids)]},
            {"name": "Drafts", "budget_amount": 100.0, "provider_ids": [ours],
             "operation_ids": [Command.create({"name": "email_draft"})]},
        ])
        for provider, operation, res_id in [
            (self.gpt, "email_draft", 7), (self.claude, "email_draft", None), (self.gpt, "lead", 8),
            (self.claude, "lead", 7), (self.gpt, "email_draft", None),
        ]:
            self.env["ai.service"].send_message(
                MESSAGES, provider=provider, operation=operation, res_model="res.partner" if res_id else None,
                res_id=res_id,
            )
        # Failed attempts leave rows too (whether or not a fallback provider then answers).
        self.fake.queue_responses([{"status": 500}, {"status": 500}])
        try:
            self.env["ai.service"].send_message(MESSAGES, provider=self.gpt, operation="lead")
        except AiProviderError:
            pass
        self.assertEqual(set(self._ledger().mapped("status")), {"ok", "error"})
        periods = self.env["ai.cost.budget.period"].search([("budget_id", "in", budgets.ids)])
        self.assertEqual(len(periods), 3)
        expected_budgets = self._ledger_budget_totals(budgets)
        expected_rollups = self._ledger_rollup_totals()
        self.assertEqual(self._period_totals(periods), expected_budgets, "kept up to date call by call")
        self.assertEqual(self._rollup_totals(), expected_rollups)

        # Damage both, then rebuild from the raw rows.
        self.env.cr.execute(SQL("UPDATE ai_cost_budget_period SET spend = 999, call_count = 0 WHERE id IN %s",
                                tuple(periods.ids)))
        for model in ROLLUP_MODELS:
            self.env.cr.execute(SQL("UPDATE %s SET cost_usd = 0, call_count = 42",
                                    SQL.identifier(self.env[model]._table)))
        self.env.invalidate_all()
        self.assertNotEqual(self._period_totals(periods), expected_budgets)
        periods._rebuild_from_ledger()
        self.env["ai.token.usage"]._rebuild_rollups(fields.Date.today() - timedelta(days=1))
        self.assertEqual(self._period_totals(periods), expected_budgets)
        self.assertEqual(self._rollup_totals(), expected_rollups)

    def _ledger_budget_totals(self, budgets):
        totals = {}
        for budget in budgets:
            rows = self._ledger().filtered_domain([("status", "=", "ok"), ("cache_hit", "=", False)]).filtered(
                lambda usage, budget=budget: budget._matches(usage.user_id, usage.provider_id, usage.operation)
            )
            totals[budget.name] = (round(sum(rows.mapped("cost_usd")), 12), len(rows))
        self.assertTrue(all(count for _cost, count in totals.values()))
        return totals

    def _ledger(self):
        return self.env["ai.token.usage"].search([("provider_id", "in", (self.gpt | self.claude).ids)])

    @staticmethod
    def _period_totals(periods):
        periods.invalidate_recordset()
        return {period.budget_id.name: (round(period.spend, 12), period.call_count) for period in periods}

    def _ledger_rollup_totals(self):
        Usage = self.env["ai.token.usage"]
        by_key = ["provider_id", "operation", "status"]
        ours = [("provider_id", "in", (self.gpt | self.claude).ids)]
        daily = Usage._read_group(ours, by_key, ["__count", *MEASURES])
        records = Usage._read_group([*ours, ("res_id", "!=", 0)], [*by_key, "res_id"], ["__count", *MEASURES])
        return self._rounded(daily), self._rounded(records)

    def _rollup_totals(self):
        by_key = ["provider_id", "operation", "status"]
        measures = ["call_count:sum", *MEASURES]
        ours = [("provider_id", "in", (self.gpt | self.claude).ids), ("day", "=", fields.Date.today())]
        daily = self.env["ai.token.usage.daily"]._read_group(ours, by_key, measures)
        records = self.env["ai.token.usage.record.daily"]._read_group(ours, [*by_key, "res_id"], measures)
        return self._rounded(daily), self._rounded(records)

    @staticmethod
    def _rounded(groups):
        return sorted(tuple(round(value, 12) if isinstance(value, float) else value for value in group)
                      for group in groups)
