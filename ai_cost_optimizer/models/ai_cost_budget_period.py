from collections import namedtuple
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL, format_date

from ..ledger.cursors import STATEMENT_CURSORS, execute_prepared, run_in_own_transaction
from ..ledger.statement import with_statement
from .ai_service_provider_price import PRICE_DIGITS

# A reservation older than this belongs to a call whose worker died: the cron releases it.
# Far above any provider timeout with its retries.
RESERVATION_TTL = timedelta(minutes=30)

# The calendar bounds of a period that has no row read yet (same attribute names as the row).
PeriodBounds = namedtuple("PeriodBounds", ["date_start", "date_end"])


def period_range_label(env, date_start, date_end):
    """A period's days as every screen shows them, first and last day included, as Odoo's own date ranges read
    (11/30/2026 – 12/06/2026): the period history list (its Start and End Date columns), the period's name and
    the budget's messages. `date_end` is the first day of the next period, as stored."""
    return f"{format_date(env, date_start)} – {format_date(env, date_end - timedelta(days=1))}"

# Check and reserve in ONE statement, in a transaction of its own (autocommit: no BEGIN/COMMIT round
# trips), prepared once on each kept cursor (see ledger.cursors `execute_prepared`, which its casts let type
# the parameters): lock the budgets' period rows in id order
# (concurrent checks never deadlock), and hold each budget's estimate (its reservation mode's amount: ai.cost.budget
# `_call_estimates`) on all of them only when every row exists and the call passes no block line, nor a switch
# line when `honour_switch` (a switched call is re-estimated on its new provider first), each budget judged on
# its own estimate. The lines come from core.budget.action_lines and the comparisons are those of
# core.budget.evaluate, in the same double precision arithmetic (an estimate is sent as the decimal text of its
# Python double, numeric, which PostgreSQL turns back into that very double next to the float8 total): the rule
# is written once in Python, and test_hold_statement_decides_like_evaluate_on_generated_cases holds this SQL form
# to it, on the lines and one double either side of them, with budgets of different estimates. Each reservation
# records the call's worst case too (never below its amount), from which the budget shows what is at risk.
# Returns each locked row with its total before the hold and the hold's reservation id (NULL when nothing was
# held). Losing this commit in a server crash loses a temporary hold only: the commit need not wait for the disk
# (the kept cursors' setting).
HOLD_SQL = """
WITH locked AS MATERIALIZED (
    SELECT p.id, p.budget_id, p.spend::float8 + p.reserved::float8 AS committed, rule.switch_line, rule.block_line,
           rule.estimate
      FROM ai_cost_budget_period p
      JOIN unnest(%(budgets)s::int[], %(starts)s::date[], %(switch_lines)s::float8[], %(block_lines)s::float8[],
                  %(estimates)s::numeric[])
           AS rule(budget_id, date_start, switch_line, block_line, estimate)
        ON p.budget_id = rule.budget_id AND p.date_start = rule.date_start
     ORDER BY p.id
       FOR UPDATE OF p
), held AS (
    UPDATE ai_cost_budget_period p SET reserved = p.reserved + locked.estimate
      FROM locked
     WHERE p.id = locked.id AND (
           SELECT count(*) = %(count)s::int AND bool_and(
                      (block_line IS NULL OR committed + estimate <= block_line)
                      AND (NOT %(honour_switch)s::bool OR switch_line IS NULL OR committed + estimate < switch_line)
                  )
             FROM locked
           )
    RETURNING p.id, locked.estimate
), hold AS (
    INSERT INTO ai_cost_budget_reservation (period_id, amount, worst_case, create_uid, create_date, write_uid,
                                            write_date)
    SELECT id, estimate, GREATEST(estimate, COALESCE(%(worst_case)s::numeric, estimate)), %(uid)s::int,
           now() AT TIME ZONE 'UTC', %(uid)s::int, now() AT TIME ZONE 'UTC'
      FROM held
    RETURNING id, period_id
)
SELECT locked.budget_id, locked.id, locked.committed, hold.id
  FROM locked LEFT JOIN hold ON hold.period_id = locked.id
"""

