import datetime
import random
from collections import Counter

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user

from .common import MONTH_END, MONTH_START, AnalyticCase

ONE_DAY = datetime.timedelta(days=1)


class TestAnalyticPosting(AnalyticCase):
    def test_month_of_split_calls_adds_up_per_account(self):
        """A few hundred calls, split 30/70 over two departments and 100% on a project at once, or 50/50 with
        the other project: each account's items of the month add up to its share of the ledger within a
        cent, and what no rule allocates is listed, not dropped."""
        split = self.Rule.create({
            "name": "Leads", "operation": "lead_qualification",
            "analytic_distribution": {str(self.sales.id): 30, str(self.rnd.id): 70, str(self.project_a.id): 100},
        })
        self.Rule.create({
            "name": "Summaries", "operation": "summarize", "provider_id": self.provider.id,
            "analytic_distribution": {
                f"{self.sales.id},{self.project_b.id}": 50, f"{self.rnd.id},{self.project_b.id}": 50,
            },
        })
        distributions = {op: rule.analytic_distribution for op, rule in (
            ("lead_qualification", split), ("summarize", self.Rule.search([("operation", "=", "summarize")])))}
        rng = random.Random(26)
        expected, unallocated, calls = Counter(), 0.0, Counter()
        for _ in range(360):
            day = MONTH_START + datetime.timedelta(days=rng.randrange(31))
            operation = rng.choice(["lead_qualification", "summarize", "chat"])
            cost = round(rng.uniform(0.0001, 0.05), 6)
            self.usage(day, cost, operation)
            calls[operation] += 1
            if operation not in distributions:
                unallocated += cost
                continue
            for key, percentage in distributions[operation].items():
                for account_id in key.split(","):
                    expected[int(account_id)] += cost * percentage / 100

        lines = self.Rule.post_analytic_lines(MONTH_START, MONTH_END)

        self.assertTrue(calls["chat"] and calls["summarize"] and calls["lead_qualification"])
        per_account = self.cost_per_account(lines)
        self.assertEqual({account.id for account in per_account}, set(expected))
        for account, posted in per_account.items():
            self.assertAlmostEqual(posted, expected[account.id], delta=0.01, msg=account.name)
        keys = Counter(
            (line.date, line.ai_cost_key, line.ai_cost_provider_id, line.ai_cost_operation) for line in lines
        )
        self.assertEqual(max(keys.values()), 1, "one item per day, account, provider and operation")
        self.assertTrue(all(line.amount < 0 for line in lines if line.ai_cost_usd >= 0.01))
        Unallocated = self.env["ai.cost.unallocated"]
        listed = Unallocated.search([("company_id", "=", self.env.company.id)])
        self.assertEqual(set(listed.mapped("operation")), {"chat"})
        self.assertAlmostEqual(sum(listed.mapped("cost_usd")), unallocated, places=6)
        self.assertAlmostEqual(Unallocated._total_usd(MONTH_START, MONTH_END, self.env.company), unallocated, places=6)
        self.assertEqual(self.env.company.ai_cost_posted_until, MONTH_END)

    def test_eur_company_sees_euros_at_the_days_rate(self):
        eur = self.env.ref("base.EUR")
        company = self.env["res.company"].create({"name": "AI Books EUR (test)", "currency_id": eur.id})
        usd = self.env.ref("base.USD")
        day1, day2 = MONTH_START, MONTH_START + ONE_DAY
        # Rates of the company's currency: 1 EUR buys 1.25 USD on day 1, 1.10 USD from day 2 on.
        self.env["res.currency.rate"].create([
            {"currency_id": usd.id, "company_id": company.id, "name": day1, "rate": 1.25},
            {"currency_id": usd.id, "company_id": company.id, "name": day2, "rate": 1.10},
        ])
        self.Rule.create({"name": "All of it", "company_id": company.id,
                          "analytic_distribution": {str(self.sales.id): 100}})
        self.usage(day1, 10.0, company=company)
        self.usage(day2, 11.0, company=company)

        lines = self.Rule.post_analytic_lines(day1, day2, company).sorted("date")

        self.assertEqual(lines.currency_id, eur)
        self.assertEqual(lines.mapped("amount"), [-8.0, -10.0])
        self.assertEqual(lines.mapped("ai_cost_usd"), [10.0, 11.0])

    def test_posting_again_replaces_the_days_items(self):
        self.Rule.create({"name": "All", "analytic_distribution": {str(self.sales.id): 100}})
        self.usage(MONTH_START, 1.0)
        first = self.Rule.post_analytic_lines(MONTH_START, MONTH_START)
        self.usage(MONTH_START, 0.5)
        again = self.Rule.post_analytic_lines(MONTH_START, MONTH_START)
        self.assertFalse(first.exists())
        self.assertEqual(self.posted_lines(), again)
        self.assertEqual(again.amount, -1.5)

    def test_items_describe_provider_and_operation_by_label(self):
        """Finance reads the items among other costs: the operation by its label, its code kept apart."""
        self.Rule.create({"name": "All", "analytic_distribution": {str(self.sales.id): 100}})
        self.usage(MONTH_START, 1.0, operation="lead_qualification")
        line = self.Rule.post_analytic_lines(MONTH_START, MONTH_START)
        self.assertEqual(line.name, f"AI: {self.provider.name} · Lead qualification")
        self.assertEqual(line.ai_cost_operation, "lead_qualification")

    def test_later_change_of_a_rule_or_record_moves_no_posted_day_until_posted_again(self):
        rule = self.Rule.create({"name": "All", "analytic_distribution": {str(self.sales.id): 100}})
        model = self.env["account.analytic.distribution.model"].create(
            {"analytic_distribution": {str(self.project_a.id): 100}}
        )
        day1, day2 = MONTH_START, MONTH_START + ONE_DAY
        for day in (day1, day2):
            self.usage(day, 2.0)
            self.usage(day, 3.0, res=model)
        self.Rule.post_analytic_lines(day1, day1)
        rule.analytic_distribution = {str(self.rnd.id): 100}
        model.analytic_distribution = {str(self.project_b.id): 100}
        self.Rule.post_analytic_lines(day2, day2)

        def per_account(day):
            lines = self.posted_lines().filtered(lambda line: line.date == day)
            return {account.name: cost for account, cost in self.cost_per_account(lines).items()}

        self.assertEqual(per_account(day1), {"Sales": 2.0, "Project A": 3.0})
        self.assertEqual(per_account(day2), {"R&D": 2.0, "Project B": 3.0})
        self.Rule.post_analytic_lines(day1, day1)
        self.assertEqual(per_account(day1), {"R&D": 2.0, "Project B": 3.0})

    def test_record_distribution_or_account_comes_before_the_rules(self):
        """A call about a record with its own distribution (analytic.mixin) or analytic account is allocated
        there, whatever the rules say; other calls follow the rules."""
        self.Rule.create({"name": "All", "analytic_distribution": {str(self.sales.id): 100}})
        model = self.env["account.analytic.distribution.model"].create(
            {"analytic_distribution": {str(self.rnd.id): 40, str(self.sales.id): 60}}
        )
        item = self.env["account.analytic.line"].create({"name": "Timesheet", "account_id": self.project_b.id})
        self.usage(MONTH_START, 10.0, res=model)
        self.usage(MONTH_START, 1.0, res=item)
        self.usage(MONTH_START, 100.0)
        lines = self.Rule.post_analytic_lines(MONTH_START, MONTH_START)
        per_account = {account.name: cost for account, cost in self.cost_per_account(lines).items()}
        self.assertEqual(per_account, {"R&D": 4.0, "Sales": 106.0, "Project B": 1.0})

    def test_first_matching_rule_wins(self):
        self.Rule.create([
            {"name": "Provider", "sequence": 1, "provider_id": self.provider.id,
             "analytic_distribution": {str(self.rnd.id): 100}},
            {"name": "Everything", "sequence": 2, "analytic_distribution": {str(self.sales.id): 100}},
        ])
        other = self.provider.copy({"name": "Other provider (test)"})
        self.usage(MONTH_START, 1.0)
        self.usage(MONTH_START, 2.0, provider=other)
        lines = self.Rule.post_analytic_lines(MONTH_START, MONTH_START)
        per_account = {account.name: cost for account, cost in self.cost_per_account(lines).items()}
        self.assertEqual(per_account, {"R&D": 1.0, "Sales": 2.0})

    def test_cron_posts_from_the_last_posted_day_to_yesterday(self):
        self.Rule.create({"name": "All", "analytic_distribution": {str(self.sales.id): 100}})
        yesterday = datetime.date.today() - ONE_DAY
        self.env.company.ai_cost_posted_until = yesterday - 3 * ONE_DAY
        self.usage(yesterday - 3 * ONE_DAY, 5.0)  # posted already
        self.usage(yesterday - ONE_DAY, 1.0)
        self.usage(yesterday, 2.0)
        self.usage(yesterday + ONE_DAY, 4.0)  # today: not over yet
        self.Rule._cron_post_analytic_lines()
        self.assertEqual(sorted(self.posted_lines().mapped("amount")), [-2.0, -1.0])
        self.assertEqual(self.env.company.ai_cost_posted_until, yesterday)
        lines = self.posted_lines()
        self.Rule._cron_post_analytic_lines()
        self.assertEqual(self.posted_lines(), lines, "nothing new to post")

    def test_post_again_action(self):
        self.Rule.create({"name": "All", "analytic_distribution": {str(self.sales.id): 100}})
        self.usage(MONTH_START, 1.0, operation="lead_qualification")
        self.usage(MONTH_START, 3.0, operation="chat")
        self.Rule.search([]).operation = "lead_qualification"
        wizard = self.env["ai.cost.analytic.post"].with_user(self.manager).create(
            {"date_from": MONTH_START, "date_to": MONTH_END}
        )
        action = wizard.action_post()
        self.assertEqual(self.env["account.analytic.line"].search(action["domain"]).amount, -1.0)
        wizard.invalidate_recordset(["unallocated_usd"])
        self.assertEqual(wizard.unallocated_usd, 3.0)

    def test_bad_input_is_refused(self):
        today = datetime.date.today()
        bad_ranges = [(MONTH_END, MONTH_START), (today, today), ("2026-02-30", MONTH_END), (None, MONTH_END)]
        for date_from, date_to in bad_ranges:
            with self.assertRaises(UserError):
                self.Rule.post_analytic_lines(date_from, date_to)
        with self.assertRaises(ValidationError):
            self.Rule.create({"name": "Half", "analytic_distribution": {str(self.sales.id): 50}})
        with self.assertRaises(ValidationError):
            self.Rule.create({"name": "None", "analytic_distribution": False})
        with self.assertRaises(ValidationError):
            self.Rule.create({"name": "Bad model", "res_model": "Not a model!",
                              "analytic_distribution": {str(self.sales.id): 100}})
        user = new_test_user(
            self.env, login="ai_books_plain_user", groups="base.group_user,ai_cost_optimizer.group_ai_cost_user"
        )
        with self.assertRaises(AccessError):
            self.Rule.with_user(user).post_analytic_lines(MONTH_START, MONTH_END)
        self.assertFalse(self.posted_lines())
