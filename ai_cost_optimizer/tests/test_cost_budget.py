"""Budgets: over 400 lines because each period type, threshold action and concurrency case is a test."""

import math
import random
from datetime import date, datetime, timedelta

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import SQL, format_date

from ..core import budget as budget_math
from ..core.call import GatewayCall
from ..exceptions import AiBudgetExceeded, AiProviderError
from .common import AiCostCase

MESSAGES = [{"role": "user", "content": "Qualify lead 42: ACME, 500 seats, budget approved."}]


@tagged("post_install", "-at_install")
class TestCostBudget(AiCostCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Budget = cls.env["ai.cost.budget"]
        # One probe call tells what a call of MESSAGES costs on the fake provider.
        probe = cls.env["ai.service"].send_message(MESSAGES, provider=cls.gpt, max_tokens=100, operation="probe")
        cls.call_cost = probe["cost_usd"]
        assert cls.call_cost > 0
        cls.lead_qualification = cls.env["ai.cost.budget.operation"].create({"name": "lead_qualification"})

    def _hold_elsewhere(self, period, amount):
        """A reservation of another worker's call in flight, as the gateway's hold statement makes it;
        returns the reservation ids."""
        self.env.cr.execute(SQL(
            """UPDATE ai_cost_budget_period SET reserved = reserved + %(amount)s WHERE id = %(id)s;
               INSERT INTO ai_cost_budget_reservation (period_id, amount, create_uid, create_date, write_uid,
                                                       write_date)
               VALUES (%(id)s, %(amount)s, %(uid)s, now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC')
               RETURNING id""",
            amount=amount, id=period.id, uid=self.env.uid,
        ))
        return [row[0] for row in self.env.cr.fetchall()]

    def _budget(self, **vals):
        return self.Budget.create({
            "name": "CRM", "budget_amount": 1.0, "provider_ids": [Command.set(self.gpt.ids)],
            "operation_ids": [Command.set(self.lead_qualification.ids)], **vals,
        })

    def _send(self, **kwargs):
        return self.env["ai.service"].send_message(
            MESSAGES,
            **{"provider": self.gpt, "max_tokens": 100, "operation": "lead_qualification", "use_cache": False,
               **kwargs},
        )

    def _fails(self, exception, **kwargs):
        return self.assertCallFails(exception, provider=self.gpt, max_tokens=100, operation="lead_qualification",
                                    use_cache=False, **kwargs)

    def _current_period(self, budget):
        self.env.invalidate_all()
        return budget.period_ids.filtered(lambda p: p.date_start == budget.current_period_start)

    def _emails_to(self, partner):
        return self.env["mail.notification"].search([("res_partner_id", "=", partner.id),
                                                     ("notification_type", "=", "email")])

    def _messages(self, budget, text):
        self.env.invalidate_all()
        return budget.message_ids.filtered(lambda m: text in (m.body or ""))

    # ------------------------------------------------------------------
    # Validation
    # ------------------------------------------------------------------
    def test_bad_input_is_refused_clearly(self):
        cases = [
            ({"budget_amount": 0}, "must be positive"),
            ({"budget_amount": -5}, "must be positive"),
            ({"alert_thresholds": "0, 50"}, "outside 1-1000"),
            ({"alert_thresholds": "50, 1200"}, "outside 1-1000"),
            ({"alert_thresholds": "80, 50"}, "strictly increasing"),
            ({"auto_switch_at_threshold": 90, "block_at_threshold": 80}, "cannot be below its auto-switch"),
            ({"block_at_threshold": 1500}, "between 1 and 1000"),
            ({"period_type": "yearly"}, "Unknown period type 'yearly'"),
        ]
        for vals, message in cases:
            with self.subTest(vals=vals), self.assertRaisesRegex(ValidationError, message):
                self._budget(**vals)

    def test_budget_scoped_to_other_company_users_is_refused(self):
        other = self.env["res.company"].create({"name": "Other Co"})
        stranger = self.env["res.users"].create({
            "name": "Stranger", "login": "stranger_budget",
            "company_id": other.id, "company_ids": [Command.set(other.ids)],
        })
        with self.assertRaisesRegex(ValidationError, "these users do not: Stranger"):
            self._budget(user_ids=[Command.set(stranger.ids)])

    def test_thresholds_are_stored_as_clean_text(self):
        budget = self._budget(alert_thresholds=[50, 80.5, 100])
        self.assertEqual(budget.alert_thresholds, "50, 80.5, 100")
        budget.alert_thresholds = "25,75"
        self.assertEqual(budget._thresholds(), [25.0, 75.0])

    # ------------------------------------------------------------------
    # Periods
    # ------------------------------------------------------------------
    def test_calendar_periods_in_company_timezone(self):
        self.env.company.partner_id.tz = "Pacific/Auckland"  # UTC+13 in January
        monthly = self._budget(period_type="monthly")
        weekly = self._budget(period_type="weekly")
        # 2025-01-31 11:30 UTC is February 1st, 00:30 in Auckland.
        at = {"ai_budget_now": datetime(2025, 1, 31, 11, 30)}
        self.assertEqual(monthly.with_context(**at).current_period_start, date(2025, 2, 1))
        self.assertEqual(monthly.with_context(ai_budget_now=datetime(2025, 1, 31, 10, 50)).current_period_start,
                         date(2025, 1, 1))
        # Sunday 2025-03-09 12:00 UTC is Monday the 10th in Auckland: a new week.
        self.assertEqual(weekly.with_context(ai_budget_now=datetime(2025, 3, 9, 12)).current_period_start,
                         date(2025, 3, 10))
        self.assertEqual(weekly.with_context(ai_budget_now=datetime(2025, 3, 9, 10)).current_period_start,
                         date(2025, 3, 3))

    # ------------------------------------------------------------------
    # Reservation, settlement, release
    # ------------------------------------------------------------------
    def test_call_reserves_then_settles_actual_cost(self):
        budget = self._budget(budget_amount=100.0)
        result = self._send()
        self.assertEqual(result["budget"]["status"], "ok")
        self.assertEqual([b["id"] for b in result["budget"]["budgets"]], budget.ids)
        # The estimate (prompt + max_tokens of output) is an upper bound of the actual cost.
        self.assertGreaterEqual(result["budget"]["estimated_cost"], result["cost_usd"])
        period = self._current_period(budget)
        self.assertAlmostEqual(period.spend, result["cost_usd"], places=10)
        self.assertEqual((period.reserved, period.call_count), (0.0, 1))
        self.assertFalse(self.env["ai.cost.budget.reservation"].search([("period_id", "=", period.id)]))
        self.assertAlmostEqual(budget.current_spend, result["cost_usd"], places=10)

    def test_new_period_row_starts_from_the_ledger(self):
        self._send()
        budget = self._budget(budget_amount=100.0)
        self.assertAlmostEqual(budget.current_spend, self.call_cost, places=10)
        self._send()
        self.assertAlmostEqual(self._current_period(budget).spend, 2 * self.call_cost, places=10)

    def test_failed_call_releases_its_reservation(self):
        self.env.company.ai_fallback_on_failure = False  # the call fails (see test_cost_routing for fallbacks)
        budget = self._budget(budget_amount=100.0)
        self.fake.queue_responses([{"status": 503}, {"status": 503}])
        self._fails(AiProviderError)
        period = self._current_period(budget)
        self.assertEqual((period.spend, period.reserved), (0.0, 0.0))
        self.assertFalse(self.env["ai.cost.budget.reservation"].search([("period_id", "=", period.id)]))

    def test_stale_reservation_expires(self):
        budget = self._budget(budget_amount=100.0)
        self._send()
        period = self._current_period(budget)
        spend = period.spend
        fresh, stale = self._hold_elsewhere(period, 0.25), self._hold_elsewhere(period, 0.5)
        self.env.cr.execute(SQL(
            "UPDATE ai_cost_budget_reservation SET create_date = create_date - interval '2 hours' WHERE id IN %s",
            tuple(stale),
        ))
        period.invalidate_recordset()
        self.assertAlmostEqual(period.reserved, 0.75)
        self.env["ai.cost.budget.period"]._cron_expire_reservations()
        period.invalidate_recordset()
        self.assertAlmostEqual(period.reserved, 0.25)
        self.assertEqual(self.env["ai.cost.budget.reservation"].search([("period_id", "=", period.id)]).ids, fresh)
        # The call whose reservation expired finishes after all: its cost is booked, nothing is released twice.
        period._settle(stale, 0.125)
        period.invalidate_recordset()
        self.assertAlmostEqual(period.reserved, 0.25)
        self.assertAlmostEqual(period.spend, spend + 0.125)

    def test_hold_statement_decides_like_evaluate_at_the_lines(self):
        """The reservation statement (SQL) and core.budget.evaluate (Python) take the same decision,
        exactly on the switch and block lines too (amounts exact in binary floating point)."""
        budget = self._budget(budget_amount=1.0, auto_switch_at_threshold=50, block_at_threshold=100)
        rule = budget._rule()
        bounds = {budget.id: budget._period_at(budget._now())}
        cases = [  # (reserved by others, estimate, honour the switch line): expected status
            ((0.25, 0.125, True), "ok"),
            ((0.25, 0.25, True), "switched"),  # on the switch line
            ((0.25, 0.25, False), "switched"),  # after switching, the call is held anyway
            ((0.75, 0.25, False), "switched"),  # on the block line: not past it
            ((0.75, 0.2500001, False), "blocked"),
        ]
        for (reserved, estimate, honour_switch), status in cases:
            with self.subTest(reserved=reserved, estimate=estimate, honour_switch=honour_switch):
                self.env["ai.cost.budget.period"]._create_missing_periods(bounds)
                period = self._current_period(budget)
                self.env.cr.execute(SQL("UPDATE ai_cost_budget_period SET reserved = %s WHERE id = %s",
                                        reserved, period.id))
                [outcome], holds = self.Budget._hold_on_periods([rule], bounds, {budget.id: estimate}, honour_switch)
                self.assertEqual(outcome[2:], (reserved, status, estimate))
                held = status != "blocked" and not (honour_switch and status == "switched")
                self.assertEqual(bool(holds), held)
                period.invalidate_recordset()
                self.assertEqual(period.reserved, reserved + estimate if held else reserved)

    def test_hold_statement_decides_like_evaluate_on_generated_cases(self):
        """The budget rule is written once, in core.budget.evaluate; the hold statement (HOLD_SQL of
        ai.cost.budget.period) restates its comparisons in SQL, so it must take evaluate's decision on every
        case: amounts and thresholds of all kinds, spend plus estimate exactly on a line and on the doubles
        just below and above it, the switch line honoured or not, one budget or two at once (held only when
        both pass), the two with estimates of their own (a calibrated budget next to a worst-case one)."""
        Period = self.env["ai.cost.budget.period"]
        budgets = self._budget(name="A") | self._budget(name="B")
        bounds = {budget.id: budget._period_at(budget._now()) for budget in budgets}
        Period._create_missing_periods(bounds)
        periods = {budget.id: self._current_period(budget).id for budget in budgets}
        rng = random.Random(17)

        def on_line(line, estimate):
            """(spend, reserved), stored as the period's numeric columns, whose sum plus `estimate` is `line`
            or as near as the 8 stored decimals allow."""
            committed = max(round(line - estimate, 8), 0.0)
            spend = round(committed * rng.choice((1.0, 0.5, 0.3)), 8)
            return spend, round(committed - spend, 8)

        def estimates(line, committed):
            """The estimates that carry `committed` exactly to `line` and to the doubles just below and above it."""
            found = []
            for target in (math.nextafter(line, 0), line, math.nextafter(line, math.inf)):
                estimate = max(target - committed, 0.0)
                for _step in range(8):
                    if committed + estimate == target:
                        break
                    estimate = math.nextafter(estimate, math.inf if committed + estimate < target else 0)
                self.assertEqual(committed + estimate, target)
                found.append(estimate)
            return found

        cases = []  # (rule, spend, reserved, estimate)
        for amount in (1.0, 0.3, 7.77, 123.456789, 0.00012345):
            for switch_at, block_at in ((0, 0), (0, 100), (50, 100), (80, 80), (33.3, 90.1), (75, 0), (12.5, 250)):
                rule = budgets[0]._rule()._replace(
                    budget_amount=amount, thresholds=(), auto_switch_at_threshold=switch_at,
                    block_at_threshold=block_at,
                )
                lines = [line for line in rule.lines() if line is not None] or [amount]
                for line in lines:
                    for share in (0.5, 0.001):
                        spend, reserved = on_line(line, line * share)
                        for estimate in estimates(line, float(spend) + float(reserved)):
                            cases.append((rule, spend, reserved, estimate))
        self.assertGreater(len(cases), 300)

        def check(case_by_budget, honour_switch):
            for budget_id, (_rule, spend, reserved, _estimate) in case_by_budget.items():
                self.env.cr.execute(SQL("UPDATE ai_cost_budget_period SET spend = %s, reserved = %s WHERE id = %s",
                                        spend, reserved, periods[budget_id]))
            rules = [case[0]._replace(id=budget_id) for budget_id, case in case_by_budget.items()]
            own = {budget_id: case[3] for budget_id, case in case_by_budget.items()}
            worst = max(own.values())
            committed, holds = Period._hold(rules, bounds, own, honour_switch, worst)
            statuses = []
            for rule in rules:
                _rule, spend, reserved, _estimate = case_by_budget[rule.id]
                self.assertEqual(committed[rule.id], float(spend) + float(reserved))
                statuses.append(budget_math.evaluate(
                    committed[rule.id], own[rule.id], rule.budget_amount, (), rule.auto_switch_at_threshold,
                    rule.block_at_threshold,
                ))
            passes = all(status != "blocked" and not (honour_switch and status == "switched") for status in statuses)
            self.assertEqual(
                bool(holds), passes,
                f"{[(rule.budget_amount, rule.auto_switch_at_threshold, rule.block_at_threshold) for rule in rules]} "
                f"committed {committed} estimates {own!r} honour_switch {honour_switch}: evaluate says {statuses}",
            )
            self.assertEqual(len(holds), len(rules) if passes else 0)
            if holds:
                # Each budget holds its own estimate, to the double, and each reservation records the worst case.
                self.env.cr.execute(SQL(
                    """SELECT p.budget_id, r.amount::float8, r.worst_case::float8
                         FROM ai_cost_budget_reservation r JOIN ai_cost_budget_period p ON p.id = r.period_id
                        WHERE r.id IN %s""",
                    tuple(hold for _period, hold in holds),
                ))
                self.assertEqual({row[0]: row[1:] for row in self.env.cr.fetchall()},
                                 {budget_id: (estimate, worst) for budget_id, estimate in own.items()})
                self.env.cr.execute(SQL("DELETE FROM ai_cost_budget_reservation WHERE id IN %s",
                                        tuple(hold for _period, hold in holds)))
            return statuses

        seen = set()
        for case in cases:
            for honour_switch in (True, False):
                seen.update(check({budgets[0].id: case}, honour_switch))
        # Two budgets: the second budget's totals are put on one of its lines for its own estimate, another case's
        # (the reservation modes differ) in two cases of three, the same as the first budget's in the third.
        for index, case in enumerate(rng.sample(cases, 120)):
            other, estimate = rng.choice(cases)[0], case[3] if index % 3 == 0 else rng.choice(cases)[3]
            line = rng.choice([line for line in other.lines() if line is not None] or [other.budget_amount])
            spend, reserved = on_line(line, estimate)
            seen.update(check({budgets[0].id: case, budgets[1].id: (other, spend, reserved, estimate)},
                              rng.choice((True, False))))
        self.assertEqual(seen, {"ok", "switched", "blocked"}, "the cases reach every action")

    def test_budget_rules_are_cached_and_follow_changes(self):
        Service = self.env["ai.service"]
        self._send()  # warm caches (rules, prices)
        # No budget: the check sends no query at all.
        call = GatewayCall([], provider=self.gpt, operation="lead_qualification")
        with self.assertQueryCount(0):
            self.assertIsNone(Service._check_budget(call))
        budget = self._budget(budget_amount=100.0)
        self.assertEqual(self._send()["budget"]["budgets"][0]["id"], budget.id, "a new budget applies at once")
        self.lead_qualification.name = "lead_scoring"
        self.assertEqual(self._send()["budget"], {"status": "ok"}, "renamed operation: out of scope")
        self.assertEqual(self._send(operation="lead_scoring")["budget"]["budgets"][0]["id"], budget.id)
        budget.action_archive()
        self.assertEqual(self._send(operation="lead_scoring")["budget"], {"status": "ok"})

    def test_budget_outside_the_call_scope_does_not_apply(self):
        budget = self._budget(operation_ids=[Command.create({"name": "ticket_summary"})], budget_amount=0.000001)
        result = self._send()
        self.assertEqual(result["budget"], {"status": "ok"})
        self.assertFalse(budget.period_ids)

    def test_archived_provider_keeps_its_budget_scope(self):
        """Archiving the provider of a budget's scope does not widen the budget to every provider."""
        budget = self._budget(name="GPT only", budget_amount=self.call_cost / 2)
        self._fails(AiBudgetExceeded)
        self.gpt.action_archive()
        self.Budget._clear_rules()  # as after a restart: the rules are read again
        self.env.invalidate_all()
        self.assertEqual(budget.provider_ids, self.gpt, "the scope still lists the archived provider")
        result = self._send(provider=self.claude)
        self.assertEqual(result["budget"], {"status": "ok"}, "another provider's call is out of the scope")
        start, end = budget._period_at(budget._now())
        self.assertEqual(budget._ledger_spend(start, end), 0.0, "its spend is not the budget's")
        self.assertEqual(self._current_period(budget).spend, 0.0)

    def test_archived_user_keeps_its_budget_scope(self):
        """Archiving the user of a budget's scope does not widen the budget to every user."""
        intern = new_test_user(
            self.env, login="budget_intern", groups="base.group_user,ai_cost_optimizer.group_ai_cost_user"
        )
        budget = self._budget(name="Intern", budget_amount=self.call_cost / 2, user_ids=[Command.set(intern.ids)])
        try:
            self.env["ai.service"].with_user(intern).send_message(
                MESSAGES, provider=self.gpt, max_tokens=100, operation="lead_qualification", use_cache=False,
            )
            self.fail("the intern's budget must block the intern's call")
        except AiBudgetExceeded:
            pass
        intern.action_archive()
        self.Budget._clear_rules()
        self.env.invalidate_all()
        self.assertEqual(budget.user_ids, intern, "the scope still lists the archived user")
        result = self._send()
        self.assertEqual(result["budget"], {"status": "ok"}, "another user's call is out of the scope")
        start, end = budget._period_at(budget._now())
        self.assertEqual(budget._ledger_spend(start, end), 0.0)

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def test_block_raises_and_is_recorded(self):
        budget = self._budget(name="Tiny", period_type="weekly", budget_amount=self.call_cost / 2)
        error = self._fails(AiBudgetExceeded)
        start = budget.current_period_start
        days = f"{format_date(self.env, start)} – {format_date(self.env, start + timedelta(days=6))}"
        self.assertIn(f"Budget 'Tiny' (Weekly period {days})", str(error))
        self.assertIn("block threshold of 100%", str(error))
        usage = self.usage_rows().filtered(lambda u: u.status == "blocked")
        self.assertEqual((usage.status, usage.error_message), ("blocked", str(error)))
        self.assertFalse(self.fake.requests, "a blocked call never reaches the provider")
        self.assertEqual(self._current_period(budget).reserved, 0.0)

    def test_strictest_budget_wins(self):
        self._budget(name="Roomy", budget_amount=100 * self.call_cost, alert_thresholds="1")
        self._budget(name="Tight", budget_amount=self.call_cost / 2)
        error = self._fails(AiBudgetExceeded)
        self.assertIn("Budget 'Tight'", str(error))

    def test_block_line_counts_in_flight_reservations(self):
        budget = self._budget(budget_amount=100.0)
        self._send()
        period = self._current_period(budget)
        self._hold_elsewhere(period, 100 - 2 * self.call_cost)
        self._fails(AiBudgetExceeded)

    def test_alert_once_per_threshold_per_period(self):
        budget = self._budget(budget_amount=self.call_cost * 3.001, alert_thresholds="30, 60", block_at_threshold=0)
        for _call in range(4):
            self.assertIn(self._send()["budget"]["status"], ("ok", "warning"))
        # 4 calls: 33%, 67%, 100%, 133%: each threshold once.
        self.assertEqual(len(self._messages(budget, "reached 30%")), 1)
        self.assertEqual(len(self._messages(budget, "reached 60%")), 1)
        activities = budget.activity_ids.filtered(lambda a: a.user_id == budget.responsible_id)
        self.assertEqual(sorted(activities.mapped("summary")), ["AI budget at 30%", "AI budget at 60%"])
        self.assertEqual(self._current_period(budget).alerted_up_to, 60)
        # The next period starts over.
        next_month = datetime.now() + timedelta(days=32)
        self.env["ai.service"].with_context(ai_budget_now=next_month).send_message(
            MESSAGES, provider=self.gpt, max_tokens=100, operation="lead_qualification", use_cache=False
        )
        self.assertEqual(len(self._messages(budget, "reached 30%")), 2)
        self.assertEqual(len(self._messages(budget, "reached 60%")), 1)
        self.assertEqual(len(budget.period_ids), 2)

    def test_alert_emails_followers_when_a_mail_server_exists(self):
        follower = self.env["res.partner"].create({"name": "Finance", "email": "finance@example.com"})
        budget = self._budget(budget_amount=self.call_cost * 10, alert_thresholds="5, 15", block_at_threshold=0)
        budget.message_subscribe(follower.ids)
        self._send()
        note = self._messages(budget, "reached 5%")
        self.assertEqual(note.subtype_id, self.env.ref("mail.mt_note"))
        self.assertFalse(self._emails_to(follower))
        self.env["ir.mail_server"].create({"name": "SMTP", "smtp_host": "127.0.0.1", "smtp_port": 2525})
        self._send()
        comment = self._messages(budget, "reached 15%")
        self.assertEqual(comment.subtype_id, self.env.ref("mail.mt_comment"))
        self.assertEqual(self._emails_to(follower).mail_message_id, comment)

    def test_auto_switch_routes_to_cheapest_qualifying_provider(self):
        if "ai.cost.optimizer" not in self.env:
            self.skipTest("ai.cost.optimizer is not installed yet")
        budget = self.Budget.create({
            "name": "Claude spend", "budget_amount": 0.001, "provider_ids": [Command.set(self.claude.ids)],
            "auto_switch_at_threshold": 1, "block_at_threshold": 0,
        })
        expected = self.env["ai.cost.optimizer"].recommend_provider("chat", 20)["provider_id"]
        self.assertEqual(expected, self.gpt.id, "gpt-4o-mini is the cheaper of the two fake providers")
        result = self._send(provider=self.claude)
        self.assertEqual(result["budget"]["status"], "switched")
        self.assertIn("Budget 'Claude spend'", result["budget"]["message"])
        self.assertEqual((result["provider_id"], result["switched_from"]), (self.gpt.id, self.claude.id))
        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertEqual((usage.provider_id, usage.switched_from_id, usage.switched), (self.gpt, self.claude, True))
        self.assertAlmostEqual(self._current_period(budget).spend, result["cost_usd"], places=10)

    # ------------------------------------------------------------------
    # Forecast
    # ------------------------------------------------------------------
    def test_forecast_on_a_known_series(self):
        self.env.company.partner_id.tz = "Europe/Brussels"
        budget = self._budget(provider_ids=False, operation_ids=False, budget_amount=1000.0)
        # 1, 2 and 3 USD spent on March 1st, 2nd and 3rd (Brussels days; 23:30 UTC on Feb 28th is March 1st).
        days = [datetime(2025, 2, 28, 23, 30), datetime(2025, 3, 2, 12), datetime(2025, 3, 3, 9)]
        for cost, when in zip([1.0, 2.0, 3.0], days, strict=True):
            usage = self.env["ai.token.usage"].create({"cost_usd": cost, "provider_id": self.gpt.id, "status": "ok"})
            self.env.cr.execute(SQL("UPDATE ai_token_usage SET create_date = %s WHERE id = %s", when, usage.id))
        self.env["ai.token.usage"].invalidate_model()
        at = budget.with_context(ai_budget_now=datetime(2025, 3, 3, 18))
        self.assertAlmostEqual(at.current_spend, 6.0)
        # Weights 1, 2, 3 -> rate 14/6 USD a day for the 28 days left of March.
        expected = 6.0 + 14 / 6 * 28
        self.assertAlmostEqual(at.forecast(), expected)
        self.assertAlmostEqual(at.forecast_monthly, expected)
        self.assertAlmostEqual(at.forecast_percentage, expected / 10)
        self.assertAlmostEqual(budget_math.forecast_spend([1.0, 2.0, 3.0], 31), expected)

    # ------------------------------------------------------------------
    # Company monitoring
    # ------------------------------------------------------------------
    def test_company_cost_alerts_once_a_day(self):
        company = self.env.company
        company.write({"ai_alert_daily_spend": self.call_cost / 2, "ai_alert_cache_hit_floor": 0})
        self._send(res_model="res.partner", res_id=self.env.user.partner_id.id)
        alerts = company._ai_cost_monitor()
        self.assertEqual(list(alerts), ["daily_spend"])
        self.assertIn("above the daily limit", alerts["daily_spend"])
        message = self.env["mail.message"].search([("subject", "=", f"AI cost alert for {company.name}")])
        self.assertEqual(len(message), 1)
        self.assertIn(self.env.ref("base.user_admin").partner_id, message.partner_ids)
        self.assertEqual(company._ai_cost_monitor(), {}, "an alert is sent once a day")
        company.ai_alert_cost_per_record = self.call_cost / 10
        self.assertEqual(list(company._ai_cost_monitor()), ["cost_per_record"])


@tagged("post_install", "-at_install")
class TestBudgetThresholdTags(HttpCase):
    def test_thresholds_render_and_edit_as_badges(self):
        budget = self.env["ai.cost.budget"].create({"name": "Tour budget", "budget_amount": 10.0})
        self.start_tour("/odoo/action-ai_cost_optimizer.action_ai_cost_budget", "ai_cost_budget_thresholds_tour",
                        login="admin")
        budget.invalidate_recordset()
        self.assertEqual(budget.alert_thresholds, "80, 90, 100")
