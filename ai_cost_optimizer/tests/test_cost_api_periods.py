from collections import defaultdict
from datetime import date, datetime

from odoo.tests import tagged
from odoo.tools import SQL

from .common import UsageRowsCase

# Usage days over three months, so that periods can cut months on either side.
DAYS = [date(2025, 1, 10), date(2025, 1, 25), date(2025, 2, 5), date(2025, 2, 20), date(2025, 3, 15)]
OPERATIONS = ["lead_qualification", "email_draft"]
RECORDS = 12  # more than the API's top 10
ROWS = 30
PERIODS = [
    (date(2025, 1, 1), date(2025, 3, 31)),  # whole months
    (date(2025, 1, 20), date(2025, 3, 31)),  # cuts January after a usage day
    (date(2025, 1, 1), date(2025, 2, 10)),  # cuts February before a usage day
    (date(2025, 1, 20), date(2025, 2, 10)),  # cuts both months
    (date(2025, 1, 20), date(2025, 3, 10)),  # cuts January and March, covers February
    (date(2025, 1, 11), date(2025, 1, 31)),  # inside one month it cuts
    (date(2025, 1, 11), date(2025, 3, 31)),  # cuts January late: the month less its first days
    (date(2025, 1, 1), date(2025, 2, 19)),  # cuts February late: the month less its last days
    (date(2025, 1, 26), date(2025, 2, 19)),  # cuts both, no usage day inside the first one
    (date(2025, 2, 5), date(2025, 2, 5)),  # one day
    (date(2025, 3, 1), date(2025, 12, 31)),  # the months after March have no usage: March counts whole
    (date(2024, 12, 1), date(2025, 1, 10)),  # from a month without usage to the first usage day
]


