from datetime import date, datetime
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import SQL

from ..controllers import cost_api
from .common import UsageRowsCase

MARCH = (date(2025, 3, 1), date(2025, 3, 31))
OPERATION = "lead_summary"
RECORDS = 60  # more than the first candidates the API sums (cost_api.PRUNE_CANDIDATES)


@tagged("post_install", "-at_install")
class TestTopRecordsPruning(UsageRowsCase):
    """The API's top records, summed for the year's costliest records only, equal the top of every record:
    also when the year's costliest records spent most of it outside the period."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(user=cls.manager)

    def _usage(self, spent):
        """Usage rows {(res_id, day): cost}, dated as given, with the rollups that follow them."""
        usages = self.env["ai.token.usage"].sudo().create([
            {"provider_id": self.provider.id, "model": "gpt-4o-mini", "operation": OPERATION,
             "res_model": "res.partner", "res_id": res_id, "cost_usd": cost, "user_id": self.manager.id,
             "status": "ok"}
            for (res_id, _day), cost in spent.items()
        ])
        for usage, (_res_id, day) in zip(usages, spent, strict=True):
            self.env.cr.execute(SQL("UPDATE ai_token_usage SET create_date = %s WHERE id = %s",
                                    datetime.combine(day, datetime.min.time()), usage.id))
        self.env["ai.token.usage"]._rebuild_rollups()

    @staticmethod
    def _march_top(spent):
        """The top 10 of March from the rows themselves: costliest first, then in key order."""
        march = {}
        for (res_id, day), cost in spent.items():
            if MARCH[0] <= day <= MARCH[1]:
                march[res_id] = march.get(res_id, 0.0) + cost
        ranked = sorted(march.items(), key=lambda item: (-item[1], item[0]))[:10]
        return [("res.partner", res_id, round(cost, 8), 1) for res_id, cost in ranked]

    def _top(self, **filters):
        """(pruned top or None, the API's top records) of March."""
        query = {"start": str(MARCH[0]), "end": str(MARCH[1]), **filters}
        pruned = cost_api._pruned_top(self.env, query, cost_api._record_parts(self.env, query))
        rows = [(row["res_model"], row["res_id"], round(row["cost_usd"], 8), row["requests"])
                for row in cost_api.cost_payload(self.env, query)["by_record"]]
        return pruned, rows

    def _spent(self, spent_in_january):
        """Record i spends (i + 1) * 1e-4 in March; the first `spent_in_january` records 0.01 in January
        too: the year's costliest records are then the cheapest of March."""
        spent = {(1000 + i, date(2025, 3, 10)): (i + 1) * 1e-4 for i in range(RECORDS)}
        spent.update({(1000 + i, date(2025, 1, 10)): 0.01 for i in range(spent_in_january)})
        return spent

    def test_the_year_costliest_records_hold_the_period_top(self):
        spent = self._spent(spent_in_january=30)
        self._usage(spent)
        for filters in ({}, {"operation": OPERATION}):
            with self.subTest(filters=filters):
                pruned, rows = self._top(**filters)
                self.assertEqual(rows, self._march_top(spent))
                self.assertIsNotNone(pruned)
                self.assertEqual(rows[0][1], 1000 + RECORDS - 1)

    def test_contenders_outside_the_first_candidates(self):
        # The first 40 candidates all spent most of their year in January: March's top is among the
        # contenders, the records whose year reaches the candidates' threshold.
        spent = self._spent(spent_in_january=45)
        self._usage(spent)
        pruned, rows = self._top()
        self.assertEqual(rows, self._march_top(spent))
        self.assertEqual([row[1] for row in pruned], [row[1] for row in rows])

    def test_too_many_contenders_sums_every_record(self):
        spent = self._spent(spent_in_january=45)
        self._usage(spent)
        # Fewer contenders allowed than there are, and no second round that would take every record.
        with patch.object(cost_api, "PRUNE_CONTENDERS", 5), patch.object(cost_api, "PRUNE_CANDIDATES", (40,)):
            pruned, rows = self._top()
        self.assertIsNone(pruned)
        self.assertEqual(rows, self._march_top(spent))

    def test_ties_at_the_threshold_come_in_key_order(self):
        spent = {(2000 + i, date(2025, 3, 10)): 1e-3 for i in range(RECORDS)}
        spent.update({(2000 + i, date(2025, 1, 10)): 0.01 for i in range(0, RECORDS, 2)})
        self._usage(spent)
        pruned, rows = self._top()
        self.assertEqual(rows, self._march_top(spent))
        self.assertEqual([row[1] for row in rows], list(range(2000, 2010)))
        self.assertIsNotNone(pruned)

    def test_a_period_across_years_or_filtered_by_user_sums_every_record(self):
        self._usage(self._spent(spent_in_january=0))
        for query in ({"start": "2024-12-01", "end": "2025-03-31"},
                      {"start": str(MARCH[0]), "end": str(MARCH[1]), "user": self.manager.id}):
            with self.subTest(query=query):
                self.assertFalse(cost_api._worth_pruning(self.env, query))

    def test_pruning_only_for_a_period_that_holds_most_of_its_year(self):
        # March costs 0.183 of the year's 0.233, January the rest.
        self._usage(self._spent(spent_in_january=5))
        for (start, end), worth in ((MARCH, True), ((date(2025, 1, 1), date(2025, 1, 31)), False)):
            with self.subTest(start=start):
                query = {"start": str(start), "end": str(end)}
                self.assertEqual(cost_api._worth_pruning(self.env, query), worth)
