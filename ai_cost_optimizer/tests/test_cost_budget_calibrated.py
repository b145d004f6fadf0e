"""Calibrated reservations (DESIGN section 13): a budget in `calibrated` mode holds a call's prompt plus the p99
of the output tokens that its provider, model and operation returned lately, once enough calls tell it."""

from contextlib import contextmanager
from datetime import timedelta
from unittest.mock import patch

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import HttpCase, tagged
from odoo.tools import SQL

from ..core import budget as budget_math
from ..core.call import GatewayCall
from ..exceptions import AiBudgetExceeded
from .common import AiCostCase

MESSAGES = [{"role": "user", "content": "Plan the next step of the agent working on lead 42."}]
OPERATION = "agent_step"
MAX_TOKENS = 4000
ENOUGH = budget_math.CALIBRATION_MIN_SAMPLES


@tagged("post_install", "-at_install")
class TestCalibratedReservations(AiCostCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Budget = cls.env["ai.cost.budget"]
        cls.Calibration = cls.env["ai.cost.budget.calibration"]
        cls.agent_step = cls.env["ai.cost.budget.operation"].create({"name": OPERATION})

    def _budget(self, **vals):
        return self.Budget.create({
            "name": "Agents", "budget_amount": 100.0, "reservation_mode": "calibrated",
            "provider_ids": [Command.set(self.gpt.ids)], "operation_ids": [Command.set(self.agent_step.ids)],
            **vals,
        })

    def _samples(self, outputs, provider=None, age=None, **vals):
        """Usage rows of served calls answering with `outputs` output tokens, `age` old (None: now)."""
        provider = provider or self.gpt
        rows = self.env["ai.token.usage"].create([{
            "provider_id": provider.id, "model": provider.model, "operation": OPERATION, "status": "ok",
            "provider_called": True, "input_tokens": 40, "output_tokens": output, "cost_usd": 0.0, **vals,
        } for output in outputs])
        if age:
            rows.flush_recordset()
            self.env.cr.execute(SQL("UPDATE ai_token_usage SET create_date = create_date - %s WHERE id IN %s",
                                    age, tuple(rows.ids)))
            rows.invalidate_recordset()
        return rows

    def _checked_call(self, max_tokens=MAX_TOKENS, operation=OPERATION):
        """A call through the pipeline's steps up to its budget check: its reservations are in flight."""
        Service = self.env["ai.service"]
        call = GatewayCall(MESSAGES, provider=self.gpt.id, quality_required="medium", max_tokens=max_tokens,
                           operation=operation, use_cache=False)
        Service._validate_request(call)
        Service._resolve_provider(call)
        Service._estimate_tokens(call)
        return call, Service._check_budget(call)

    def _reservations(self, call):
        """{budget id: (amount, worst case)} of the call's reservations, as stored (to the double)."""
        self.env.cr.execute(SQL(
            """SELECT p.budget_id, r.amount::float8, r.worst_case::float8
                 FROM ai_cost_budget_reservation r JOIN ai_cost_budget_period p ON p.id = r.period_id
                WHERE r.id IN %s""",
            tuple(call.budget_reservations),
        ))
        return {budget_id: (amount, worst) for budget_id, amount, worst in self.env.cr.fetchall()}

    def _cost(self, call, output_tokens):
        return self.Budget._estimate_cost(self.gpt, call, output_tokens)

    def _current_period(self, budget):
        self.env.invalidate_all()
        return budget.period_ids.filtered(lambda p: p.date_start == budget.current_period_start)

    # ------------------------------------------------------------------
    # Learning
    # ------------------------------------------------------------------
    def test_learns_the_p99_of_served_calls_of_the_window(self):
        outputs = [300 + (n * 37) % 200 for n in range(150)] + [1900]  # one long answer among 151
        self._samples(outputs)
        # Not samples: a failed attempt, a response-cache hit, a broken stream's estimate, an embedding, a call
        # older than the window, another operation's and another model's.
        self._samples([30000], status="error")
        self._samples([30000], cache_hit=True, provider_called=False)
        self._samples([30000], usage_reported=False)
        self._samples([30000], kind="embedding")
        self._samples([30000], age=timedelta(days=budget_math.CALIBRATION_WINDOW_DAYS, hours=1))
        self._samples([7, 8, 9], operation="ticket_summary")
        self._samples([11], model="gpt-4o")
        self.assertGreaterEqual(self.Calibration._cron_learn(), 3)
        rows = {(row.model, row.operation): row for row in self.Calibration.search([("provider_id", "=", self.gpt.id)])}
        row = rows[(self.gpt.model, OPERATION)]
        self.assertEqual(row.samples, 151)
        p99 = budget_math.percentile_disc(outputs, budget_math.CALIBRATION_PERCENTILE)
        self.assertEqual(row.output_tokens_p99, p99)
        self.assertEqual(row.output_tokens_p99, 499, "the longest answer of 151 is past the 99th percentile")
        self.assertTrue(row.calibrated)
        self.assertEqual((rows[(self.gpt.model, "ticket_summary")].samples,
                          rows[(self.gpt.model, "ticket_summary")].calibrated), (3, False))
        self.assertEqual(rows[("gpt-4o", OPERATION)].output_tokens_p99, 11)
        # The gateway's read: one cached table, no query once read; the p99 of a calibrated key only.
        self.assertEqual(self.Calibration._learned_output(self.gpt.id, self.gpt.model, OPERATION), 499)
        with self.assertQueryCount(0):
            self.assertIsNone(self.Calibration._learned_output(self.gpt.id, self.gpt.model, "ticket_summary"),
                              "3 samples: not calibrated")
            self.assertIsNone(self.Calibration._learned_output(self.gpt.id, self.gpt.model, "unknown_operation"))
        # Nothing changed: nothing is written (a write clears the gateway's caches in every worker).
        self.assertEqual(self.Calibration._cron_learn(), 0)
        # Samples leaving the window drop their key.
        self.env.cr.execute(SQL("UPDATE ai_token_usage SET create_date = create_date - interval '8 days' "
                                "WHERE operation = 'ticket_summary'"))
        self.assertEqual(self.Calibration._cron_learn(), 1)
        self.assertFalse(self.Calibration.search([("operation", "=", "ticket_summary")]))
        self.assertIsNone(self.Calibration._learned_output(self.gpt.id, self.gpt.model, "ticket_summary"))

    def test_learns_from_the_calls_the_gateway_recorded(self):
        """Answers of varying length (the fake provider's set_replies), served through the gateway: their usage
        rows are the samples, and a calibrated budget then reserves their p99 (a refused call is no sample)."""
        self.fake.set_replies(["Step" + " done" * (n % 7 * 10) for n in range(ENOUGH)])
        for n in range(ENOUGH):
            self.env["ai.service"].send_message([{"role": "user", "content": f"Agent step {n}."}], provider=self.gpt,
                                                max_tokens=MAX_TOKENS, operation=OPERATION, use_cache=False)
        self._budget(budget_amount=0.000001, reservation_mode="worst_case")
        self.assertCallFails(AiBudgetExceeded, messages=MESSAGES, provider=self.gpt, max_tokens=MAX_TOKENS,
                             operation=OPERATION, use_cache=False)
        outputs = self.usage_rows().filtered(lambda usage: usage.status == "ok").mapped("output_tokens")
        self.assertEqual(len(set(outputs)), 7, "the answers' lengths vary")
        self.Calibration._cron_learn()
        self.assertEqual(self.Calibration._learned_output(self.gpt.id, self.gpt.model, OPERATION),
                         budget_math.percentile_disc(outputs, budget_math.CALIBRATION_PERCENTILE))
        self.assertEqual(self.Calibration.search([("provider_id", "=", self.gpt.id)]).samples, ENOUGH)

    def test_a_calibrated_budget_asks_for_learning_at_once(self):
        cron = self.env.ref("ai_cost_optimizer.ir_cron_learn_budget_calibration")
        triggers = self.env["ir.cron.trigger"].sudo()
        before = triggers.search_count([("cron_id", "=", cron.id)])
        budget = self._budget(reservation_mode="worst_case")
        self.assertEqual(triggers.search_count([("cron_id", "=", cron.id)]), before)
        budget.reservation_mode = "calibrated"
        self.assertEqual(triggers.search_count([("cron_id", "=", cron.id)]), before + 1)

    @contextmanager
    def _cache_clears(self):
        """The registry cache clears (and signals to the other workers) asked meanwhile."""
        cleared, clear = [], self.registry.clear_cache

        def recording(*cache_names):
            cleared.append(cache_names)
            return clear(*cache_names)

        with patch.object(self.registry, "clear_cache", recording):
            yield cleared

    def test_an_hourly_run_that_changes_nothing_a_call_reads_keeps_the_caches(self):
        self._samples([100] * ENOUGH)
        self._samples([7, 8], operation="ticket_summary")
        self.Calibration._cron_learn()
        self.assertEqual(self.Calibration._learned_output(self.gpt.id, self.gpt.model, OPERATION), 100)
        # New samples: more of the calibrated key's (its p99 stays), a longer one of a key with too few samples
        # (its p99 moves), a first one of a new key. Every row changes; nothing the gateway reads does.
        self._samples([100] * 5 + [60])
        self._samples([900], operation="ticket_summary")
        self._samples([5], operation="new_operation")
        with self._cache_clears() as cleared:
            self.assertEqual(self.Calibration._cron_learn(), 3)
        self.assertEqual(cleared, [], "no cache cleared, no signal to the other workers")
        with self.assertQueryCount(0):
            self.assertEqual(self.Calibration._learned_output(self.gpt.id, self.gpt.model, OPERATION), 100,
                             "still cached")
        rows = self.Calibration.search([("provider_id", "=", self.gpt.id)])
        self.assertEqual(sorted(rows.mapped(lambda row: (row.operation, row.samples, row.output_tokens_p99))),
                         [(OPERATION, ENOUGH + 6, 100), ("new_operation", 1, 5), ("ticket_summary", 3, 900)],
                         "the table shows the fresh figures")

    def test_an_hourly_run_that_changes_what_a_call_reads_clears_the_caches(self):
        self._samples([100] * ENOUGH)
        self._samples([40] * (ENOUGH - 1), operation="ticket_summary")
        self.Calibration._cron_learn()
        steps = (
            ("a calibrated key's p99 moves", lambda: self._samples([700] * ENOUGH), OPERATION, 700),
            ("a key becomes calibrated", lambda: self._samples([40], operation="ticket_summary"), "ticket_summary", 40),
            ("a key's samples leave the window", lambda: self.env.cr.execute(SQL(
                "UPDATE ai_token_usage SET create_date = create_date - interval '8 days' WHERE operation = %s",
                "ticket_summary",
            )), "ticket_summary", None),
        )
        for change, make, operation, expected in steps:
            with self.subTest(change=change):
                self.Calibration._learned_output(self.gpt.id, self.gpt.model, operation)  # cached
                make()
                with self._cache_clears() as cleared:
                    self.Calibration._cron_learn()
                self.assertTrue(cleared, "the caches are cleared, in every worker")
                self.assertEqual(self.Calibration._learned_output(self.gpt.id, self.gpt.model, operation), expected)

    # ------------------------------------------------------------------
    # What a call reserves
    # ------------------------------------------------------------------
    def test_calibrated_reserves_the_worst_case_until_enough_samples(self):
        budget = self._budget()
        self._samples([400] * (ENOUGH - 2) + [500])
        self.Calibration._cron_learn()
        call, check = self._checked_call()
        worst = self._cost(call, MAX_TOKENS)
        self.assertEqual(check["estimated_cost"], worst)
        self.assertEqual(self._reservations(call), {budget.id: (worst, worst)}, f"{ENOUGH - 1} samples: too few")
        self.assertEqual(budget.current_at_risk, 0.0)
        self.env["ai.service"]._release_budget(call)

        self._samples([450])
        self.Calibration._cron_learn()
        call, check = self._checked_call()
        calibrated = self._cost(call, 500)
        self.assertLess(calibrated, worst / 4)
        self.assertEqual(self._reservations(call), {budget.id: (calibrated, worst)}, "the prompt plus the p99")
        [detail] = check["budgets"]
        self.assertEqual((detail["reservation_mode"], detail["reserved"]), ("calibrated", calibrated))
        self.assertEqual(check["estimated_cost"], worst, "the result still tells the call's worst case")
        self.env["ai.service"]._release_budget(call)

    def test_calibrated_never_reserves_more_than_max_tokens(self):
        budget = self._budget()
        self._samples([800] * ENOUGH)
        self.Calibration._cron_learn()
        call, _check = self._checked_call(max_tokens=200)
        worst = self._cost(call, 200)
        self.assertEqual(self._reservations(call), {budget.id: (worst, worst)})
        self.env["ai.service"]._release_budget(call)

    def test_worst_case_mode_is_unchanged(self):
        budget = self._budget(reservation_mode="worst_case")
        self._samples([50] * 100)
        self.Calibration._cron_learn()
        call, check = self._checked_call()
        worst = self._cost(call, MAX_TOKENS)
        self.assertEqual(self._reservations(call), {budget.id: (worst, worst)})
        self.assertEqual(check["budgets"][0]["reserved"], worst)
        self.assertEqual(budget.current_at_risk, 0.0)
        self.env["ai.service"]._release_budget(call)

    def test_each_budget_holds_and_judges_its_own_mode(self):
        """A calibrated and a worst-case budget on one call: each holds its mode's amount, and each judges the
        call on it. The worst-case budget keeps its guarantee: it blocks what its worst case would overspend."""
        self._samples([100] * ENOUGH)
        self.Calibration._cron_learn()
        calibrated = self._budget(name="Calibrated")
        careful = self._budget(name="Careful", reservation_mode="worst_case")
        call, check = self._checked_call()
        worst, learned = self._cost(call, MAX_TOKENS), self._cost(call, 100)
        self.assertEqual(self._reservations(call), {calibrated.id: (learned, worst), careful.id: (worst, worst)})
        self.assertEqual({detail["id"]: detail["reserved"] for detail in check["budgets"]},
                         {calibrated.id: learned, careful.id: worst})
        self.env["ai.service"]._release_budget(call)
        # Amounts between the two estimates: the calibrated budget lets the call through, the careful one blocks.
        room = (learned + worst) / 2
        calibrated.budget_amount = room
        call, check = self._checked_call()
        self.assertEqual(check["status"], "ok")
        self.env["ai.service"]._release_budget(call)
        careful.budget_amount = room
        error = self.assertCallFails(AiBudgetExceeded, messages=MESSAGES, provider=self.gpt, max_tokens=MAX_TOKENS,
                                     operation=OPERATION, use_cache=False)
        self.assertIn("Budget 'Careful'", str(error))

    # ------------------------------------------------------------------
    # At risk, and calls over their reservation
    # ------------------------------------------------------------------
    def test_budget_shows_what_is_at_risk_now(self):
        budget = self._budget()
        self._samples([120] * ENOUGH)
        self.Calibration._cron_learn()
        first, _check = self._checked_call()
        second, _check = self._checked_call(max_tokens=1000)
        expected = (self._cost(first, MAX_TOKENS) - self._cost(first, 120)) + (
            self._cost(second, 1000) - self._cost(second, 120))
        self.assertGreater(expected, 0)
        self.env.invalidate_all()
        self.assertAlmostEqual(budget.current_at_risk, expected, places=10)
        self.assertAlmostEqual(self._current_period(budget).at_risk, expected, places=10)
        self.env["ai.service"]._release_budget(first)
        self.env.invalidate_all()
        self.assertAlmostEqual(budget.current_at_risk, self._cost(second, 1000) - self._cost(second, 120), places=10)
        self.env["ai.service"]._release_budget(second)
        self.env.invalidate_all()
        self.assertEqual(budget.current_at_risk, 0.0, "nothing in flight, nothing at risk")

    def test_a_call_longer_than_its_reservation_is_counted(self):
        budget = self._budget()
        self._samples([5] * ENOUGH)  # the learned p99: 5 output tokens
        self.Calibration._cron_learn()
        self.fake.set_reply("The agent plans three steps: search, compare and write the summary. " * 3)
        result = self.env["ai.service"].send_message(MESSAGES, provider=self.gpt, max_tokens=MAX_TOKENS,
                                                     operation=OPERATION, use_cache=False)
        reserved = result["budget"]["budgets"][0]["reserved"]
        self.assertGreater(result["usage"]["output_tokens"], 5)
        self.assertGreater(result["cost_usd"], reserved)
        period = self._current_period(budget)
        self.assertAlmostEqual(period.spend, result["cost_usd"], places=10, msg="settled at its actual cost")
        self.assertEqual((period.reserved, period.call_count, period.over_reservation_calls), (0.0, 1, 1))
        self.assertAlmostEqual(period.over_reservation_usd, result["cost_usd"] - reserved, places=10)
        self.assertEqual(budget.current_over_reservation_calls, 1)
        # A call within its reservation is not counted.
        self.fake.set_reply("Done.")
        self.env["ai.service"].send_message(MESSAGES, provider=self.gpt, max_tokens=MAX_TOKENS, operation=OPERATION,
                                            use_cache=False)
        period = self._current_period(budget)
        self.assertEqual((period.call_count, period.over_reservation_calls), (2, 1))

    # ------------------------------------------------------------------
    # Bad input and cached rules
    # ------------------------------------------------------------------
    def test_unknown_mode_is_refused_clearly(self):
        budget = self._budget()
        for write in (lambda: budget.write({"reservation_mode": "optimistic"}),
                      lambda: self._budget(reservation_mode="p50")):
            with self.assertRaisesRegex(ValidationError, "Unknown reservation mode '(optimistic|p50)'"):
                write()
        self.assertEqual(budget.reservation_mode, "calibrated")

    def test_switching_mode_clears_the_cached_rules(self):
        budget = self._budget(reservation_mode="worst_case")
        company_id = self.gpt._gateway_profile().company_id
        self.assertEqual([rule.reservation_mode for rule in self.Budget._company_rules(company_id)
                          if rule.id == budget.id], ["worst_case"])
        budget.reservation_mode = "calibrated"
        self.assertEqual([rule.reservation_mode for rule in self.Budget._company_rules(company_id)
                          if rule.id == budget.id], ["calibrated"])
        self._samples([64] * ENOUGH)
        self.Calibration._cron_learn()
        call, check = self._checked_call()
        self.assertEqual(check["budgets"][0]["reserved"], self._cost(call, 64))
        self.env["ai.service"]._release_budget(call)
        budget.reservation_mode = "worst_case"
        call, check = self._checked_call()
        self.assertEqual(check["budgets"][0]["reserved"], self._cost(call, MAX_TOKENS))
        self.env["ai.service"]._release_budget(call)

    def test_a_new_figure_reaches_the_next_call(self):
        """The cron's change clears the cached table: the next call reserves the new p99."""
        self._budget()
        self._samples([100] * ENOUGH)
        self.Calibration._cron_learn()
        call, check = self._checked_call()
        self.assertEqual(check["budgets"][0]["reserved"], self._cost(call, 100))
        self.env["ai.service"]._release_budget(call)
        self._samples([900] * ENOUGH)
        self.Calibration._cron_learn()
        call, check = self._checked_call()
        self.assertEqual(check["budgets"][0]["reserved"], self._cost(call, 900))
        self.env["ai.service"]._release_budget(call)


@tagged("post_install", "-at_install")
class TestCalibratedBudgetScreens(HttpCase):
    """An administrator reads a calibrated budget with calls in flight (headless Chromium): its mode and At Risk
    Now in dollars in the list and the form, and what was learned under Configuration > Budget Calibration."""

    def test_budget_shows_its_mode_and_what_is_at_risk(self):
        provider = self.env["ai.service.provider"].create({
            "name": "At risk tour provider", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
            "api_key": "sk-test-never-called", "model": "gpt-4o-mini",
        })
        budget = self.env["ai.cost.budget"].create({
            "name": "Agents", "budget_amount": 100.0, "reservation_mode": "calibrated",
            "provider_ids": [Command.set(provider.ids)],
        })
        self.env["ai.token.usage"].create([{
            "provider_id": provider.id, "model": provider.model, "operation": OPERATION, "status": "ok",
            "provider_called": True, "output_tokens": 120,
        }] * ENOUGH)
        self.env["ai.cost.budget.calibration"]._cron_learn()
        Service = self.env["ai.service"]
        calls = []
        for _n in range(2):  # two calls in flight: checked and held, never sent
            call = GatewayCall(MESSAGES, provider=provider.id, quality_required="medium", max_tokens=MAX_TOKENS,
                               operation=OPERATION)
            Service._validate_request(call)
            Service._resolve_provider(call)
            Service._estimate_tokens(call)
            self.assertEqual(Service._check_budget(call)["status"], "ok")
            calls.append(call)
        self.env.invalidate_all()
        self.assertGreater(budget.current_at_risk, 0)
        self.start_tour("/odoo/action-ai_cost_optimizer.action_ai_cost_budget", "ai_cost_budget_at_risk_tour",
                        login="admin")
        for call in calls:
            Service._release_budget(call)