# Settle a call in ONE statement on the ledger transaction: lock its periods in id order (as HOLD_SQL does:
# concurrent calls never deadlock), drop its reservations (RETURNING: what this transaction deleted, never
# what the expiry cron released already), and replace them with its actual cost, atomically across workers
# (DESIGN section 10). A call that cost more than it reserved on a period is counted there, with the excess
# (calibrated reservations: the answers longer than the learned p99). Returns each period's new spend, its
# alert marker and its budget. As named parts, (name, text, materialized), the last one the UPDATE: the
# gateway adds them to the statement of the call's ledger rows (ledger.statement), `_settle` runs them alone.
SETTLE_PARTS = (
    ("settle_locked", """
    SELECT id FROM ai_cost_budget_period WHERE id = ANY(%(periods)s::int[]) ORDER BY id FOR UPDATE""", True),
    ("settle_released", """
    DELETE FROM ai_cost_budget_reservation WHERE id = ANY(%(reservations)s::int[]) RETURNING period_id, amount""",
     False),
    ("settle_over", """
    SELECT period_id, count(*) AS calls, sum(%(cost)s::numeric - amount) AS usd
      FROM settle_released WHERE amount < %(cost)s::numeric GROUP BY period_id""", False),
    ("budget_settle", """
UPDATE ai_cost_budget_period p
   SET spend = p.spend + %(cost)s::numeric,
       reserved = GREATEST(
           p.reserved - COALESCE((SELECT sum(r.amount) FROM settle_released r WHERE r.period_id = p.id), 0), 0
       ),
       call_count = p.call_count + 1,
       over_reservation_calls = COALESCE(p.over_reservation_calls, 0)
                                + COALESCE((SELECT o.calls FROM settle_over o WHERE o.period_id = p.id), 0),
       over_reservation_usd = COALESCE(p.over_reservation_usd, 0)
                              + COALESCE((SELECT o.usd FROM settle_over o WHERE o.period_id = p.id), 0)
  FROM settle_locked l
 WHERE p.id = l.id
RETURNING p.id, p.spend, p.alerted_up_to, p.budget_id""", False),
)


