"""ai.cost.budget, one model in one file as Odoo's apps keep them: over 400 lines because a budget is both
a record (scope, thresholds, alerts, actions, its periods' figures) and the rule the gateway applies to every
call (BudgetRule, the cached rules, the reservation); splitting it would re-open the model in a second file."""

from collections import namedtuple
from contextlib import nullcontext

from markupsafe import Markup

from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError

from ..core import budget as budget_math
from ..core import pricing
from ..core.messages import check_label, is_finite_number, short_repr
from ..core.usage import Usage
from ..ledger.cursors import test_mode
from .ai_cost_budget_period import PeriodBounds, period_range_label
from .ai_service_provider_price import PRICE_DIGITS

PERIOD_TYPES = [("daily", "Daily"), ("weekly", "Weekly"), ("monthly", "Monthly")]
RESERVATION_MODES = [("worst_case", "Worst case"), ("calibrated", "Calibrated")]
# The fields a BudgetRule is made of: writing one of them clears the cached rules.
RULE_FIELDS = {
    "name", "active", "company_id", "period_type", "budget_amount", "alert_thresholds",
    "auto_switch_at_threshold", "block_at_threshold", "user_ids", "provider_ids", "operation_ids",
    "reservation_mode",
}


class BudgetRule(namedtuple("BudgetRule", [
    "id", "name", "period_type", "budget_amount", "thresholds", "auto_switch_at_threshold", "block_at_threshold",
    "user_ids", "provider_ids", "operations", "reservation_mode",
], defaults=["worst_case"])):
    """A budget as the gateway applies it: plain immutable values (cached per company, see
    `_company_rules`), with the attribute names of the record's fields."""

    __slots__ = ()

    def matches(self, user_id, provider_id, operation):
        """Whether a call by `user_id` to `provider_id` for `operation` falls in this budget's scope."""
        return budget_math.in_scope(self.user_ids, self.provider_ids, self.operations, user_id, provider_id, operation)

    def crossed_thresholds(self, spend, alerted_up_to):
        """The alert thresholds (percent) that a period's `spend` reaches beyond those already alerted."""
        return budget_math.crossed_thresholds(self.thresholds, alerted_up_to, spend / self.budget_amount * 100)

    def status(self, committed, estimate):
        """The action a call estimated at `estimate` triggers when `committed` is spent or reserved."""
        return budget_math.evaluate(
            committed, estimate, self.budget_amount, self.thresholds,
            self.auto_switch_at_threshold, self.block_at_threshold,
        )

    def lines(self):
        """(switch line, block line) in USD, None when off: see core.budget.action_lines."""
        return budget_math.action_lines(self.budget_amount, self.auto_switch_at_threshold, self.block_at_threshold)


