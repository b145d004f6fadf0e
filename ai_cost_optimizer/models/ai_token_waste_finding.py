import hashlib
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..core import pricing
from ..core import waste as waste_rules
from ..core.tokens import count_message_tokens, count_text_tokens
from ..core.usage import Usage
from ..ledger.cursors import execute_prepared
from ..ledger.statement import NOW
from .ai_service_provider_price import PRICE_DIGITS

RULE_LABELS = {
    "duplicate_query": "Duplicate query",
    "redundant_context": "Redundant context",
    "oversized_context": "Oversized context",
    "wrong_model": "Wrong model",
    "unnecessary_history": "Unnecessary history",
    "missed_cache": "Missed prompt cache",
}

# The usage fields the waste rules read (see _call_values).
CALL_FIELDS = [
    "status", "cache_hit", "company_id", "user_id", "operation", "provider_id", "task_type", "model", "input_tokens",
    "output_tokens", "cache_read_tokens", "cost_usd", "cost_unknown", "create_date", "prompt_hash",
    "static_prefix_hash", "static_prefix_tokens", "redundant_context_tokens", "history_tokens",
    "recommended_provider_id",
]
WASTE_FIELDS = ["waste_detected", "waste_reason", "could_have_saved_usd", "optimization_score"]


class AiTokenWasteFinding(models.Model):
    """One waste rule's finding on one call: the lines of the waste report. The rules run here too: on every
    call the gateway records (its ledger statement writes the findings with the usage row), and on a stored
    row (ai.token.analytics.analyze_waste, the usage form's button)."""

    _name = "ai.token.waste.finding"
    _description = "AI Waste Finding"
    _order = "create_date desc, id desc"
    _inherit = ["ai.cost.code.label.mixin"]
    _rec_name = "rule"
    _code_label_fields = ("operation",)

    usage_id = fields.Many2one("ai.token.usage", required=True, ondelete="cascade", index=True, readonly=True)
    rule = fields.Selection(
        [(rule, RULE_LABELS[rule]) for rule in waste_rules.RULES], required=True, index=True, readonly=True
    )
    description = fields.Char(readonly=True)
    recommendation = fields.Char(readonly=True)
    tokens_wasted = fields.Integer(readonly=True)
    cost_wasted_usd = fields.Float(digits=PRICE_DIGITS, string="Cost Wasted (USD)", readonly=True)
    reviewed = fields.Boolean(help="A manager looked at this finding.")
    review_state = fields.Selection(
        [("to_review", "To Review"), ("reviewed", "Reviewed")], compute="_compute_review_state", string="Review"
    )
    reviewed_by_id = fields.Many2one("res.users", readonly=True)

    # Copied from the call when the finding is made (usage rows do not change), for filtering and grouping
    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    user_id = fields.Many2one("res.users", readonly=True)
    operation = fields.Char(string="Operation Code", readonly=True)
    operation_label = fields.Char(string="Operation", compute="_compute_code_labels")
    provider_id = fields.Many2one("ai.service.provider", readonly=True, ondelete="set null")
    call_date = fields.Datetime(readonly=True, index=True, string="Call Date")

    @api.depends("reviewed")
    def _compute_review_state(self):
        for finding in self:
            finding.review_state = "reviewed" if finding.reviewed else "to_review"

    def action_mark_reviewed(self):
        self.write({"reviewed": True, "reviewed_by_id": self.env.uid})

    # ------------------------------------------------------------------
    # The waste rules
    # ------------------------------------------------------------------
    @api.model
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
            self.sudo().create(self._finding_values(usage.id, usage.create_date, values, report))

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
        """Whether the same prompt was answered within the company's duplicate window, and whether the same
        static prefix was sent to the same provider within the prompt cache lifetime (by successful calls
        older than `before_id`, or all of them): one query.

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
        # Raw SQL for the waste analysis target (constant time, under 2 ms: DESIGN section 9), prepared.
        execute_prepared(self.env.cr, SQL("SELECT %s, %s", self._newest_match(duplicate), self._newest_match(prefix)))
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
        duplicate_of_recent, prefix_seen_recently = look_back
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
            alternatives=self._alternatives(values),
        )

    def _alternatives(self, values):
        """((name, cost of this call's tokens at its current prices),) of the provider the optimizer recommended
        for the call of `values`, when it is another one than the call's: the alternative the wrong_model rule
        weighs; () for none.

        One source: which providers qualify is decided by the optimizer alone (core.recommendation.rank, run by
        the gateway's recommend step and recorded on the row as recommended_provider_id), so the waste report
        names no provider it excluded (no key, blended quality under the bar, prompt plus expected answer over
        the context window, task type not served, price unknown). A call it recommended nothing for (nothing
        qualified, or a row written outside the gateway) has no wrong_model finding. The prices are those the
        optimizer ranks with (its cached candidates: no query); a provider since archived is no alternative."""
        recommended = values["recommended_provider_id"]
        if not recommended or recommended == values["provider_id"] or values["cost_unknown"] or not values["cost_usd"]:
            return ()
        candidate = self.env["ai.cost.optimizer"]._candidate(values["company_id"], recommended)
        if candidate is None or candidate.input_price is None:
            return ()
        tokens = Usage(input_tokens=values["input_tokens"] or 0, output_tokens=values["output_tokens"] or 0)
        price = pricing.ModelPrice(candidate.input_price, candidate.output_price, None, None, "provider")
        return ((candidate.name, pricing.compute_cost(tokens, price)),)

    @staticmethod
    def _waste_facts(messages, model, definitions=""):
        """What the waste rules need from the prompt, measured once, so the prompt need not be kept.
        `definitions`: the text of the call's tool definitions, which lead the prompt's cacheable prefix
        (providers cache tools, then system messages): a long, unchanging tool list is a cache candidate."""
        prefix = "\n\n".join(filter(None, [definitions, waste_rules.static_prefix(messages)]))
        history = waste_rules.history_messages(messages)
        return {
            # Exact bytes: a prompt cache only matches a byte-identical prefix.
            "static_prefix_hash": hashlib.sha256(f"{model}\n{prefix}".encode()).hexdigest() if prefix else False,
            "static_prefix_tokens": count_text_tokens(prefix, model).tokens if prefix else 0,
            "redundant_context_tokens": waste_rules.redundant_tokens(
                messages, lambda text: count_text_tokens(text, model).tokens
            ),
            "history_tokens": count_message_tokens(history, model).tokens if history else 0,
        }
