import datetime

from odoo.addons.ai_cost_optimizer.models.ai_cost_demo import OPERATIONS
from odoo.tools import convert_file

from .common import AnalyticCase


class TestDemoData(AnalyticCase):
    """The shipped demo (demo/ai_cost_analytic_demo.xml) over analytic's demo accounts: a rule for each demo
    operation but translations, and the days up to yesterday posted, so that Analytic Items show AI spend per
    department as soon as the demo starts."""

    def analytic_demo_records(self):
        """The records of analytic's own demo data that the demo uses, under their external ids (analytic's demo
        file itself needs base's demo partners, absent from the tests' database)."""
        plan = self.env["account.analytic.plan"].create({"name": "Departments"})
        accounts = {
            "analytic_commercial_marketing": "Commercial & Marketing",
            "analytic_rd_department": "Research & Development",
            "analytic_rd_finance": "Finance",
        }
        records = [("analytic_plan_departments", plan)] + [
            (xml_id, self.env["account.analytic.account"].create({"name": name, "plan_id": plan.id}))
            for xml_id, name in accounts.items()
        ]
        self.env["ir.model.data"]._update_xmlids([
            {"xml_id": f"analytic.{xml_id}", "record": record, "noupdate": True} for xml_id, record in records
        ])

    def test_demo_rules_post_the_spend_per_department(self):
        yesterday = datetime.date.today() - datetime.timedelta(days=1)
        for operation in OPERATIONS:
            self.usage(yesterday, 1.0, operation)
        self.analytic_demo_records()
        convert_file(self.env, "ai_cost_optimizer_analytic", "demo/ai_cost_analytic_demo.xml", None,
                     mode="init", kind="demo")

        rules = self.Rule.search([])
        self.assertEqual(set(rules.mapped("operation")), set(OPERATIONS) - {"translation"})
        per_account = {account.name: cost for account, cost in self.cost_per_account(self.posted_lines()).items()}
        self.assertEqual(per_account["Sales"], 3.6)  # three lead operations, 60% of the e-mail drafts
        self.assertEqual(per_account["CRM Copilot"], 2.0)
        self.assertEqual(per_account["Finance"], 1.0)
        unallocated = self.env["ai.cost.unallocated"].search([("day", "=", yesterday)])
        self.assertEqual(unallocated.mapped("operation"), ["translation"])
        self.assertEqual(self.env.company.ai_cost_posted_until, yesterday)
        # Analytic Items open for the administrator: the demo gives internal users analytic accounting.
        self.assertTrue(self.env.ref("base.user_admin").has_group("analytic.group_analytic_accounting"))
