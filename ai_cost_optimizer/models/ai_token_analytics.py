from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import format_date

from ..core import pricing
from ..core import waste as waste_rules
from ..core.periods import report_period_bounds
from ..core.usage import Usage
from .ai_cost_budget_period import period_range_label
from .ai_service_provider_price import PRICE_DIGITS
from .ai_token_waste_finding import RULE_LABELS

PERIOD_TYPES = [("day", "Day"), ("week", "Week"), ("month", "Month")]
# The rollup's keys behind each breakdown of get_cost_breakdown.
BREAKDOWNS = {"by_module": "operation", "by_context": "res_model", "by_user": "user_id", "by_provider": "provider_id"}


class AiTokenAnalytics(models.Model):
    """Cost breakdowns, and one record per company and calendar period (the waste rules themselves are run by
    ai.token.waste.finding)."""

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
            # Dates as every list shows them (the user's format), a range as the budget periods read it.
            if record.period_type == "day" or not record.date_to:
                record.name = f"{label} {format_date(self.env, record.date_from)}"
            else:
                days = period_range_label(self.env, record.date_from, record.date_to + timedelta(days=1))
                record.name = f"{label} {days}"

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
        return self.env["ai.token.waste.finding"].sudo()._analyze_usage(usage.sudo())

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
        date_from, date_to = report_period_bounds(period_type, fields.Date.today())
        previous_from, previous_to = report_period_bounds(period_type, date_from - timedelta(days=1))
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
                  "total_tokens": Usage(input_tokens or 0, output_tokens or 0).total_tokens}
        for name, key in BREAKDOWNS.items():
            rows = []
            groups = Daily._read_group(domain, [key], measures)
            # An operation keeps its code as key and reads as its label.
            labels = Daily._code_labels(key, [group for group, *_ in groups]) if key in Daily._code_label_fields else {}
            for group, cost, calls, input_tokens, output_tokens in groups:
                record = isinstance(group, models.BaseModel)
                rows.append({
                    "key": group.id if record else group or False,
                    "name": group.display_name if record else labels.get(group) or group or self.env._("(none)"),
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
        date_from, date_to = report_period_bounds(period_type, day)
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
                return f"{label} {top['name']}: {pricing.format_usd(top['cost_usd'])} ({share}% of the cost)"
        return False

    def _recommendations(self, company, date_from, date_to):
        """One sentence per rule that found waste in the period, the costliest first."""
        return "\n".join(line["text"] for line in self._waste_by_rule(company, date_from, date_to)) or False

    @api.model
    def _waste_findings_domain(self, companies, date_from, date_to):
        """The waste findings of `companies` on the days [date_from, date_to] (UTC days, those of the per-day
        rollup): what the Waste Report lists for that period."""
        return [
            ("company_id", "in", companies.ids),
            ("call_date", ">=", fields.Datetime.to_datetime(date_from)),
            ("call_date", "<", fields.Datetime.to_datetime(date_to + timedelta(days=1))),
        ]

    @api.model
    def _waste_by_rule(self, companies, date_from, date_to):
        """The findings of each rule in the period, the costliest rule first: [{'rule', 'count', 'tokens',
        'cost', 'text', 'domain'}], `domain` the Waste Report's rows counted. The analytics records and the
        dashboard's recommendations read this."""
        domain = self._waste_findings_domain(companies, date_from, date_to)
        # What the rule costs a month at the period's pace: the saving its advice is worth.
        month_share = 30 / ((date_to - date_from).days + 1)
        groups = self.env["ai.token.waste.finding"].sudo()._read_group(
            domain, ["rule"], ["__count", "cost_wasted_usd:sum", "tokens_wasted:sum"], order="cost_wasted_usd:sum desc",
        )
        return [
            {
                "rule": rule, "count": count, "tokens": tokens or 0, "cost": cost or 0.0,
                "domain": domain + [("rule", "=", rule)],
                "text": self.env._(
                    "%(rule)s: %(count)s calls wasted %(tokens)s tokens (%(cost)s), about %(monthly)s a month. "
                    "%(advice)s",
                    rule=RULE_LABELS[rule], count=f"{count:,}", tokens=f"{tokens or 0:,}",
                    cost=pricing.format_usd(cost or 0.0), monthly=pricing.format_usd((cost or 0.0) * month_share),
                    advice=waste_rules.ADVICE[rule],
                ),
            }
            for rule, count, cost, tokens in groups
        ]