class AiCostBudgetPeriod(models.Model):
    """The running totals of one budget over one calendar period.

    The gateway reads and updates this single row under a row lock, so a budget check costs the
    same whatever the size of the usage ledger. `spend` is the settled cost of the period's calls,
    `reserved` the estimates of the calls in flight: a call is held (`_hold`) before it goes out, then
    settled (`_settle`) or released (`_release`). What a budget is, and what each status means, is
    ai.cost.budget's.
    """

    _name = "ai.cost.budget.period"
    _description = "AI Budget Period"
    _order = "date_start desc, id desc"
    _rec_name = "date_start"

    budget_id = fields.Many2one("ai.cost.budget", required=True, index=True, ondelete="cascade", readonly=True)
    company_id = fields.Many2one(related="budget_id.company_id", store=True, index=True)
    date_start = fields.Date(required=True, readonly=True)
    # Stored exclusive (the first day of the next period: the budgets' arithmetic); shown inclusive (date_last).
    date_end = fields.Date(string="Next Period Start", required=True, readonly=True,
                           help="First day of the next period.")
    date_last = fields.Date(compute="_compute_date_last", string="End Date", help="The period's last day, included.")

    spend = fields.Float(digits=PRICE_DIGITS, string="Spend (USD)", readonly=True)
    reserved = fields.Float(digits=PRICE_DIGITS, string="In Flight (USD)", readonly=True)
    call_count = fields.Integer(string="Calls", readonly=True)
    at_risk = fields.Float(
        digits=PRICE_DIGITS, compute="_compute_at_risk", string="At Risk Now (USD)",
        help="The calls in flight's worst case minus what they reserved (calibrated reservations).",
    )
    over_reservation_calls = fields.Integer(
        string="Calls Over Reservation", default=0, readonly=True,
        help="Calls whose actual cost exceeded their reservation."
    )
    over_reservation_usd = fields.Float(
        digits=PRICE_DIGITS, string="Cost Over Reservation (USD)", default=0.0, readonly=True,
        help="What those calls cost beyond what they reserved.",
    )
    # Alert-once marker: thresholds are increasing, so the highest one alerted says which were sent.
    alerted_up_to = fields.Float(string="Alerted Up To (%)", readonly=True)
    budget_amount = fields.Float(related="budget_id.budget_amount")
    percentage_used = fields.Float(compute="_compute_percentage_used", string="Used (%)")

    _sql_constraints = [
        ("budget_period_unique", "UNIQUE(budget_id, date_start)", "A budget has one row per period."),
    ]

    @api.depends("spend", "budget_id.budget_amount")
    def _compute_percentage_used(self):
        for period in self:
            amount = period.budget_id.budget_amount
            period.percentage_used = period.spend / amount * 100 if amount else 0.0

    @api.depends("reserved")
    def _compute_at_risk(self):
        """Sum over the period's reservations of worst case minus amount (a reservation without a worst case,
        made before calibrated reservations, risks nothing beyond itself)."""
        saved = self.filtered("id")
        risk = {
            period.id: (worst or 0.0) - (amount or 0.0)
            for period, worst, amount in self.env["ai.cost.budget.reservation"].sudo()._read_group(
                [("period_id", "in", saved.ids), ("worst_case", "!=", False)], ["period_id"],
                ["worst_case:sum", "amount:sum"],
            )
        } if saved else {}
        for period in self:
            period.at_risk = max(risk.get(period.id, 0.0), 0.0)

    @api.depends("date_end")
    def _compute_date_last(self):
        for period in self:
            period.date_last = period.date_end and period.date_end - timedelta(days=1)

    @api.depends("date_start", "date_end")
    def _compute_display_name(self):
        for period in self:
            period.display_name = period_range_label(self.env, period.date_start, period.date_end)

    # ------------------------------------------------------------------
    # Gateway operations (plain SQL on the hot path, on the caller-given cursor)
    # ------------------------------------------------------------------
    @api.model
    def _hold(self, rules, bounds, estimates, honour_switch, worst_case=None):
        """Check a call against the lines of `rules` (ai.cost.budget BudgetRule tuples), each budget with its own
        estimate (`estimates`: {budget id: USD}), and hold those on their periods of `bounds` ({budget id: (start,
        end)}): HOLD_SQL, committed in a transaction of its own (see run_in_own_transaction), creating the missing
        period rows first. Each reservation records `worst_case`, the call's worst case (None: its amount).

        Returns ({budget id: spend plus reservations of its period before the hold}, holds), the holds
        [(period id, reservation id)], empty when the call is blocked (or must switch first).
        """
        lines = [rule.lines() for rule in rules]
        params = {
            "budgets": [rule.id for rule in rules], "starts": [bounds[rule.id][0] for rule in rules],
            "switch_lines": [line[0] for line in lines], "block_lines": [line[1] for line in lines],
            "estimates": [float(estimates[rule.id]) for rule in rules], "worst_case": worst_case,
            "count": len(rules), "honour_switch": honour_switch, "uid": self.env.uid,
        }

        def hold(cr):
            # Raw SQL for the budget check target (constant time: DESIGN section 9), under row locks (section 10).
            execute_prepared(cr, SQL(HOLD_SQL, **params))
            return cr.fetchall()

        rows = run_in_own_transaction(self.env, hold, STATEMENT_CURSORS, {"res_users": {self.env.uid}})
        if len(rows) < len(rules):
            found = {row[0] for row in rows}
            self._create_missing_periods({rule.id: bounds[rule.id] for rule in rules if rule.id not in found})
            return self._hold(rules, bounds, estimates, honour_switch, worst_case)
        committed = {budget_id: total for budget_id, _period_id, total, _hold in rows}
        return committed, [(period_id, hold) for _budget_id, period_id, _total, hold in rows if hold]

    @api.model
    def _create_missing_periods(self, bounds):
        """Create the period rows of `bounds` ({budget id: (start, end)}) that do not exist yet, in a
        committed transaction of their own. A new row starts from what the ledger already holds for
        the period, so a budget created mid-period counts the calls made before it."""

        def create(cr):
            env = self.env(cr=cr, su=True)
            for budget in env["ai.cost.budget"].browse(sorted(bounds)):
                start, end = bounds[budget.id]
                # Raw SQL for an upsert (ON CONFLICT, DESIGN section 10): concurrent calls create the same row.
                cr.execute(SQL(
                    """INSERT INTO ai_cost_budget_period
                              (budget_id, company_id, date_start, date_end, spend, reserved, call_count,
                               over_reservation_calls, over_reservation_usd, alerted_up_to, create_uid,
                               create_date, write_uid, write_date)
                       VALUES (%(budget)s, %(company)s, %(start)s, %(end)s, %(spend)s, 0, 0, 0, 0, 0,
                               %(uid)s, now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC')
                  ON CONFLICT (budget_id, date_start) DO NOTHING""",
                    budget=budget.id, company=budget.company_id.id, start=start, end=end,
                    spend=budget._ledger_spend(start, end), uid=self.env.uid,
                ))

        references = {"res_users": {self.env.uid}, "ai_cost_budget": set(bounds)}
        run_in_own_transaction(self.env, create, references=references)

    def _unreserve(self, reservation_ids):
        """Drop reservations: returns {period_id: amount released} (expired ones are already gone)."""
        if not reservation_ids:
            return {}
        # Raw SQL for correctness across workers (DESIGN section 10): RETURNING gives what this transaction
        # deleted, never a reservation that the expiry cron released already.
        self.env.cr.execute(SQL(
            "DELETE FROM ai_cost_budget_reservation WHERE id IN %s RETURNING period_id, amount",
            tuple(reservation_ids),
        ))
        released = {}
        for period_id, amount in self.env.cr.fetchall():
            released[period_id] = released.get(period_id, 0.0) + amount
        return released

    def _settle_parts(self, reservation_ids, actual_cost):
        """The parts of the statement that replaces the reservations of a finished call with its actual cost, on
        these periods (see SETTLE_PARTS): [(name, SQL, materialized)], the last one returning the periods'
        (id, spend, alerted_up_to, budget_id)."""
        params = dict(periods=sorted(self.ids), reservations=list(reservation_ids or []), cost=actual_cost or 0.0)
        return [(name, SQL(code, **params), materialized) for name, code, materialized in SETTLE_PARTS]

    def _settle(self, reservation_ids, actual_cost, rules=None):
        """Replace the reservations of a finished call with its actual cost, in one statement of its own (see
        SETTLE_PARTS), then send the alerts of the thresholds the new spend reaches (`_settle_alerts`)."""
        execute_prepared(self.env.cr, with_statement(self._settle_parts(reservation_ids, actual_cost)))
        self._settle_alerts(self.env.cr.fetchall(), rules)

    def _settle_alerts(self, settled, rules=None):
        """Send the alerts of the thresholds that the periods' new spend reaches. `settled`: what the settle
        returned, (id, spend, alerted_up_to, budget_id) per period. It runs on the ledger transaction, so the spend
        commits together with the usage row. `rules`: the periods' budgets as the call was checked against
        them ({budget id: BudgetRule}), so that their thresholds are not read again."""
        crossed = []
        for period_id, spend, alerted_up_to, budget_id in settled:
            rule = (rules or {}).get(budget_id) or self.browse(period_id).budget_id._rule()
            thresholds = rule.crossed_thresholds(spend, alerted_up_to or 0.0)
            if thresholds:
                # The row is locked by the UPDATE until this transaction ends: no other worker can read the
                # old marker and send the same alert.
                crossed.append((self.browse(period_id), thresholds))
        self.invalidate_recordset(
            ["spend", "reserved", "call_count", "alerted_up_to", "over_reservation_calls", "over_reservation_usd"]
        )
        for period, thresholds in crossed:
            period.alerted_up_to = max(thresholds)
            # Read back by the next settle's UPDATE ... RETURNING, which flushes nothing (in the same transaction
            # when the caller's keeps the rows).
            period.flush_recordset(["alerted_up_to"])
            for threshold in thresholds:
                period.budget_id.send_alert(threshold, period)

    def _release(self, reservation_ids):
        """Give back the reservations of a call that failed."""
        released = self._unreserve(reservation_ids)
        for period_id in sorted(released):
            # Raw SQL for atomic decrements across workers (DESIGN section 10).
            self.env.cr.execute(SQL(
                "UPDATE ai_cost_budget_period SET reserved = GREATEST(reserved - %s, 0) WHERE id = %s",
                released[period_id], period_id,
            ))
        self.invalidate_recordset(["reserved"])

    def _rebuild_from_ledger(self):
        """Recompute the spend and call count of these periods from the usage ledger, the source of
        truth (e.g. after a database restore or a manual fix). In-flight reservations are kept.
        Cache hits count in the spend (at 0) but not in the calls: they never reach a budget check."""
        Usage = self.env["ai.token.usage"].sudo()
        for period in self.sorted("id"):
            groups = Usage._read_group(
                period.budget_id._ledger_domain(period.date_start, period.date_end),
                ["cache_hit"], ["cost_usd:sum", "__count"],
            )
            period.write({
                "spend": sum(cost or 0.0 for _hit, cost, _count in groups),
                "call_count": sum(count for hit, _cost, count in groups if not hit),
            })
        return True

    @api.model
    def _cron_expire_reservations(self):
        """Release reservations older than RESERVATION_TTL: their worker died before settling."""
        limit = fields.Datetime.now() - RESERVATION_TTL
        # Raw SQL for row locks (FOR UPDATE, DESIGN section 10), in id order as the holds take them.
        self.env.cr.execute(SQL(
            """SELECT id FROM ai_cost_budget_period
                WHERE id IN (SELECT period_id FROM ai_cost_budget_reservation WHERE create_date < %s)
                ORDER BY id FOR UPDATE""",
            limit,
        ))
        periods = self.browse([row[0] for row in self.env.cr.fetchall()])
        if not periods:
            return
        expired = self.env["ai.cost.budget.reservation"].sudo().search(
            [("create_date", "<", limit), ("period_id", "in", periods.ids)]
        )
        periods._release(expired.ids)
