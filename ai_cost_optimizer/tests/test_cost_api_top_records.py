from datetime import date, datetime
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import SQL

from ..controllers import cost_api
from .common import UsageRowsCase, delete_rows_of

# Two months: the year bounds its records. March from the 5th: the month does.
SPRING = (date(2025, 2, 15), date(2025, 3, 31))
MARCH = (date(2025, 3, 5), date(2025, 3, 31))
OPERATION = "lead_summary"
RECORDS = 60  # more than the first candidates the API sums (cost_api.PRUNE_CANDIDATES)


@tagged("post_install", "-at_install")
class TestTopRecordsPruning(UsageRowsCase):
    """The API's top records, summed for the costliest records of the year or month that holds the period
    only, equal the top of every record: also when those spent most of their year or month outside it."""

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
                sums[res_id] = sums.get(res_id, 0.0) + cost
        ranked = sorted(sums.items(), key=lambda item: (-item[1], item[0]))[:10]
        return [("res.partner", res_id, round(cost, 8), 1) for res_id, cost in ranked]

    @staticmethod
    def _ids(rows):
        return [row[1] for row in rows]

    def _top(self, period, year_bound=False, **filters):
        """(the rollup that bounds the period's records, the pruned top or None, the API's top records).
        Bound by its year if `year_bound`, even when the API would not: the period holds less than half of
        the year's cost, where `_pruned_top` must be exact all the same."""
        query = {"start": str(period[0]), "end": str(period[1]), **filters}
        Yearly = self.env[cost_api.RECORD_OPERATION_YEARLY if "operation" in filters else cost_api.RECORD_YEARLY]
        year = [("day", "=", period[0].replace(month=1, day=1))] + cost_api.key_domain(query)
        bound = (Yearly, year) if year_bound else cost_api._record_bound(self.env, query)
        pruned = bound and cost_api._pruned_top(self.env, cost_api._record_parts(self.env, query), bound)
        rows = [(row["res_model"], row["res_id"], round(row["cost_usd"], 8), row["requests"])
                for row in cost_api.cost_payload(self.env, query)["by_record"]]
        return bound and bound[0]._name, pruned, rows

    @staticmethod
    def _spent(spent_outside, day_outside=date(2025, 1, 10), cost_outside=0.01):
        """Record i spends (i + 1) * 1e-4 on March 10; the first `spent_outside` records `cost_outside` on
        `day_outside` too: the costliest records of its year (or month) are then among the cheapest of March."""
        spent = {(1000 + i, date(2025, 3, 10)): (i + 1) * 1e-4 for i in range(RECORDS)}
        spent.update({(1000 + i, day_outside): cost_outside for i in range(spent_outside)})
        return spent

    def test_the_year_costliest_records_hold_the_period_top(self):
        spent = self._spent(spent_outside=30)
        self._usage(spent)
        for filters in ({}, {"operation": OPERATION}):
            with self.subTest(filters=filters):
                _bound, pruned, rows = self._top(SPRING, year_bound=True, **filters)
                self.assertEqual(rows, self._expected_top(spent, SPRING))
                self.assertEqual(self._ids(pruned), self._ids(rows))
                self.assertEqual(rows[0][1], 1000 + RECORDS - 1)

    def test_the_month_bounds_a_period_within_it(self):
        # Spent in January, outside March: the month's bounds are exact. Spent on March 2, outside the
        # period but in its month: the month's costliest records are among the period's cheapest.
        for day_outside in (date(2025, 1, 10), date(2025, 3, 2)):
            spent = self._spent(spent_outside=45, day_outside=day_outside, cost_outside=0.003)
            self._usage(spent)
            for filters, bucket in (({}, cost_api.RECORD_MONTHLY), ({"operation": OPERATION},
                                                                  cost_api.RECORD_OPERATION_MONTHLY)):
                with self.subTest(day_outside=day_outside, filters=filters):
                    bound, pruned, rows = self._top(MARCH, **filters)
                    self.assertEqual(bound, bucket)
                    self.assertEqual(rows, self._expected_top(spent, MARCH))
                    self.assertEqual(self._ids(pruned), self._ids(rows))
            delete_rows_of(self.env, self.provider)

    def test_contenders_outside_the_first_candidates(self):
        # The first 40 candidates all spent most of their year in January: the period's top is among the
        # contenders, the records whose year reaches the candidates' threshold.
        spent = self._spent(spent_outside=45)
        self._usage(spent)
        _bound, pruned, rows = self._top(SPRING, year_bound=True)
        self.assertEqual(rows, self._expected_top(spent, SPRING))
        self.assertEqual(self._ids(pruned), self._ids(rows))

    def test_too_many_contenders_sums_every_record(self):
        spent = self._spent(spent_outside=45)
        self._usage(spent)
        # Fewer contenders allowed than there are, and no second round that would take every record.
        with patch.object(cost_api, "PRUNE_CONTENDERS", 5), patch.object(cost_api, "PRUNE_CANDIDATES", (40,)):
            _bound, pruned, rows = self._top(SPRING, year_bound=True)
        self.assertIsNone(pruned)
        self.assertEqual(rows, self._expected_top(spent, SPRING))

    def test_ties_at_the_threshold_come_in_key_order(self):
        spent = {(2000 + i, date(2025, 3, 10)): 1e-3 for i in range(RECORDS)}
        spent.update({(2000 + i, date(2025, 1, 10)): 0.01 for i in range(0, RECORDS, 2)})
        self._usage(spent)
        _bound, pruned, rows = self._top(SPRING, year_bound=True)
        self.assertEqual(rows, self._expected_top(spent, SPRING))
        self.assertEqual([row[1] for row in rows], list(range(2000, 2010)))
        self.assertEqual(self._ids(pruned), self._ids(rows))

    def test_a_record_in_two_companies_is_one_record(self):
        # The year's 40 costliest rows are those of 20 records, in two companies: not every record of the
        # year, whose period top is elsewhere.
        other = self.env["res.company"].sudo().create({"name": "Top records, second company"})
        self.manager.sudo().company_ids |= other
        self.env = self.env(context={"allowed_company_ids": [self.env.company.id, other.id]})
        spent = self._spent(spent_outside=20)
        self._usage({key: cost for key, cost in spent.items() if key[1] < SPRING[0]}, company=other)
        self._usage(spent)
        _bound, pruned, rows = self._top(SPRING, year_bound=True)
        self.assertEqual(rows, self._expected_top(spent, SPRING))
        self.assertEqual(self._ids(pruned), self._ids(rows))

    def test_no_bound_across_years_or_filtered_by_user(self):
        self._usage(self._spent(spent_outside=0))
        for query in ({"start": "2024-12-01", "end": "2025-03-31"},
                      {"start": str(SPRING[0]), "end": str(SPRING[1]), "user": self.manager.id}):
            with self.subTest(query=query):
                self.assertIsNone(cost_api._record_bound(self.env, query))

    def test_a_bound_only_for_a_period_that_holds_most_of_its_year_or_month(self):
        # March 10 costs 0.183 of the year's 0.233, January 10 the rest.
        self._usage(self._spent(spent_outside=5))
        for period, bucket in ((SPRING, cost_api.RECORD_YEARLY), ((date(2025, 1, 1), date(2025, 2, 28)), None),
                               (MARCH, cost_api.RECORD_MONTHLY), ((date(2025, 3, 11), date(2025, 3, 31)), None)):
            with self.subTest(period=period):
                bound = cost_api._record_bound(self.env, {"start": str(period[0]), "end": str(period[1])})
                self.assertEqual(bound and bound[0]._name, bucket)
