import random

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import AiCostCase


@tagged("post_install", "-at_install")
class TestCostAnalytics(AiCostCase):
    def _send(self, provider, operation, res_model=None, content="Qualify lead 42."):
        return self.env["ai.service"].send_message(
            [{"role": "user", "content": content}], provider=provider, operation=operation, res_model=res_model
        )

    def _calls(self):
        self._send(self.gpt, "lead_qualification", "res.partner")
        self._send(self.gpt, "lead_qualification", "res.partner")  # a duplicate: waste
        self._send(self.claude, "ticket_summary", "res.users", content="Summarize ticket 7.")

    def test_breakdown_totals_equal_the_usage_rows(self):
        self._calls()
        rows = self.usage_rows()
        breakdown = self.env["ai.token.analytics"].get_cost_breakdown("month")
        self.assertAlmostEqual(breakdown["total_cost"], sum(rows.mapped("cost_usd")), places=10)
        self.assertEqual(breakdown["call_count"], len(rows))
        for name, field in (("by_module", "operation"), ("by_context", "res_model"), ("by_provider", "provider_id")):
            with self.subTest(breakdown=name):
                self.assertAlmostEqual(sum(row["cost_usd"] for row in breakdown[name]), breakdown["total_cost"],
                                       places=10)
                for row in breakdown[name]:
                    matching = rows.filtered(lambda usage, row=row, field=field: (
                        usage[field].id if field == "provider_id" else usage[field]) == row["key"])
                    self.assertAlmostEqual(row["cost_usd"], sum(matching.mapped("cost_usd")), places=10)
        top = breakdown["by_provider"][0]
        self.assertEqual(top["key"], self.claude.id, "the most expensive provider comes first")
        self.assertEqual(breakdown["by_user"][0]["key"], self.env.uid)
        self.assertEqual(breakdown["trends"]["previous_total_cost"], 0.0)
        self.assertAlmostEqual(breakdown["trends"]["change_usd"], breakdown["total_cost"], places=10)
        mine = self.env["ai.token.analytics"].get_cost_breakdown("day", user_id=self.env.ref("base.public_user").id)
        self.assertEqual(mine["total_cost"], 0.0)

    def test_breakdown_bad_input(self):
        Analytics = self.env["ai.token.analytics"]
        for period in ("year", None, 3):
            with self.assertRaises(UserError):
                Analytics.get_cost_breakdown(period)
        with self.assertRaises(UserError):
            Analytics.get_cost_breakdown("month", user_id="admin")

    def test_cron_is_idempotent(self):
        self._calls()
        Analytics = self.env["ai.token.analytics"]
        first = Analytics._cron_build_periods()
        company_records = first.filtered(lambda record: record.company_id == self.env.company)
        self.assertEqual(sorted(company_records.mapped("period_type")), ["day", "month", "week"])
        day = company_records.filtered(lambda record: record.period_type == "day")
        rows = self.usage_rows()
        self.assertAlmostEqual(day.total_cost, sum(rows.mapped("cost_usd")), places=10)
        self.assertEqual(day.waste_count, len(rows.filtered("waste_detected")))
        self.assertAlmostEqual(day.potential_savings_usd, sum(rows.mapped("could_have_saved_usd")), places=10)
        self.assertIn("Duplicate query", day.recommendations)
        self.assertTrue(day.top_cost_driver.startswith("Operation "))
        count = Analytics.search_count([])
        self._send(self.gpt, "lead_qualification", content="Qualify lead 43.")
        second = Analytics._cron_build_periods()
        self.assertEqual(Analytics.search_count([]), count, "re-running updates the period records")
        self.assertEqual(second, first)
        self.assertAlmostEqual(day.total_cost, sum(self.usage_rows().mapped("cost_usd")), places=10)
        self.assertEqual(day.date_from, fields.Date.today())

    def test_demo_ledger_gets_findings_and_periods(self):
        self._send(self.gpt, "lead_qualification")
        usage = self.usage_rows()[-1]
        # The demo generator flags rows with the rule in waste_reason and the saving, without findings.
        saving = usage.cost_usd / 4
        usage.write({"waste_detected": True, "waste_reason": "missed_cache", "could_have_saved_usd": saving})
        self.env.flush_all()
        Demo = self.env["ai.cost.demo"]
        Demo._demo_waste_findings()
        Demo._demo_waste_findings()  # idempotent
        finding = usage.waste_finding_ids
        self.assertEqual(len(finding), 1)
        self.assertEqual(finding.rule, "missed_cache")
        self.assertLessEqual(abs(finding.tokens_wasted - usage.total_tokens / 4), 0.5)
        self.assertAlmostEqual(finding.cost_wasted_usd, saving, places=8)
        self.assertEqual((finding.company_id, finding.operation), (usage.company_id, "lead_qualification"))
        Demo._demo_analytics_periods(days=1)
        Analytics = self.env["ai.token.analytics"]
        days = Analytics.search([("company_id", "=", self.env.company.id), ("period_type", "=", "day")])
        self.assertEqual(len(days), 2, "yesterday and today")

    def test_demo_recommendations_rank_providers_as_once_keys_are_entered(self):
        self.gpt.api_key = False  # as the demo providers: the optimizer finds it unusable
        self.assertNotEqual(
            self.env["ai.cost.optimizer"].recommend_provider("classify", 500, "low")["provider_id"], self.gpt.id
        )
        before = self.env["ai.cost.recommendation"].search([])
        providers = {"gpt": self.gpt, "claude": self.claude}
        self.env["ai.cost.demo"]._demo_recommendations(providers, random.Random(3), days=30, per_question=2)
        made = self.env["ai.cost.recommendation"].search([]) - before
        self.assertEqual(len(made), 5 * 3 * 2, "5 task types of the demo operations, 3 quality bars")
        self.assertIn(self.gpt, made.recommended_provider_id)
        now = fields.Datetime.now()
        self.assertTrue(all(fields.Datetime.subtract(now, days=30) <= date <= now for date in made.mapped("date")))
        self.assertTrue(all(made.mapped("reasoning")))
