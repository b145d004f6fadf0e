"""Spend anomalies (DESIGN section 13): a week of normal office hours, then one hour in which an agent loops.
The hourly check finds the looping operation and its user, once a day, and tells the right people."""

import threading
import time as clock
from datetime import datetime, time, timedelta

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.exceptions import ValidationError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import SQL

from ..core.anomaly import Anomaly, last_complete_hour
from .common import UsageRowsCase

# Office hours (UTC) of the normal week: every operation has calls in these hours of each of the 7 days.
OFFICE_HOURS = range(8, 18)


class LoopingWeekMixin:
    """A week of normal office hours for four people, then the hour in which Alice's enrichment agent loops."""

    @classmethod
    def _make_looping_week(cls):
        cls.provider = getattr(cls, "provider", None) or cls.env["ai.service.provider"].create({
            "name": "Anomaly test provider", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
            "model": "gpt-4o-mini",
        })
        user_group = "base.group_user,ai_cost_optimizer.group_ai_cost_user"
        cls.alice, cls.bob, cls.carol, cls.dave = (
            new_test_user(cls.env, login=f"anomaly_{name}", name=name.title(), groups=user_group)
            for name in ("alice", "bob", "carol", "dave")
        )
        cls.rita = new_test_user(cls.env, login="anomaly_rita", name="Rita Responsible", groups=user_group)
        cls.enrichment = cls.env["ai.cost.budget.operation"].create({"name": "lead_enrichment"})
        cls.budget = cls.env["ai.cost.budget"].create({
            "name": "Lead enrichment", "budget_amount": 500, "responsible_id": cls.rita.id,
            "operation_ids": [Command.set(cls.enrichment.ids)],
        })
        # The looping hour: 14:00-15:00 UTC two days ago, within the dashboard's last 7 days.
        cls.hour = datetime.combine(fields.Date.today() - timedelta(days=2), time(14))
        rows = []
        for day in range(1, 8):
            for hour in OFFICE_HOURS:
                when = cls.hour.replace(hour=hour) - timedelta(days=day) + timedelta(minutes=17)
                rows += [
                    (when, cls.alice, "lead_enrichment", 0.40 + hour / 1000),
                    (when, cls.bob, "email_draft", 0.30),
                    # Busy and above $1 an hour, but as usual: never an anomaly.
                    (when, cls.carol, "ticket_triage", 2.00),
                    (when, cls.dave, "product_description", 0.01),
                ]
        # The hour itself: Alice's enrichment agent loops (60 calls at $0.50), the others work as usual; Dave
        # spends 90 times his usual hour, but less than $1.
        rows += [(cls.hour + timedelta(seconds=50 * n), cls.alice, "lead_enrichment", 0.50) for n in range(60)]
        rows += [
            (cls.hour + timedelta(minutes=5), cls.bob, "email_draft", 0.35),
            (cls.hour + timedelta(minutes=6), cls.carol, "ticket_triage", 2.20),
            (cls.hour + timedelta(minutes=7), cls.dave, "product_description", 0.90),
            # The hour before and after it do not count.
            (cls.hour - timedelta(seconds=1), cls.alice, "lead_enrichment", 40.0),
            (cls.hour + timedelta(hours=1), cls.alice, "lead_enrichment", 40.0),
        ]
        cls._insert_rows(rows)
        cls.Anomaly = cls.env["ai.cost.anomaly"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._make_looping_week()

    @classmethod
    def _insert_rows(cls, rows):
        """Usage rows at the given times: while the registry loads, the superuser's create() keeps the dates,
        as the demo data's install does."""
        ready, cls.registry.ready = cls.registry.ready, False
        try:
            cls.env["ai.token.usage"].create([{
                "provider_id": cls.provider.id, "model": cls.provider.model, "status": "ok", "user_id": user.id,
                "operation": operation, "cost_usd": cost, "input_tokens": 1000, "output_tokens": 100,
                "create_date": when,
            } for when, user, operation, cost in rows])
        finally:
            cls.registry.ready = ready



@tagged("post_install", "-at_install")
class TestSpendAnomaly(LoopingWeekMixin, UsageRowsCase):
    def managers(self):
        return self.env.ref("ai_cost_optimizer.group_ai_cost_manager").users.filtered(
            lambda user: user.active and not user.share and self.env.company in user.company_ids
        )

    def test_a_looping_hour_is_caught_once_and_told_to_the_right_people(self):
        found = self.Anomaly._detect(self.env.company, self.hour)
        self.assertEqual(
            sorted((anomaly.kind, anomaly.operation or anomaly.user_id.name) for anomaly in found),
            [("operation", "lead_enrichment"), ("user", "Alice")],
            "the looping operation and its user; not Carol's busy but usual hour, not Dave's hour below $1",
        )
        operation, user = found.sorted("kind")
        # 60 calls at $0.50, against the median of its 65 hours with calls in the 168 hours before: 64 office hours
        # at $0.408-$0.417 (the window starts at 14:00 seven days before) and the hour just before, at $40.
        self.assertAlmostEqual(operation.spend_usd, 30.0, places=6)
        self.assertAlmostEqual(operation.median_usd, 0.413, places=6)
        self.assertEqual((operation.active_hours, operation.day, operation.hour), (65, self.hour.date(), self.hour))
        self.assertAlmostEqual(operation.ratio, 30.0 / 0.413, places=1)
        self.assertEqual(operation.ratio_label, "72.6× usual")
        self.assertEqual((operation.subject, user.subject), ("Lead enrichment", "Alice"))

        # The operation's budget: its responsible gets the activity, its chatter a note naming the anomaly.
        self.assertEqual(operation.budget_id, self.budget)
        self.assertEqual(operation.activity_ids.user_id, self.rita)
        self.assertEqual(operation.notified_user_ids, self.rita)
        self.assertTrue(operation.notified)
        [message] = operation.message_ids.filtered(lambda message: "72.6 times its usual hour" in message.body)
        self.assertIn("Lead enrichment spent $30.00 in the hour of", message.body)
        self.assertEqual(message.partner_ids, self.rita.partner_id)
        self.assertTrue(self.budget.message_ids.filtered(
            lambda message: "Spend anomaly" in message.body and f"/odoo/ai.cost.anomaly/{operation.id}" in message.body
        ))
        # No budget holds Alice: every AI Cost manager of the company gets an activity.
        self.assertFalse(user.budget_id)
        self.assertIn(self.manager, self.managers())
        self.assertEqual(user.activity_ids.user_id, self.managers())
        self.assertEqual(user.notified_user_ids, self.managers())
        self.assertIn("Alice spent $30.00", user.message_ids[0].body)

        # The check runs again (another worker, the next hour while the agent still loops): once a day.
        self.assertFalse(self.Anomaly._detect(self.env.company, self.hour))
        self._insert_rows([(self.hour + timedelta(hours=2, seconds=n), self.alice, "lead_enrichment", 0.5)
                           for n in range(60)])
        self.assertFalse(self.Anomaly._detect(self.env.company, self.hour + timedelta(hours=2)))
        self.assertEqual(self.Anomaly.search_count([]), 2)
        self.assertEqual(len(operation.activity_ids), 1, "no second activity")
        # The next day it is told again.
        next_day = self.hour + timedelta(days=1)
        self._insert_rows([(next_day + timedelta(seconds=n), self.alice, "lead_enrichment", 0.5) for n in range(60)])
        self.assertEqual(len(self.Anomaly._detect(self.env.company, next_day)), 2)

    def test_a_whole_company_budget_tells_its_responsible(self):
        self.env["ai.cost.budget"].create({"name": "Company", "budget_amount": 5000, "responsible_id": self.bob.id})
        found = self.Anomaly._detect(self.env.company, self.hour)
        by_kind = {anomaly.kind: anomaly for anomaly in found}
        # A budget naming the operation comes first; Alice is held by the company's budget.
        self.assertEqual(by_kind["operation"].budget_id, self.budget)
        self.assertEqual(by_kind["user"].budget_id.name, "Company")
        self.assertEqual(by_kind["user"].activity_ids.user_id, self.bob)

    def test_settings(self):
        company = self.env.company
        self.assertEqual((company.ai_anomaly_ratio, company.ai_anomaly_min_spend, company.ai_anomaly_check),
                         (5.0, 1.0, True))
        for values in ({"ai_anomaly_ratio": 1.0}, {"ai_anomaly_ratio": 0.5}, {"ai_anomaly_ratio": -5},
                       {"ai_anomaly_min_spend": -0.01}):
            with self.subTest(values=values), self.assertRaises(ValidationError):
                company.write(values)
        with self.assertRaisesRegex(ValidationError, "above 1"):
            self.env["res.config.settings"].create({"ai_anomaly_ratio": 1.0}).execute()
        # Higher lines: Alice's $30 hour is 72.6 times her usual one, not 100 times.
        company.write({"ai_anomaly_ratio": 100, "ai_anomaly_min_spend": 0})
        self.assertFalse(self.Anomaly._detect(company, self.hour))
        # Lower lines: Dave's 90 times, $0.90 now counts.
        company.write({"ai_anomaly_ratio": 50, "ai_anomaly_min_spend": 0.5})
        found = self.Anomaly._detect(company, self.hour)
        self.assertIn(("user", "Dave"), [(anomaly.kind, anomaly.subject) for anomaly in found])

    def test_new_spender_without_operation(self):
        erin = new_test_user(self.env, login="anomaly_erin", name="Erin",
                             groups="base.group_user,ai_cost_optimizer.group_ai_cost_user")
        self._insert_rows([(self.hour + timedelta(minutes=n), erin, False, 0.25) for n in range(12)])
        found = self.Anomaly._detect(self.env.company, self.hour)
        [no_operation] = found.filtered(lambda anomaly: anomaly.kind == "operation" and not anomaly.operation)
        self.assertEqual((no_operation.subject, no_operation.median_usd, no_operation.ratio_label),
                         ("Calls without an operation", 0.0, "No usual spend"))
        self.assertIn("with no spend in the 7 days before", no_operation.message_ids[0].body)
        self.assertIn(("user", "Erin"), [(anomaly.kind, anomaly.subject) for anomaly in found])
        self.assertEqual(no_operation.action_view_usage()["domain"][-1], ("operation", "=", False))
        self.assertEqual(self.env["ai.token.usage"].search_count(no_operation.action_view_usage()["domain"]), 12)

    def test_the_dashboard_marks_the_hour(self):
        self.Anomaly._detect(self.env.company, self.hour)
        Dashboard = self.env["ai.cost.dashboard"].with_user(self.manager)
        anomalies = Dashboard.get_dashboard_data("7d")["anomalies"]
        self.assertEqual(anomalies["count"], 2)
        day = anomalies["by_day"][str(self.hour.date())]
        self.assertEqual(day["count"], 2)
        self.assertEqual({item["hour"] for item in day["items"]}, {fields.Datetime.to_string(self.hour)})
        # The dashboard's click-through lists what it counts.
        self.assertEqual(self.Anomaly.with_user(self.manager).search_count(anomalies["domain"]), 2)
        self.assertEqual(Dashboard.get_dashboard_data("last_month")["anomalies"]["count"],
                         2 if self.hour.month != fields.Date.today().month else 0)

    def test_the_cron_checks_the_last_complete_hour(self):
        cron = self.env.ref("ai_cost_optimizer.ir_cron_detect_spend_anomalies")
        self.assertEqual((cron.interval_number, cron.interval_type), (1, "hours"))
        now = fields.Datetime.now()
        self._insert_rows([(last_complete_hour(now) + timedelta(minutes=n), self.alice, "lead_enrichment", 0.5)
                           for n in range(60)])
        self.Anomaly._cron_detect()
        self.assertEqual(self.Anomaly.search([]).mapped("hour"), [last_complete_hour(now)] * 2)
        self.env.company.ai_anomaly_check = False
        self.Anomaly.search([]).unlink()
        self.Anomaly._cron_detect()
        self.assertFalse(self.Anomaly.search([]))

    def test_only_managers_read_anomalies(self):
        self.Anomaly._detect(self.env.company, self.hour)
        self.assertEqual(self.Anomaly.with_user(self.manager).search_count([]), 2)
        self.assertFalse(self.Anomaly.with_user(self.alice).has_access("read"))


@tagged("post_install", "-at_install")
class TestSpendAnomalyScreens(LoopingWeekMixin, HttpCase):
    """The dashboard marks the looping hour on its daily chart (the tooltip names it), and its button opens the
    list of the period's anomalies."""

    browser_size = "1600x1000"

    def test_dashboard_marks_the_hour_and_opens_the_list(self):
        self.Anomaly._detect(self.env.company, self.hour)
        self.start_tour("/odoo/action-ai_cost_optimizer.action_ai_cost_dashboard", "ai_cost_anomaly_tour",
                        login="admin")


@tagged("post_install", "-at_install")
class TestSpendAnomalyOnce(UsageRowsCase):
    """Two Odoo processes record the same anomaly: exactly one records (and so notifies) it (DESIGN section 10).
    Each process is a cursor of its own, committed, as two workers' transactions."""

    HOUR = datetime(2020, 1, 6, 10)  # a day of its own: the rows are committed, then deleted
    PROBE = Anomaly("anomaly_concurrency_probe", 12.0, 0.5, 40)

    def setUp(self):
        super().setUp()
        self.addCleanup(self._delete_committed)

    def _delete_committed(self):
        with self.registry.cursor() as cr:
            cr.execute(SQL("DELETE FROM ai_cost_anomaly WHERE operation = %s", self.PROBE.key))

    def _claim(self, cr):
        env = api.Environment(cr, SUPERUSER_ID, {})
        return env["ai.cost.anomaly"]._claim(env.company, self.HOUR, "operation", self.PROBE).ids

    def test_after_a_commit_the_other_snapshot_records_nothing(self):
        with self.registry.cursor() as late:
            late.execute("SELECT 1")  # its snapshot predates the first process's commit
            with self.registry.cursor() as first:
                self.assertEqual(len(self._claim(first)), 1)
            self.assertEqual(self._claim(late), [], "committed after its snapshot: the other process has it")
            late.execute("SELECT 1")  # and its transaction goes on
        with self.registry.cursor() as later:
            self.assertEqual(self._claim(later), [], "committed before its snapshot")

    def test_a_concurrent_claim_waits_and_records_nothing(self):
        results = {}
        with self.registry.cursor() as first:
            self.assertEqual(len(self._claim(first)), 1)

            def second_process():
                with self.registry.cursor() as cr:
                    results["second"] = self._claim(cr)

            thread = threading.Thread(target=second_process)
            thread.start()
            clock.sleep(0.5)
            self.assertTrue(thread.is_alive(), "the second claim waits for the first transaction")
        thread.join(10)
        self.assertEqual(results, {"second": []})
        with self.registry.cursor() as cr:
            cr.execute(SQL("SELECT count(*) FROM ai_cost_anomaly WHERE operation = %s", self.PROBE.key))
            self.assertEqual(cr.fetchone()[0], 1)
