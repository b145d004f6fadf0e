from datetime import timedelta

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..core import pricing
from ..core import waste as waste_rules
from ..core.usage import Usage
from ..kept_cursors import execute_prepared
from ..ledger import NOW
from .ai_service_provider_price import PRICE_DIGITS
from .ai_token_waste_finding import RULE_LABELS

PERIOD_TYPES = [("day", "Day"), ("week", "Week"), ("month", "Month")]
# The rollup's keys behind each breakdown of get_cost_breakdown.
# The usage fields the waste rules read (see _call_values).
CALL_FIELDS = [
    "status", "cache_hit", "company_id", "user_id", "operation", "provider_id", "task_type", "model", "input_tokens",
    "output_tokens", "cache_read_tokens", "cost_usd", "cost_unknown", "create_date", "prompt_hash",
    "static_prefix_hash", "static_prefix_tokens", "redundant_context_tokens", "history_tokens",
    "recommended_provider_id",
]
WASTE_FIELDS = ["waste_detected", "waste_reason", "could_have_saved_usd", "optimization_score"]
BREAKDOWNS = {"by_module": "operation", "by_context": "res_model", "by_user": "user_id", "by_provider": "provider_id"}


def period_bounds(period_type, day):
    """The calendar period of type `period_type` containing `day`: (first day, last day)."""
    if period_type == "day":
        return day, day
    if period_type == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if period_type == "month":
        start = day.replace(day=1)
        return start, start + relativedelta(months=1, days=-1)
    raise ValueError(f"Unknown period type {period_type!r}: use day, week or month.")