@tagged("post_install", "-at_install")
class TestCostApiPeriods(UsageRowsCase):
    """The API's figures for periods that cut months equal the raw ledger: by_record combines the
    per-month rollup for the months the period covers with the per-day one for the days of the others."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Costs are distinct powers of two (in units of 1e-8 USD), so that no two records tie in a period.
        cls.usages = cls.env["ai.token.usage"].create([
            {
                "provider_id": cls.provider.id, "model": "gpt-4o-mini", "operation": OPERATIONS[k % 2],
                "res_model": "res.partner", "res_id": 1 + k % RECORDS, "cost_usd": 2 ** k * 1e-8,
                "user_id": cls.manager.id, "status": "ok", "input_tokens": 100, "output_tokens": 10,
            }
            for k in range(ROWS)
        ])
        for k, usage in enumerate(cls.usages):
            cls.env.cr.execute(SQL(
                "UPDATE ai_token_usage SET create_date = %s WHERE id = %s",
                datetime.combine(DAYS[k % len(DAYS)], datetime.min.time().replace(hour=12)), usage.id,
            ))
        cls.env["ai.token.usage"]._rebuild_rollups()

    def _payload(self, start, end, **filters):
        return self.env(user=self.manager)["ai.cost.report"]._costs({"start": str(start), "end": str(end), **filters})

    def _expected_records(self, start, end, operation=None):
        sums = defaultdict(lambda: [0.0, 0])
        for usage in self.usages:
            if start <= usage.create_date.date() <= end and operation in (None, usage.operation):
                sums[(usage.res_model, usage.res_id)][0] += usage.cost_usd
                sums[(usage.res_model, usage.res_id)][1] += 1
        ranked = sorted(sums.items(), key=lambda item: -item[1][0])[:10]
        return [(model, res_id, round(cost, 8), n) for (model, res_id), (cost, n) in ranked]

    def _records(self, body):
        return [(row["res_model"], row["res_id"], round(row["cost_usd"], 8), row["requests"])
                for row in body["by_record"]]

    def test_periods_that_cut_months_equal_the_ledger(self):
        for start, end in PERIODS:
            with self.subTest(start=start, end=end):
                body = self._payload(start, end)
                expected = self._expected_records(start, end)
                self.assertEqual(self._records(body), expected)
                in_period = self.usages.filtered(lambda u, s=start, e=end: s <= u.create_date.date() <= e)
                self.assertAlmostEqual(body["total_cost_usd"], sum(in_period.mapped("cost_usd")), places=10)
                self.assertEqual(body["total_requests"], len(in_period))

    def test_operation_filter_over_cut_months(self):
        start, end = date(2025, 1, 20), date(2025, 3, 31)
        body = self._payload(start, end, operation="email_draft")
        self.assertEqual(self._records(body), self._expected_records(start, end, "email_draft"))
        drafts = self.usages.filtered(lambda u: u.operation == "email_draft" and start <= u.create_date.date() <= end)
        self.assertEqual(body["total_requests"], len(drafts))

    def test_records_without_calls_in_the_period_are_left_out(self):
        """A record whose usage moved to another record, or used only in the days taken off a cut month,
        has rollup rows that sum to no calls: it is not one of the period's records."""
        def create(*res_ids):
            return self.env["ai.token.usage"].create([
                {"provider_id": self.provider.id, "model": "gpt-4o-mini", "res_model": "res.partner",
                 "res_id": res_id, "cost_usd": 0.01, "user_id": self.manager.id, "status": "ok"}
                for res_id in res_ids
            ])

        moved, kept = create(301, 302)
        moved.res_id = 303
        today = kept.create_date.date()
        self.assertEqual(self._records(self._payload(today, today)), [
            ("res.partner", 302, 0.01, 1), ("res.partner", 303, 0.01, 1),
        ])
        # May 10-31 cuts May: read as the month less May 1-9, when record 201 was used.
        days = (date(2025, 5, 3), date(2025, 5, 20), date(2025, 6, 10))
        for usage, day in zip(create(201, 202, 203), days, strict=True):
            self.env.cr.execute(SQL(
                "UPDATE ai_token_usage SET create_date = %s WHERE id = %s", datetime.combine(day, datetime.min.time()),
                usage.id,
            ))
        self.env["ai.token.usage"]._rebuild_rollups(date(2025, 5, 1))
        self.assertEqual(self._records(self._payload(date(2025, 5, 10), date(2025, 6, 30))), [
            ("res.partner", 202, 0.01, 1), ("res.partner", 203, 0.01, 1),
        ])

    def test_records_of_equal_cost_come_in_the_order_of_their_keys(self):
        tied = self.env["ai.token.usage"].create([
            {"provider_id": self.provider.id, "model": "gpt-4o-mini", "res_model": "res.partner",
             "res_id": res_id, "cost_usd": 0.01, "user_id": self.manager.id, "status": "ok"}
            for res_id in range(412, 400, -1)
        ])
        today = tied[:1].create_date.date()
        # Whatever plan PostgreSQL picks: a hash aggregate gives the records in no particular order.
        self.env.cr.execute("SET enable_sort = off")
        self.addCleanup(self.env.cr.execute, "RESET enable_sort")
        self.assertEqual([row[1] for row in self._records(self._payload(today, today))], list(range(401, 411)))

    def test_equal_costs_summed_from_other_rows_come_in_key_order(self):
        # Record 602 spends 0.1 then 0.2 in two operations, record 601 spends 0.3 at once: equal costs, whose
        # float8 sums over the per-day rollup's rows (read for a user) are not: 0.1 + 0.2 > 0.3.
        usages = self.env["ai.token.usage"].create([
            {"provider_id": self.provider.id, "model": "gpt-4o-mini", "operation": operation,
             "res_model": "res.partner", "res_id": res_id, "cost_usd": cost, "user_id": self.manager.id,
             "status": "ok"}
            for res_id, cost, operation in ((602, 0.1, "a"), (602, 0.2, "b"), (601, 0.3, "a"))
        ])
        today = usages[0].create_date.date()
        self.assertEqual(self._records(self._payload(today, today, user=self.manager.id))[:2], [
            ("res.partner", 601, 0.3, 1), ("res.partner", 602, 0.3, 2),
        ])

    def test_one_record(self):
        body = self._payload(date(2025, 1, 20), date(2025, 3, 31), res_model="res.partner", res_id=2)
        # res_id 2 has the rows k = 1 (Jan 25), 13 (Feb 20) and 25 (Jan 10, before the period).
        self.assertEqual(self._records(body), [("res.partner", 2, round((2 + 2 ** 13) * 1e-8, 8), 2)])

    def test_month_rollup_follows_the_ledger_and_rebuilds(self):
        """Written rows move their month's sums at once; a rebuild from any day redoes whole months."""
        Monthly = self.env["ai.token.usage.record.monthly"]
        new = self.env["ai.token.usage"].create({
            "provider_id": self.provider.id, "model": "gpt-4o-mini", "res_model": "res.partner", "res_id": 99,
            "cost_usd": 0.5, "user_id": self.manager.id, "status": "ok",
        })
        row = Monthly.search([("res_id", "=", 99)])
        self.assertEqual((row.day, row.call_count, row.cost_usd), (new.create_date.date().replace(day=1), 1, 0.5))
        new.res_id = 98
        self.assertEqual(Monthly.search([("res_id", "=", 99)]).call_count, 0)
        self.assertEqual(Monthly.search([("res_id", "=", 98)]).call_count, 1)

        def snapshot():
            Monthly.invalidate_model()
            return sorted(
                (r.day, r.res_id, r.call_count, round(r.cost_usd, 8)) for r in Monthly.search([]) if r.call_count
            )

        before = snapshot()
        self.env["ai.token.usage"]._rebuild_rollups(date(2025, 2, 10))  # mid-month: rebuilds February whole
        self.assertEqual(snapshot(), before)
        self.assertIn((date(2025, 2, 1), 3, 1, round(2 ** 2 * 1e-8, 8)), before)