class AiCostBudget(models.Model):
    """A spending limit on AI calls over a calendar period, with alert, auto-switch and block lines.

    Every budget whose scope matches a call applies to it, and the strictest action wins (see
    ai.service `_check_budget`). Running totals live in one `ai.cost.budget.period` row per period,
    which holds, settles and releases the calls' estimates; this model says what each total means.
    """

    _name = "ai.cost.budget"
    _description = "AI Cost Budget"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "name, id"

    # Identity
    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True, tracking=True
    )
    responsible_id = fields.Many2one(
        "res.users", string="Responsible", default=lambda self: self.env.user, tracking=True,
        help="Gets an activity when an alert threshold is reached.",
    )

    # Scope: empty means every user / operation / provider of the company. Archived users and providers
    # stay in the scope (active_test=False): the budget keeps meaning them, never every call of the company.
    user_ids = fields.Many2many(
        "res.users", string="Users", context={"active_test": False}, help="Empty: every user."
    )
    operation_ids = fields.Many2many(
        "ai.cost.budget.operation", string="Operations", help="Empty: every operation (send_message's `operation`)."
    )
    provider_ids = fields.Many2many(
        "ai.service.provider", string="Providers", domain="[('company_id', '=', company_id)]",
        context={"active_test": False}, help="Empty: every provider.",
    )

    # Limit and actions (percentages of the amount; 0 switches an action off)
    period_type = fields.Selection(PERIOD_TYPES, required=True, default="monthly", tracking=True)
    budget_amount = fields.Float(digits=PRICE_DIGITS, string="Amount (USD)", required=True, tracking=True)
    alert_thresholds = fields.Char(
        default="50, 80, 100", tracking=True,
        help="Percentages of the amount, strictly increasing, e.g. 50, 80, 100. Each notifies once per period.",
    )
    auto_switch_at_threshold = fields.Float(
        string="Auto-Switch At (%)", tracking=True,
        help="From this percentage, calls go to the cheapest qualifying provider. 0: never.",
    )
    block_at_threshold = fields.Float(
        string="Block At (%)", default=100.0, tracking=True, help="From this percentage, calls are refused. 0: never."
    )
    reservation_mode = fields.Selection(
        RESERVATION_MODES, string="Reservation", required=True, default="worst_case", tracking=True,
        help="What a call holds on this budget while it runs. Worst case: its prompt plus max_tokens of output, "
             "which never overspends beyond the estimation error. Calibrated: its prompt plus the output that 99% "
             "of the recent calls of the same provider, model and operation stayed within (never more than "
             f"max_tokens; the worst case until {budget_math.CALIBRATION_MIN_SAMPLES} such calls of the last "
             f"{budget_math.CALIBRATION_WINDOW_DAYS} days are known): fewer calls are refused while most of the "
             "budget is unspent, and a call that answers longer than that overspends by the difference (see At "
             "Risk Now).",
    )

    # Current period
    period_ids = fields.One2many("ai.cost.budget.period", "budget_id", string="Period History", readonly=True)
    current_period_start = fields.Date(compute="_compute_current_spend")
    current_spend = fields.Float(digits=PRICE_DIGITS, compute="_compute_current_spend", string="Spend (USD)")
    current_reserved = fields.Float(digits=PRICE_DIGITS, compute="_compute_current_spend", string="In Flight (USD)")
    current_at_risk = fields.Float(
        digits=PRICE_DIGITS, compute="_compute_current_spend", string="At Risk Now (USD)",
        help="What the calls in flight could still spend beyond what they reserved: the sum of their worst case "
             "(prompt plus max_tokens of output) minus their reservation. Zero in worst-case mode.",
    )
    current_over_reservation_calls = fields.Integer(
        compute="_compute_current_spend", string="Calls Over Reservation",
        help="Calls of the current period whose actual cost exceeded what they reserved.",
    )
    percentage_used = fields.Float(compute="_compute_current_spend", string="Used (%)")
    forecast_amount = fields.Float(
        digits=PRICE_DIGITS, compute="_compute_forecast", string="Period Forecast (USD)",
        help="Projected spend at the end of the current period (see forecast()).",
    )
    forecast_percentage = fields.Float(compute="_compute_forecast", string="Forecast (%)")
    forecast_monthly = fields.Float(
        digits=PRICE_DIGITS, compute="_compute_forecast", string="Monthly Forecast (USD)",
        help="Projected spend of the current calendar month in this budget's scope.",
    )

    @api.depends("period_type", "budget_amount", "period_ids.spend", "period_ids.reserved",
                 "period_ids.over_reservation_calls")
    @api.depends_context("ai_budget_now")
    def _compute_current_spend(self):
        for budget in self:
            period = budget._period_record(budget._now())
            spend = period.spend
            budget.current_period_start = period.date_start
            budget.current_spend = spend
            budget.current_reserved = period.reserved
            budget.current_at_risk = period.at_risk
            budget.current_over_reservation_calls = period.over_reservation_calls
            budget.percentage_used = spend / budget.budget_amount * 100 if budget.budget_amount else 0.0

    @api.depends("period_type", "budget_amount", "period_ids.spend")
    @api.depends_context("ai_budget_now")
    def _compute_forecast(self):
        for budget in self:
            budget.forecast_amount = budget.forecast() if budget.id else 0.0
            budget.forecast_percentage = (
                budget.forecast_amount / budget.budget_amount * 100 if budget.budget_amount else 0.0
            )
            month = budget_math.period_bounds(budget._now_local_day(), "monthly")
            budget.forecast_monthly = budget._forecast_range(*month) if budget.id else 0.0

    # ------------------------------------------------------------------
    # Validation
    # ------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._normalize_vals(vals)
        self._clear_rules()
        if any(vals.get("reservation_mode") == "calibrated" for vals in vals_list):
            self._learn_calibration_soon()
        return super().create(vals_list)

    def write(self, vals):
        self._normalize_vals(vals)
        if set(vals) & RULE_FIELDS:
            self._clear_rules()
        if vals.get("reservation_mode") == "calibrated":
            self._learn_calibration_soon()
        return super().write(vals)

    def unlink(self):
        self._clear_rules()
        return super().unlink()

    def _normalize_vals(self, vals):
        """Clear errors for values the ORM would reject with a technical one; thresholds given
        as a list ([50, 80]) are stored as their canonical text ('50, 80')."""
        if "name" in vals:
            try:
                if not (check_label(vals["name"], "name") or "").strip():
                    raise ValueError("The name of a budget cannot be empty.")
            except ValueError as error:
                raise ValidationError(str(error)) from None
        if "budget_amount" in vals:
            amount = vals["budget_amount"]
            if not is_finite_number(amount):
                raise ValidationError(self.env._(
                    "The amount of a budget must be a positive number of USD, not %s.", short_repr(amount)
                ))
        if "period_type" in vals and vals["period_type"] not in budget_math.PERIOD_TYPES:
            raise ValidationError(self.env._(
                "Unknown period type %r: use daily, weekly or monthly.", vals["period_type"]
            ))
        if "reservation_mode" in vals and vals["reservation_mode"] not in budget_math.RESERVATION_MODES:
            raise ValidationError(self.env._(
                "Unknown reservation mode %s: use worst_case or calibrated.", short_repr(vals["reservation_mode"])
            ))
        if "alert_thresholds" in vals:
            try:
                vals["alert_thresholds"] = budget_math.format_thresholds(
                    budget_math.parse_thresholds(vals["alert_thresholds"])
                )
            except ValueError as error:
                raise ValidationError(self.env._("Invalid alert thresholds: %s", error)) from None

    @api.constrains("budget_amount")
    def _check_budget_amount(self):
        for budget in self:
            if budget.budget_amount <= 0:
                raise ValidationError(self.env._("The amount of budget '%s' must be positive.", budget.name))

    @api.constrains("auto_switch_at_threshold", "block_at_threshold")
    def _check_action_thresholds(self):
        for budget in self:
            for label, value in (
                (self.env._("auto-switch"), budget.auto_switch_at_threshold),
                (self.env._("block"), budget.block_at_threshold),
            ):
                if value and not budget_math.THRESHOLD_MIN <= value <= budget_math.THRESHOLD_MAX:
                    raise ValidationError(self.env._(
                        "The %(action)s threshold of '%(name)s' must be between 1 and 1000%% (or 0 for never).",
                        action=label, name=budget.name,
                    ))
            if budget.block_at_threshold and budget.block_at_threshold < budget.auto_switch_at_threshold:
                raise ValidationError(self.env._(
                    "The block threshold of '%s' cannot be below its auto-switch threshold.", budget.name
                ))

    @api.constrains("company_id", "user_ids", "provider_ids")
    def _check_scope_company(self):
        for budget in self:
            strangers = budget.user_ids.filtered(lambda user, budget=budget: budget.company_id not in user.company_ids)
            if strangers:
                raise ValidationError(self.env._(
                    "Budget '%(name)s' belongs to %(company)s; these users do not: %(users)s.",
                    name=budget.name, company=budget.company_id.name, users=", ".join(strangers.mapped("name")),
                ))
            if budget.provider_ids.filtered(lambda p, budget=budget: p.company_id != budget.company_id):
                raise ValidationError(self.env._(
                    "Budget '%s' can only be scoped to providers of its own company.", budget.name
                ))

    # ------------------------------------------------------------------
    # Periods and scope
    # ------------------------------------------------------------------
    def _now(self):
        """The current UTC time; the `ai_budget_now` context key shows the budget at another time."""
        return self.env.context.get("ai_budget_now") or fields.Datetime.now()

    def _tz(self):
        return self.env["res.company"]._ai_gateway_settings(self.company_id.id).tz

    def _now_local_day(self):
        self.ensure_one()
        return budget_math.local_day(self._now(), self._tz())

    def _period_at(self, now):
        """(first day, first day of the next period) of the calendar period at UTC time `now`."""
        self.ensure_one()
        return budget_math.current_period(now, self._tz(), self.period_type)

    @api.model
    def _period_label(self, period_type, period):
        return self.env._(
            "%(type)s period %(days)s",
            type=dict(PERIOD_TYPES)[period_type], days=period_range_label(self.env, period.date_start, period.date_end),
        )

    def _rule(self):
        self.ensure_one()
        return BudgetRule(
            self.id, self.name, self.period_type, self.budget_amount, tuple(self._thresholds()),
            self.auto_switch_at_threshold, self.block_at_threshold, frozenset(self.user_ids.ids),
            frozenset(self.provider_ids.ids), frozenset(self.operation_ids.mapped("name")), self.reservation_mode,
        )

    def _matches(self, user, provider, operation):
        """Whether a call by `user` to `provider` for `operation` falls in this budget's scope."""
        return self._rule().matches(user.id, provider.id, operation)

    @api.model
    @tools.ormcache("company_id")
    def _company_rules(self, company_id):
        """The active budgets of a company as BudgetRule tuples, so that the gateway matches a call
        against them without a query (a company without budgets costs nothing).

        Read on a cursor of its own: the cache is shared by every transaction, so it holds committed
        budgets only, never the uncommitted changes of the transaction that happens to fill it. A test
        reads its own budgets: in test mode that cursor shares the test's transaction, and a test's
        TransactionCase reads on its own cursor. (Flush the budgets first, and only them: flushing
        everything would write, and log at DEBUG level, a pending provider key.)"""
        in_test = test_mode(self.env.cr, self.env.registry)
        if in_test:
            for model in ("ai.cost.budget", "ai.cost.budget.operation"):
                self.env[model].flush_model()
        with nullcontext(self.env.cr) if in_test == "transaction" else self.env.registry.cursor() as cr:
            Budget = self.env(cr=cr, su=True)["ai.cost.budget"].with_context(active_test=True)
            return tuple(budget._rule() for budget in Budget.search([("company_id", "=", company_id)]))

    @api.model
    def _learn_calibration_soon(self):
        """A budget turned calibrated: learn the output lengths now rather than at the next hourly run."""
        cron = self.env.ref("ai_cost_optimizer.ir_cron_learn_budget_calibration", raise_if_not_found=False)
        if cron:
            cron.sudo()._trigger()

    @api.model
    def _clear_rules(self):
        """Forget the cached rules when budgets change. Cleared again after the commit: a check
        running meanwhile, on a snapshot without the change, may have cached the old rules."""
        self.env.registry.clear_cache()
        self.env.cr.postcommit.add(self.env.registry.clear_cache)

    @api.model
    def _matching_rules(self, user, provider, operation):
        """The rules of the active budgets of the provider's company whose scope holds the call."""
        return [
            rule for rule in self._company_rules(provider._gateway_profile().company_id)
            if rule.matches(user.id, provider.id, operation)
        ]

    def _ledger_domain(self, start, end):
        """Domain of the successful usage rows of this budget's scope between two local days."""
        self.ensure_one()
        utc_start, utc_end = budget_math.utc_range(start, end, self._tz())
        domain = [
            ("company_id", "=", self.company_id.id), ("status", "=", "ok"),
            ("create_date", ">=", utc_start), ("create_date", "<", utc_end),
        ]
        if self.user_ids:
            domain.append(("user_id", "in", self.user_ids.ids))
        if self.provider_ids:
            domain.append(("provider_id", "in", self.provider_ids.ids))
        if self.operation_ids:
            domain.append(("operation", "in", self.operation_ids.mapped("name")))
        return domain

    def _ledger_spend(self, start, end):
        """What the usage ledger says this budget's scope spent between two local days."""
        Usage = self.env["ai.token.usage"].sudo()
        [(total,)] = Usage._read_group(self._ledger_domain(start, end), [], ["cost_usd:sum"])
        return total or 0.0

    def _period_record(self, now):
        """The period row at UTC time `now`, or (read-only callers must not create rows) an unsaved
        one holding what the ledger says was spent in the period."""
        self.ensure_one()
        start, end = self._period_at(now)
        period = self.sudo().period_ids.filtered(lambda p: p.date_start == start)[:1]
        return period or self.env["ai.cost.budget.period"].sudo().new(
            {"budget_id": self.id, "date_start": start, "date_end": end, "spend": self._ledger_spend(start, end)}
        )

    # ------------------------------------------------------------------
    # Checks and actions
    # ------------------------------------------------------------------
    def _thresholds(self):
        self.ensure_one()
        return budget_math.parse_thresholds(self.alert_thresholds)


    def check_budget(self, estimated_cost):
        """Evaluate these budgets for a call estimated at `estimated_cost` USD, reserving nothing.

        Returns {'status': 'ok'|'warning'|'switched'|'blocked', 'message', 'budgets': [...]}, where
        the status is the strictest of the budgets' and 'budgets' details each one. The gateway
        uses `_reserve_for_call`, which takes the same decision under row locks and reserves.
        """
        outcomes = []
        for budget in self:
            period = budget._period_record(self._now())
            committed = period.spend + period.reserved
            rule = budget._rule()
            outcomes.append((rule, period, committed, rule.status(committed, estimated_cost), estimated_cost))
        return self._outcome(outcomes)

    @api.model
    def _outcome(self, outcomes, note=None):
        """The result of a check from (rule, period, committed, status, estimate) tuples: the strictest
        status, with the message of the budget that set it. Each budget's detail says what the call reserves
        on it (`reserved`: its estimate under the budget's reservation mode)."""
        status = budget_math.strictest(outcome[3] for outcome in outcomes)
        details = []
        message = note or ""
        for budget, period, committed, budget_status, estimate in outcomes:
            details.append({
                "id": budget.id, "name": budget.name, "status": budget_status,
                "period_start": fields.Date.to_string(period.date_start),
                "percentage_used": committed / budget.budget_amount * 100,
                "reservation_mode": budget.reservation_mode, "reserved": estimate,
            })
            if budget_status == status and status != "ok" and not message:
                message = self._status_message(budget, status, period, committed, estimate)
        return {"status": status, "message": message, "budgets": details}

    @api.model
    def _status_message(self, rule, status, period, committed, estimate):
        args = {
            "name": rule.name, "period": self._period_label(rule.period_type, period),
            "amount": pricing.format_usd(rule.budget_amount), "percent": committed / rule.budget_amount * 100,
            "estimate": pricing.format_usd(estimate),
        }
        if status == "blocked":
            return self.env._(
                "Budget '%(name)s' (%(period)s) blocks this call: %(percent).1f%% of %(amount)s is spent or "
                "reserved, and the call (estimated %(estimate)s) would pass its block threshold of %(block)g%%.",
                block=rule.block_at_threshold, **args,
            )
        if status == "switched":
            return self.env._(
                "Budget '%(name)s' (%(period)s) is past its auto-switch threshold of %(switch)g%%: "
                "the call goes to the cheapest qualifying provider.",
                switch=rule.auto_switch_at_threshold, **args,
            )
        return self.env._(
            "Budget '%(name)s' (%(period)s) is at %(percent).1f%% of %(amount)s.", **args
        )

    @api.model
    def _estimate_cost(self, provider, call, output_tokens=None):
        """Upper estimate of a call's cost: the counted prompt tokens plus max_tokens of output (or
        `output_tokens` when given), at the provider's current price (0 when the price is unknown: such
        calls are flagged, never priced)."""
        return self._estimate_costs(provider, call, [call.max_tokens if output_tokens is None else output_tokens])[0]

    @api.model
    def _estimate_costs(self, provider, call, outputs):
        """`_estimate_cost` for each count of output tokens of `outputs`, the price read once."""
        price = provider.sudo()._price_at(fields.Datetime.now())
        if not price:
            return [0.0] * len(outputs)
        core_price = price._as_core_price()
        return [pricing.compute_cost(Usage(input_tokens=call.estimate.tokens, output_tokens=output), core_price)
                for output in outputs]

    @api.model
    def _call_estimates(self, rules, call):
        """What `call` reserves on each budget of `rules`: (its worst case, {budget id: amount}).

        A worst-case budget holds the worst case (prompt plus max_tokens of output); a calibrated one the prompt
        plus the p99 output learned for the call's provider, model and operation (core.budget
        reserved_output_tokens: never above max_tokens, the worst case while too few calls are known). When
        budgets of both modes apply, each holds its own mode's amount and is judged on it: a worst-case budget
        keeps its guarantee whatever a calibrated one next to it does. The learned figure comes from a cached
        table (ai.cost.budget.calibration): no query, and none of it at all when no budget is calibrated."""
        output = call.max_tokens
        if any(rule.reservation_mode == "calibrated" for rule in rules):
            learned = self.env["ai.cost.budget.calibration"]._learned_output(
                call.provider.id, call.provider._gateway_profile().model, call.operation
            )
            output = budget_math.reserved_output_tokens(call.max_tokens, learned)
        worst, calibrated = self._estimate_costs(call.provider, call, [call.max_tokens, output])
        return worst, {rule.id: calibrated if rule.reservation_mode == "calibrated" else worst for rule in rules}

    @api.model
    def _reserve_for_call(self, rules, call, switch):
        """Check the budgets of `rules` for `call` and reserve its estimated cost on their current
        periods, committed at once so that concurrent calls see each other's reservations.

        Each budget reserves the amount of its reservation mode (`_call_estimates`), and every reservation
        records the call's worst case too (what is at risk while it runs). `switch(call)` is called when a
        budget asks for the cheapest provider; it moves the call to that provider and returns True, or returns
        False when no cheaper one qualifies. Stores the reservations in call.budget_reservations and
        call.budget_periods, the rules in call.budget_rules, and returns the result, whose `estimated_cost` is
        the call's worst case.
        """
        # Everything Python needs (rules, timezone, price, learned output) comes from caches: the database sees
        # one statement per check (ai.cost.budget.period's HOLD_SQL), two when a budget switches the call.
        now = self._now()
        tz = self.env["res.company"]._ai_gateway_settings(call.provider._gateway_profile().company_id).tz
        bounds = {rule.id: budget_math.current_period(now, tz, rule.period_type) for rule in rules}
        worst, estimates = self._call_estimates(rules, call)
        outcomes, holds = self._hold_on_periods(rules, bounds, estimates, honour_switch=True, worst_case=worst)
        note = None
        if budget_math.strictest(outcome[3] for outcome in outcomes) == "switched":
            # Nothing is held yet: hold the estimates of the provider the call goes to.
            if switch(call):
                worst, estimates = self._call_estimates(rules, call)
            else:
                note = self.env._("A budget asks for a cheaper provider, but none qualifies: the call proceeds.")
            outcomes, holds = self._hold_on_periods(rules, bounds, estimates, honour_switch=False, worst_case=worst)
            if note:
                outcomes = [(*outcome[:3], "warning" if outcome[3] == "switched" else outcome[3], *outcome[4:])
                            for outcome in outcomes]
        result = self._outcome(outcomes, note)
        if holds:
            call.budget_periods = [period_id for period_id, _reservation_id in holds]
            call.budget_reservations = [reservation_id for _period_id, reservation_id in holds]
            call.budget_rules = {rule.id: rule for rule in rules}
        result["estimated_cost"] = worst
        return result

    @api.model
    def _hold_on_periods(self, rules, bounds, estimates, honour_switch, worst_case=None):
        """Hold each rule's estimate (`estimates`: {budget id: USD}) on the periods of `rules` (see
        ai.cost.budget.period `_hold`), and judge each rule on what its period held before and its own estimate.

        Returns the outcomes, (rule, period bounds, committed before the hold, status, estimate) tuples, and the
        holds, [(period id, reservation id)], empty when the call is blocked (or must switch first).
        """
        committed, holds = self.env["ai.cost.budget.period"]._hold(
            rules, bounds, estimates, honour_switch, worst_case
        )
        outcomes = [
            (rule, PeriodBounds(*bounds[rule.id]), committed[rule.id],
             rule.status(committed[rule.id], estimates[rule.id]), estimates[rule.id])
            for rule in rules
        ]
        return outcomes, holds

    def send_alert(self, threshold, period=None):
        """Notify that this budget reached `threshold` percent in `period` (default: the current one):
        a chatter message (emailed to the followers when an outgoing mail server exists) and an
        activity for the responsible user."""
        self.ensure_one()
        period = period or self._period_record(self._now())
        percent = period.spend / self.budget_amount * 100
        body = self.env._(
            "Budget %(name)s reached %(threshold)g%% in the %(period)s: "
            "%(spend)s of %(amount)s spent (%(percent).1f%%).",
            name=self.name, threshold=threshold, period=self._period_label(self.period_type, period),
            spend=pricing.format_usd(period.spend),
            amount=pricing.format_usd(self.budget_amount), percent=percent,
        )
        has_mail_server = bool(self.env["ir.mail_server"].sudo().search_count([], limit=1))
        self.message_post(
            body=Markup("<p>%s</p>") % body,
            subject=self.env._("AI budget %(name)s at %(threshold)g%%", name=self.name, threshold=threshold),
            message_type="comment" if has_mail_server else "notification",
            subtype_xmlid="mail.mt_comment" if has_mail_server else "mail.mt_note",
        )
        if self.responsible_id:
            self.activity_schedule(
                "mail.mail_activity_data_todo", summary=self.env._("AI budget at %g%%", threshold),
                note=body, user_id=self.responsible_id.id,
            )

    def forecast(self):
        """Projected spend of this budget at the end of its current period.

        Takes the spend of each day of the period so far (days in the company's timezone, today
        included), computes a daily rate where recent days weigh more (day i of the period weighs
        i), and adds that rate for every day left: see core.budget.forecast_spend.
        """
        self.ensure_one()
        start, end = self._period_at(self._now())
        return self._forecast_range(start, end)

    def _forecast_range(self, start, end):
        """Forecast of the spend between two local days, from the ledger's days so far (see
        core.budget.period_forecast, which the dashboard's forecast of the month uses too)."""
        Usage = self.env["ai.token.usage"].sudo().with_context(tz=self._tz())
        per_day = {
            day.date() if hasattr(day, "date") else day: cost
            for day, cost in Usage._read_group(self._ledger_domain(start, end), ["create_date:day"], ["cost_usd:sum"])
        }
        return budget_math.period_forecast(per_day, start, end, self._now_local_day())

    def action_view_usage(self):
        """The usage rows of the current period in this budget's scope."""
        self.ensure_one()
        start, end = self._period_at(self._now())
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Usage of %s", self.name),
            "res_model": "ai.token.usage",
            "view_mode": "list,form",
            "domain": self._ledger_domain(start, end),
        }