class AiTokenAnalytics(models.Model):
    """Waste analysis of calls, cost breakdowns, and one record per company and calendar period."""

    _name = "ai.token.analytics"
    _description = "AI Cost Analytics Period"
    _order = "date_from desc, period_type, id desc"

    name = fields.Char(compute="_compute_name", store=True)
    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    period_type = fields.Selection(PERIOD_TYPES, required=True, readonly=True)
    date_from = fields.Date(required=True, readonly=True)
    date_to = fields.Date(required=True, readonly=True)

    # Totals of the period
    call_count = fields.Integer(string="Calls", readonly=True)
    total_tokens = fields.Integer(readonly=True)
    total_cost = fields.Float(digits=PRICE_DIGITS, string="Total Cost (USD)", readonly=True)
    waste_count = fields.Integer(string="Calls With Waste", readonly=True)
    potential_savings_usd = fields.Float(digits=PRICE_DIGITS, string="Potential Savings (USD)", readonly=True)
    top_cost_driver = fields.Char(readonly=True)
    recommendations = fields.Text(readonly=True)

    _sql_constraints = [
        ("period_uniq", "UNIQUE(company_id, period_type, date_from)", "One analytics record per company and period."),
    ]

    @api.depends("period_type", "date_from", "date_to")
    def _compute_name(self):
        for record in self:
            label = dict(PERIOD_TYPES).get(record.period_type, "")
            if record.period_type == "day" or not record.date_to:
                record.name = f"{label} {record.date_from}"
            else:
                record.name = f"{label} {record.date_from} – {record.date_to}"

    # ------------------------------------------------------------------
    # Waste analysis
    # ------------------------------------------------------------------
    @api.model
    def analyze_waste(self, token_usage_id):
        """Run the waste rules on one usage row, fill its waste fields and findings, return the report:
        {'waste_detected', 'waste_score', 'findings': [{'type', 'description', 'tokens_wasted',
        'cost_wasted', 'recommendation'}], 'potential_savings_usd'}."""
        _ = self.env._
        if isinstance(token_usage_id, bool) or not isinstance(token_usage_id, int) or token_usage_id <= 0:
            raise UserError(_("analyze_waste needs the id of a usage row, not %r.", token_usage_id))
        usage = self.env["ai.token.usage"].browse(token_usage_id).exists()
        if not usage or usage.company_id not in self.env.companies:
            raise UserError(_("Usage row %s does not exist or belongs to another company.", token_usage_id))
        usage.check_access("read")
        return self._analyze_usage(usage.sudo())

    def _analyze_usage(self, usage):
        """The report of `usage` (one stored row, read as superuser), written onto the row and its findings
        (only what changed: re-analysing a clean call writes nothing)."""
        values = self._call_values(usage)
        report = self._report(values, before_id=usage.id)
        changed = {name: value for name, value in self._waste_values(report).items() if values[name] != value}
        if changed:
            usage.write(changed)
        if values["waste_detected"]:  # findings exist only for rows flagged before
            usage.waste_finding_ids.unlink()
        self._create_findings(usage, values, report)
        return report

    def _report(self, values, before_id=None):
        """The waste report of a call described by `values` (see `_call_values`), stored or about to be:
        the rules of core.waste on its facts, with one query for what needs other calls (earlier calls
        than the row `before_id`, or than now for a call not yet stored)."""
        if values["status"] != "ok" or values["cache_hit"]:
            # Nothing was spent on a provider: nothing was wasted.
            return {"waste_detected": False, "waste_score": 0, "findings": [], "potential_savings_usd": 0.0}
        settings = self.env["res.company"].browse(values["company_id"])._ai_waste_settings()
        return waste_rules.analyze(self._facts(values, self._look_back(values, settings, before_id)), settings)

    def _call_values(self, usage):
        """What the rules read about a stored usage row, as the gateway passes it for a call it records."""
        price = usage.price_id
        return {
            **usage.read(CALL_FIELDS + WASTE_FIELDS, load=None)[0],
            "context_window": usage.provider_id.context_window,
            "provider_quality": usage.provider_id.quality_score,
            "input_price": price.input_price,
            "output_price": price.output_price,
            "cache_read_price": price.cache_read_price,
        }

    @staticmethod
    def _waste_values(report):
        """The usage row's waste fields for `report`."""
        return {
            "waste_detected": report["waste_detected"],
            "waste_reason": ", ".join(RULE_LABELS[finding["type"]] for finding in report["findings"]) or False,
            "could_have_saved_usd": report["potential_savings_usd"],
            "optimization_score": 100 - report["waste_score"],
        }

    def _create_findings(self, usage, values, report):
        """The ai.token.waste.finding records of `report` on `usage`."""
        if report["findings"]:
            findings = self._finding_values(usage.id, usage.create_date, values, report)
            self.env["ai.token.waste.finding"].sudo().create(findings)

    def _finding_values(self, usage_id, call_date, values, report):
        """The values of the findings of `report` on the call of `values` (usage_id and call_date: its
        row's, or SQL expressions of them in a ledger statement)."""
        return [
            {
                "usage_id": usage_id,
                "rule": finding["type"],
                "description": finding["description"],
                "recommendation": finding["recommendation"],
                "tokens_wasted": finding["tokens_wasted"],
                "cost_wasted_usd": finding["cost_wasted"],
                "company_id": values["company_id"],
                "user_id": values["user_id"],
                "operation": values["operation"],
                "provider_id": values["provider_id"],
                "call_date": call_date,
            }
            for finding in report["findings"]
        ]

    def _look_back(self, values, settings, before_id):
        """Whether the same prompt was answered within the company's duplicate window, whether the same
        static prefix was sent to the same provider within the prompt cache lifetime (by successful calls
        older than `before_id`, or all of them), and the cheaper alternatives: one query.

        The look-backs are two probes of the hash indexes (`_newest_match`), so their time grows neither
        with the ledger nor with how often a hot prompt repeats. Their parameters come from the call: the
        query plans in a fraction of a join on the row."""
        self.env["ai.token.usage"].flush_model()
        # A call not yet stored happens now: the transaction's timestamp, its row's create_date.
        at = SQL("%s::timestamp", values["create_date"]) if values.get("create_date") else NOW
        older = SQL("d.id < %s", before_id) if before_id else SQL("TRUE")
        duplicate = SQL(
            """d.prompt_hash = %s AND d.company_id = %s AND d.operation IS NOT DISTINCT FROM %s
               AND d.create_date >= %s - %s AND d.create_date <= %s AND %s""",
            values["prompt_hash"] or None, values["company_id"], values["operation"] or None,
            at, timedelta(seconds=settings.duplicate_window_seconds), at, older,
        )
        prefix = SQL(
            """d.static_prefix_hash = %s AND d.provider_id = %s
               AND d.create_date >= %s - %s AND d.create_date <= %s AND %s""",
            values["static_prefix_hash"] or None, values["provider_id"] or None,
            at, timedelta(seconds=settings.missed_cache_window_seconds), at, older,
        )
        execute_prepared(self.env.cr, SQL(
            "SELECT %s, %s, %s",
            self._newest_match(duplicate), self._newest_match(prefix), self._alternatives_sql(values),
        ))
        return self.env.cr.fetchone()

    @staticmethod
    def _newest_match(where):
        """Whether a successful call matches `where` (equalities on the leading columns of a hash index
        ending with create_date, and a create_date range): its newest match, read from the end of that
        index range. An EXISTS would let PostgreSQL choose a scan of the ledger for a hot prompt or
        prefix, expecting a match early, where the matches within the window are all at its end."""
        return SQL(
            "COALESCE((SELECT TRUE FROM ai_token_usage d WHERE %s AND d.status = 'ok' "
            "ORDER BY d.create_date DESC LIMIT 1), FALSE)",
            where,
        )

    def _facts(self, values, look_back):
        """What the rules need to know about the call of `values`."""
        duplicate_of_recent, prefix_seen_recently, alternatives = look_back
        return waste_rules.CallFacts(
            task_type=values["task_type"] or "chat",
            model=values["model"] or "",
            input_tokens=values["input_tokens"] or 0,
            output_tokens=values["output_tokens"] or 0,
            cost_usd=values["cost_usd"] or 0.0,
            prices=waste_rules.Prices(
                input_per_mtok=values["input_price"] or 0.0, output_per_mtok=values["output_price"] or 0.0,
                cache_read_per_mtok=values["cache_read_price"] or 0.0,
            ),
            cache_read_tokens=values["cache_read_tokens"] or 0,
            context_window=values["context_window"] or 0,
            redundant_tokens=values["redundant_context_tokens"] or 0,
            history_tokens=values["history_tokens"] or 0,
            static_prefix_tokens=values["static_prefix_tokens"] or 0,
            duplicate_of_recent=duplicate_of_recent,
            prefix_seen_recently=prefix_seen_recently,
            alternatives=self._cheaper_alternatives(values, alternatives),
        )

    @staticmethod
    def _cheaper_alternatives(values, alternatives):
        """(name, cost of this call's tokens at its current prices) of each alternative (`_alternatives_sql`)."""
        tokens = Usage(input_tokens=values["input_tokens"] or 0, output_tokens=values["output_tokens"] or 0)
        return tuple(
            (name, pricing.compute_cost(tokens, pricing.ModelPrice(input_price, output_price, None, None, "provider")))
            for name, input_price, output_price in alternatives or ()
        )

    def _alternatives_sql(self, values):
        """JSON [[name, input price, output price], ...] of the providers that could have served the call
        of `values`; NULL for a call without a provider or a known cost.

        Qualifying: the optimizer's recommendation recorded for the call (ai.cost.optimizer's
        recommend_provider, run by the gateway's recommend step); for a call without one, the company's
        other active providers with a known price, serving the task type, of at least the same quality,
        whose context window fits. The optimizer is not asked again: this runs after every call."""
        if not values["provider_id"] or values["cost_unknown"] or not values["cost_usd"]:
            return SQL("NULL")
        relation = self.env["ai.service.provider"]._fields["task_type_ids"]
        recommended = values["recommended_provider_id"]
        qualifies = SQL("a.id = %s", recommended) if recommended else SQL(
            """a.company_id = %(company)s AND a.active AND a.quality_score >= %(quality)s
               AND a.context_window >= %(tokens)s
               AND (NOT EXISTS (SELECT 1 FROM %(rel)s r WHERE r.%(provider_col)s = a.id)
                    OR EXISTS (SELECT 1 FROM %(rel)s r JOIN ai_task_type t ON t.id = r.%(task_col)s
                                WHERE r.%(provider_col)s = a.id AND t.code = %(task)s))""",
            company=values["company_id"], quality=values["provider_quality"] or 0, tokens=values["input_tokens"] or 0,
            task=values["task_type"] or "chat", rel=SQL.identifier(relation.relation),
            provider_col=SQL.identifier(relation.column1), task_col=SQL.identifier(relation.column2),
        )
        return SQL(
            """(SELECT json_agg(json_build_array(a.name, a.input_price, a.output_price))
                  FROM ai_service_provider a
                 WHERE a.id != %s AND NOT COALESCE(a.cost_unknown, FALSE) AND %s)""",
            values["provider_id"], qualifies,
        )

    # ------------------------------------------------------------------
    # Cost breakdown
    # ------------------------------------------------------------------
    @api.model
    def get_cost_breakdown(self, period_type="month", user_id=None):
        """Cost of the current calendar period (UTC days, as the per-day rollup it reads) of the user's companies:
        {'total_cost', 'by_module', 'by_context', 'by_user', 'by_provider', 'trends', ...}, each
        breakdown a list of {'key', 'name', 'cost_usd', 'calls', 'tokens'}, most expensive first.
        Users who are not AI Cost managers only see their own calls."""
        _ = self.env._
        if period_type not in dict(PERIOD_TYPES):
            raise UserError(_("period_type must be day, week or month, not %r.", period_type))
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
            raise UserError(_("user_id must be the id of a user, not %r.", user_id))
        if not self.env.user.has_group("ai_cost_optimizer.group_ai_cost_manager"):
            user_id = self.env.uid
        date_from, date_to = period_bounds(period_type, fields.Date.today())
        previous_from, previous_to = period_bounds(period_type, date_from - timedelta(days=1))
        current = self._breakdown(date_from, date_to, user_id)
        previous = self._breakdown(previous_from, previous_to, user_id)
        change = current["total_cost"] - previous["total_cost"]
        return {
            **current,
            "period_type": period_type,
            "date_from": date_from,
            "date_to": date_to,
            "trends": {
                "previous_total_cost": previous["total_cost"],
                "change_usd": change,
                "change_pct": round(100 * change / previous["total_cost"], 1) if previous["total_cost"] else None,
                "by_module": self._trend(current["by_module"], previous["by_module"]),
                "by_provider": self._trend(current["by_provider"], previous["by_provider"]),
            },
        }

    def _breakdown(self, date_from, date_to, user_id=None):
        Daily = self.env["ai.token.usage.daily"].sudo()
        domain = [("company_id", "in", self.env.companies.ids), ("day", ">=", date_from), ("day", "<=", date_to)]
        if user_id:
            domain.append(("user_id", "=", user_id))
        measures = ["cost_usd:sum", "call_count:sum", "input_tokens:sum", "output_tokens:sum"]
        [(cost, calls, input_tokens, output_tokens)] = Daily._read_group(domain, [], measures)
        result = {"total_cost": cost or 0.0, "call_count": calls or 0,
                  "total_tokens": (input_tokens or 0) + (output_tokens or 0)}
        for name, key in BREAKDOWNS.items():
            rows = []
            for group, cost, calls, input_tokens, output_tokens in Daily._read_group(domain, [key], measures):
                record = isinstance(group, models.BaseModel)
                rows.append({
                    "key": group.id if record else group or False,
                    "name": group.display_name if record else group or self.env._("(none)"),
                    "cost_usd": cost or 0.0,
                    "calls": calls or 0,
                    "tokens": (input_tokens or 0) + (output_tokens or 0),
                })
            result[name] = sorted(rows, key=lambda row: row["cost_usd"], reverse=True)
        return result

    @staticmethod
    def _trend(current, previous):
        before = {row["key"]: row["cost_usd"] for row in previous}
        return {row["name"]: row["cost_usd"] - before.get(row["key"], 0.0) for row in current}

    # ------------------------------------------------------------------
    # Periodic records
    # ------------------------------------------------------------------
    @api.model
    def _cron_build_periods(self, day=None):
        """Build or refresh the day, week and month records containing `day` (default today) of every
        company; re-running updates the records instead of adding new ones."""
        day = day or fields.Date.today()
        records = self.browse()
        for company in self.env["res.company"].search([]):
            for period_type, _label in PERIOD_TYPES:
                records |= self.with_company(company)._build_period(company, period_type, day)
        return records

    def _build_period(self, company, period_type, day):
        date_from, date_to = period_bounds(period_type, day)
        totals = self.with_context(allowed_company_ids=[company.id])._breakdown(date_from, date_to)
        Daily = self.env["ai.token.usage.daily"].sudo()
        [(waste_count, waste_usd)] = Daily._read_group(
            [("company_id", "=", company.id), ("day", ">=", date_from), ("day", "<=", date_to)],
            [], ["waste_count:sum", "waste_usd:sum"],
        )
        vals = {
            "call_count": totals["call_count"],
            "total_tokens": totals["total_tokens"],
            "total_cost": totals["total_cost"],
            "waste_count": waste_count or 0,
            "potential_savings_usd": waste_usd or 0.0,
            "top_cost_driver": self._top_driver(totals),
            "recommendations": self._recommendations(company, date_from, date_to),
        }
        record = self.sudo().search(
            [("company_id", "=", company.id), ("period_type", "=", period_type), ("date_from", "=", date_from)]
        )
        if record:
            record.write(vals)
            return record
        return self.sudo().create(
            {**vals, "company_id": company.id, "period_type": period_type, "date_from": date_from, "date_to": date_to}
        )

    def _top_driver(self, totals):
        if not totals["total_cost"]:
            return False
        for name, label in (("by_module", "Operation"), ("by_context", "Records of"), ("by_provider", "Provider")):
            rows = [row for row in totals[name] if row["key"]]
            if rows:
                top = rows[0]
                share = round(100 * top["cost_usd"] / totals["total_cost"])
                return f"{label} {top['name']}: ${top['cost_usd']:.4f} ({share}% of the cost)"
        return False

    def _recommendations(self, company, date_from, date_to):
        """One sentence per rule that found waste in the period, the costliest first."""
        start = fields.Datetime.to_datetime(date_from)
        end = fields.Datetime.to_datetime(date_to) + timedelta(days=1)
        groups = self.env["ai.token.waste.finding"].sudo()._read_group(
            [("company_id", "=", company.id), ("call_date", ">=", start), ("call_date", "<", end)],
            ["rule"], ["__count", "cost_wasted_usd:sum", "tokens_wasted:sum"], order="cost_wasted_usd:sum desc",
        )
        return "\n".join(
            self.env._(
                "%(rule)s: %(count)s calls wasted %(tokens)s tokens ($%(cost).4f). %(advice)s",
                rule=RULE_LABELS[rule], count=count, tokens=tokens or 0, cost=cost or 0.0,
                advice=waste_rules.ADVICE[rule],
            )
            for rule, count, cost, tokens in groups
        ) or False
