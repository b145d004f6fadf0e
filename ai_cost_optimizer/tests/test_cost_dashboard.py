from datetime import date, datetime, time

from odoo.exceptions import UserError
from odoo.tests import HttpCase, tagged
from odoo.tools import SQL

from ..core.budget import period_forecast
from ..core.periods import named_period_bounds as period_bounds
from ..core.periods import same_days_last_month
from .common import UsageRowsCase
from .test_cost_api import CostDataMixin


@tagged("post_install", "-at_install")
class TestCostDashboard(CostDataMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_usage_data()
        cls.Dashboard = cls.env["ai.cost.dashboard"].with_user(cls.manager)

    def test_figures_equal_the_ledger(self):
        data = self.Dashboard.get_dashboard_data("30d")
        kpis = data["kpis"]
        self.assertAlmostEqual(kpis["cost"], sum(self.usages.mapped("cost_usd")), places=10)
        self.assertAlmostEqual(kpis["cost_this_month"], kpis["cost"], places=10)
        self.assertEqual((kpis["calls"], kpis["cache_hits"]), (5, 1))
        self.assertAlmostEqual(kpis["savings"], 0.005, places=10)
        daily = data["daily"]
        self.assertEqual(len(daily["labels"]), 30)
        self.assertEqual(
            {ds["label"]: round(sum(ds["data"]), 9) for ds in daily["datasets"]},
            {"Claude (test)": 0.03, "GPT (test)": 0.005},
        )
        # An operation reads as its label and keeps its code as id, which its click-through filters on.
        self.assertEqual([(row["id"], row["name"]) for row in data["by_operation"]],
                         [("lead_qualification", "Lead qualification"), ("email_draft", "Email draft")])
        self.assertEqual(data["by_user"][0]["id"], self.basic.id)
        gpt = next(p for p in data["providers"] if p["id"] == self.gpt.id)
        self.assertEqual((gpt["calls"], gpt["error_rate"]), (2, 0.5), "cache hits are not provider calls")
        self.assertEqual(gpt["avg_latency_ms"], 500)
        self.assertEqual(gpt["quality"], round(self.gpt.effective_quality, 1))
        self.assertGreater(gpt["quality"], 0)

    def _embedding_usages(self, *specs):
        """Embedding rows (input tokens, cost) of the GPT provider, written through the ORM: the rollups follow."""
        return self.env["ai.token.usage"].create([
            {"provider_id": self.gpt.id, "model": "text-embedding-3-small", "kind": "embedding",
             "operation": "document_embedding", "user_id": self.basic.id, "status": "ok",
             "input_tokens": tokens, "cost_usd": cost}
            for tokens, cost in specs
        ])

    def test_embedding_figures_of_the_period(self):
        empty = self.Dashboard.get_dashboard_data("30d")["kpis"]
        self.assertEqual((empty["embedding_calls"], empty["embedding_tokens"], empty["embedding_cost"]), (0, 0, 0.0))
        self._embedding_usages((40000, 0.0008), (12000, 0.00024))
        kpis = self.Dashboard.get_dashboard_data("30d")["kpis"]
        self.assertEqual((kpis["embedding_calls"], kpis["embedding_tokens"]), (2, 52000))
        self.assertAlmostEqual(kpis["embedding_cost"], 0.00104, places=10)
        # Part of the period's calls and cost, not beside them.
        self.assertEqual(kpis["calls"], empty["calls"] + 2)
        self.assertAlmostEqual(kpis["cost"], empty["cost"] + 0.00104, places=10)
        last_month = self.Dashboard.get_dashboard_data("last_month")["kpis"]
        self.assertEqual(last_month["embedding_calls"], 0, "only the period's embedding calls")

    def test_periods_and_access(self):
        for period in ("7d", "90d", "this_month", "last_month"):
            self.Dashboard.get_dashboard_data(period)
        with self.assertRaisesRegex(UserError, "Unknown dashboard period"):
            self.Dashboard.get_dashboard_data("1y")
        with self.assertRaisesRegex(UserError, "managers"):
            self.env["ai.cost.dashboard"].with_user(self.basic).get_dashboard_data()
        self.assertEqual(period_bounds("last_month", date(2024, 3, 15)), (date(2024, 2, 1), date(2024, 2, 29)))
        self.assertEqual(period_bounds("7d", date(2024, 3, 15)), (date(2024, 3, 9), date(2024, 3, 15)))
        # $1 a day for 10 days of April: $30 by the month's end (the budgets' forecast, core.budget.period_forecast).
        spend = {date(2024, 4, day): 1.0 for day in range(1, 11)}
        self.assertEqual(period_forecast(spend, date(2024, 4, 1), date(2024, 5, 1), date(2024, 4, 10)), 30.0)

    def test_dashboard_tour(self):
        self.gpt.api_key = "sk-test"  # the playground estimates for a provider that can answer
        self._embedding_usages((4000, 0.00008))
        self.env.flush_all()
        self.start_tour(
            "/odoo/action-ai_cost_optimizer.action_ai_cost_dashboard", "ai_cost_dashboard_tour", login="ai_api_manager"
        )


@tagged("post_install", "-at_install")
class TestDashboardMonths(UsageRowsCase):
    """This month against last month, on a fixed calendar: rows dated in February and March 2025."""

    def _usage_on(self, day, cost):
        usage = self.env["ai.token.usage"].create({
            "provider_id": self.provider.id, "model": self.provider.model, "cost_usd": cost, "status": "ok",
            "input_tokens": 100, "output_tokens": 10,
        })
        self.env.cr.execute(SQL("UPDATE ai_token_usage SET create_date = %s WHERE id = %s",
                                datetime.combine(day, time(12)), usage.id))

    def test_this_month_is_compared_with_the_same_days_of_last_month(self):
        for day, cost in ((date(2025, 2, 1), 1.0), (date(2025, 2, 3), 2.0), (date(2025, 2, 4), 4.0),
                          (date(2025, 2, 28), 8.0), (date(2025, 3, 2), 16.0), (date(2025, 3, 3), 32.0)):
            self._usage_on(day, cost)
        self.env["ai.token.usage"].invalidate_model()
        self.env["ai.token.usage"]._rebuild_rollups(date(2025, 1, 1))
        Dashboard = self.env["ai.cost.dashboard"].with_user(self.manager)
        months = Dashboard._month_costs(
            self.env["ai.cost.report"].with_user(self.manager), [("company_id", "=", self.env.company.id)],
            date(2025, 3, 3),
        )
        self.assertEqual(
            {key: round(value, 6) for key, value in months.items()},
            # The forecast weighs March's days 1, 2 and 3 (0, 16 and 32 USD) 1, 2 and 3: 128 / 6 USD a day for
            # the 28 days left (core.budget.forecast_spend, as the budgets forecast).
            {"cost_this_month": 48.0, "cost_last_month": 15.0, "cost_last_month_same_days": 3.0,
             "forecast_month": round(48.0 + 128 / 6 * 28, 6)},
        )

    def test_same_days_last_month(self):
        self.assertEqual(same_days_last_month(date(2025, 3, 3)), (date(2025, 2, 1), date(2025, 2, 3)))
        self.assertEqual(same_days_last_month(date(2025, 3, 31)), (date(2025, 2, 1), date(2025, 2, 28)))
        self.assertEqual(same_days_last_month(date(2025, 1, 15)), (date(2024, 12, 1), date(2024, 12, 15)))
