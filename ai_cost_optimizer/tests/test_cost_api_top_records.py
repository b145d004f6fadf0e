from datetime import date, datetime

from odoo.tests import tagged
from odoo.tools import SQL

from .common import UsageRowsCase, delete_rows_of

# Two months. March from the 5th.
SPRING = (date(2025, 2, 15), date(2025, 3, 31))
MARCH = (date(2025, 3, 5), date(2025, 3, 31))
OPERATION = "lead_summary"
RECORDS = 60  # several times the API's top 10


@tagged("post_install", "-at_install")
class TestTopRecords(UsageRowsCase):
    """The API's top records equal the top of every record's sum over the raw rows: also when the costliest
    records of the year or month that holds the period spent most of it outside the period."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(user=cls.manager)

    def _usage(self, spent, company=None):
        """Usage rows {(res_id, day): cost}, dated as given (in `company`, if given), with the rollups that
        follow them."""
        usages = self.env["ai.token.usage"].sudo().create([
            {"provider_id": self.provider.id, "model": "gpt-4o-mini", "operation": OPERATION,
             "res_model": "res.partner", "res_id": res_id, "cost_usd": cost, "user_id": self.manager.id,
             "status": "ok"}
            for (res_id, _day), cost in spent.items()
        ])
        for usage, (_res_id, day) in zip(usages, spent, strict=True):
            self.env.cr.execute(SQL("UPDATE ai_token_usage SET create_date = %s, company_id = %s WHERE id = %s",
                                    datetime.combine(day, datetime.min.time()), (company or usage.company_id).id,
                                    usage.id))
        self.env["ai.token.usage"]._rebuild_rollups()

    @staticmethod
    def _expected_top(spent, period):
        """The top 10 of `period` from the rows themselves: costliest first, then in key order."""
        sums = {}
        for (res_id, day), cost in spent.items():
            if period[0] <= day <= period[1]:
                total, calls = sums.get(res_id, (0.0, 0))
                sums[res_id] = (total + cost, calls + 1)
        ranked = sorted(sums.items(), key=lambda item: (-item[1][0], item[0]))[:10]
        return [("res.partner", res_id, round(cost, 8), calls) for res_id, (cost, calls) in ranked]

    def _top(self, period, **filters):
        """The API's top records of `period`."""
        query = {"start": str(period[0]), "end": str(period[1]), **filters}
        return [(row["res_model"], row["res_id"], round(row["cost_usd"], 8), row["requests"])
                for row in self.env["ai.cost.report"]._costs(query)["by_record"]]

    @staticmethod
    def _spent(spent_outside, day_outside=date(2025, 1, 10), cost_outside=0.01):
        """Record i spends (i + 1) * 1e-4 on March 10; the first `spent_outside` records `cost_outside` on
        `day_outside` too: the costliest records of its year (or month) are then among the cheapest of March."""
        spent = {(1000 + i, date(2025, 3, 10)): (i + 1) * 1e-4 for i in range(RECORDS)}
        spent.update({(1000 + i, day_outside): cost_outside for i in range(spent_outside)})
        return spent

    def test_the_year_costliest_records_are_not_the_period_top(self):
        for spent_outside in (30, 45):
            spent = self._spent(spent_outside=spent_outside)
            self._usage(spent)
            for filters in ({}, {"operation": OPERATION}):
                with self.subTest(spent_outside=spent_outside, filters=filters):
                    rows = self._top(SPRING, **filters)
                    self.assertEqual(rows, self._expected_top(spent, SPRING))
                    self.assertEqual(rows[0][1], 1000 + RECORDS - 1)
            delete_rows_of(self.env, self.provider)

    def test_a_period_within_a_month(self):
        # Spent in January, outside March; or on March 2, outside the period but in its month: the month's
        # costliest records are among the period's cheapest.
        for day_outside in (date(2025, 1, 10), date(2025, 3, 2)):
            spent = self._spent(spent_outside=45, day_outside=day_outside, cost_outside=0.003)
            self._usage(spent)
            for filters in ({}, {"operation": OPERATION}):
                with self.subTest(day_outside=day_outside, filters=filters):
                    self.assertEqual(self._top(MARCH, **filters), self._expected_top(spent, MARCH))
            delete_rows_of(self.env, self.provider)

    def test_ties_come_in_key_order(self):
        spent = {(2000 + i, date(2025, 3, 10)): 1e-3 for i in range(RECORDS)}
        spent.update({(2000 + i, date(2025, 1, 10)): 0.01 for i in range(0, RECORDS, 2)})
        self._usage(spent)
        rows = self._top(SPRING)
        self.assertEqual(rows, self._expected_top(spent, SPRING))
        self.assertEqual([row[1] for row in rows], list(range(2000, 2010)))

    def test_a_record_in_two_companies_is_one_record(self):
        other = self.env["res.company"].sudo().create({"name": "Top records, second company"})
        self.manager.sudo().company_ids |= other
        self.env = self.env(context={"allowed_company_ids": [self.env.company.id, other.id]})
        spent = self._spent(spent_outside=20)
        self._usage({key: cost for key, cost in spent.items() if key[1] < SPRING[0]}, company=other)
        self._usage(spent)
        self.assertEqual(self._top(SPRING), self._expected_top(spent, SPRING))

    def test_across_years_or_filtered_by_user(self):
        spent = self._spent(spent_outside=30, day_outside=date(2024, 12, 20))
        self._usage(spent)
        for period, filters in (((date(2024, 12, 1), date(2025, 3, 31)), {}),
                                ((date(2024, 12, 21), date(2025, 3, 31)), {}),
                                (SPRING, {"user": self.manager.id})):
            with self.subTest(period=period, filters=filters):
                self.assertEqual(self._top(period, **filters), self._expected_top(spent, period))
