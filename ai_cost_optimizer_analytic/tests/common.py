import datetime

from odoo.addons.ai_cost_optimizer.tests.common import UsageRowsCase
from odoo.tools import SQL

# A past month, whole: the days the tests post.
MONTH_START = datetime.date(2026, 3, 1)
MONTH_END = datetime.date(2026, 3, 31)


class AnalyticCase(UsageRowsCase):
    """Two analytic plans (departments, projects) of two accounts each, and ledger rows written on chosen days."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Plan = cls.env["account.analytic.plan"]
        Account = cls.env["account.analytic.account"]
        cls.departments = Plan.create({"name": "Departments (test)"})
        cls.projects = Plan.create({"name": "Projects (test)"})
        cls.sales = Account.create({"name": "Sales", "plan_id": cls.departments.id, "company_id": False})
        cls.rnd = Account.create({"name": "R&D", "plan_id": cls.departments.id, "company_id": False})
        cls.project_a = Account.create({"name": "Project A", "plan_id": cls.projects.id, "company_id": False})
        cls.project_b = Account.create({"name": "Project B", "plan_id": cls.projects.id, "company_id": False})
        cls.Rule = cls.env["ai.cost.allocation.rule"]
        # Rules of the database's own demo or setup would match these calls first.
        cls.Rule.search([]).action_archive()

    def usage(self, day, cost, operation="chat", company=None, res=None, provider=None):
        """A ledger row of `cost` USD written on `day` (UTC), about the record `res` if given."""
        usage = self.env["ai.token.usage"].create({
            "provider_id": (provider or self.provider).id, "model": "gpt-4o-mini", "operation": operation,
            "company_id": (company or self.env.company).id, "cost_usd": cost, "input_tokens": 100,
            "output_tokens": 20, "res_model": res and res._name, "res_id": res and res.id,
        })
        self.env.cr.execute(SQL(
            "UPDATE ai_token_usage SET create_date = %s WHERE id = %s",
            datetime.datetime.combine(day, datetime.time(12, 0)), usage.id,
        ))
        self.env.invalidate_all()
        return usage

    def posted_lines(self, company=None):
        return self.env["account.analytic.line"].search(
            [("ai_cost_key", "!=", False), ("company_id", "=", (company or self.env.company).id)]
        )

    @staticmethod
    def cost_per_account(lines):
        """{account: the cost (positive) its items post}."""
        totals = {}
        for line in lines:
            for account in line._get_analytic_accounts():
                totals[account] = totals.get(account, 0.0) - line.amount
        return totals
