from odoo.exceptions import UserError
from odoo.tests import HttpCase, tagged

from ..models.ai_cost_dashboard import month_forecast, period_bounds
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
        self.assertEqual([row["name"] for row in data["by_operation"]], ["lead_qualification", "email_draft"])
        self.assertEqual(data["by_user"][0]["id"], self.basic.id)
        gpt = next(p for p in data["providers"] if p["id"] == self.gpt.id)
        self.assertEqual((gpt["calls"], gpt["error_rate"]), (2, 0.5), "cache hits are not provider calls")
        self.assertEqual(gpt["avg_latency_ms"], 500)

    def test_periods_and_access(self):
        for period in ("7d", "90d", "this_month", "last_month"):
            self.Dashboard.get_dashboard_data(period)
        with self.assertRaisesRegex(UserError, "Unknown dashboard period"):
            self.Dashboard.get_dashboard_data("1y")
        with self.assertRaisesRegex(UserError, "managers"):
            self.env["ai.cost.dashboard"].with_user(self.basic).get_dashboard_data()
        from datetime import date

        self.assertEqual(period_bounds("last_month", date(2024, 3, 15)), (date(2024, 2, 1), date(2024, 2, 29)))
        self.assertEqual(period_bounds("7d", date(2024, 3, 15)), (date(2024, 3, 9), date(2024, 3, 15)))
        self.assertEqual(month_forecast(10.0, date(2024, 4, 10)), 30.0)

    def test_dashboard_tour(self):
        self.gpt.api_key = "sk-test"  # the playground estimates for a provider that can answer
        self.env.flush_all()
        self.start_tour(
            "/odoo/action-ai_cost_optimizer.action_ai_cost_dashboard", "ai_cost_dashboard_tour", login="ai_api_manager"
        )
