from odoo import api, fields, models

from ..core import pricing
from ..core.usage import Usage
from .ai_service_provider_price import PRICE_DIGITS

QUALITY_LEVELS = [("low", "Low"), ("medium", "Medium"), ("high", "High")]
COMPLEXITIES = [("simple", "Simple"), ("medium", "Medium"), ("complex", "Complex")]


class AiTokenUsage(models.Model):
    _name = "ai.token.usage"
    _description = "AI Token Usage"
    _order = "create_date desc, id desc"
    _rec_name = "display_name"

    # Who and what
    user_id = fields.Many2one("res.users", default=lambda self: self.env.user, index=True, readonly=True)
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company, index=True)
    provider_id = fields.Many2one("ai.service.provider", index=True, ondelete="set null")
    model = fields.Char()
    mode = fields.Selection([("passthrough", "Passthrough"), ("smart_router", "Smart router")], default="passthrough")
    operation = fields.Char(index=True, help="What the caller was doing, e.g. lead_qualification.")
    res_model = fields.Char(string="Related Model", index=True)
    res_id = fields.Integer(string="Related Record")
    session_id = fields.Char(index=True)
    task_type = fields.Char(default="chat", index=True)
    complexity = fields.Selection(COMPLEXITIES)
    quality_required = fields.Selection(QUALITY_LEVELS, default="medium")

    # Tokens: input_tokens counts every prompt token; cache reads and writes are parts of it
    estimated_input_tokens = fields.Integer(help="tiktoken estimate made before the call.")
    estimate_exact = fields.Boolean(help="False when the estimate fell back to a character heuristic.")
    input_tokens = fields.Integer()
    output_tokens = fields.Integer()
    cache_read_tokens = fields.Integer()
    cache_write_tokens = fields.Integer()
    # Precomputed: set in the INSERT itself, not by an UPDATE right after it (one statement less per call).
    total_tokens = fields.Integer(compute="_compute_total_tokens", store=True, precompute=True)
    usage_reported = fields.Boolean(
        default=True, help="False when the provider returned no usage and tokens were estimated."
    )
    context_size_tokens = fields.Integer()
    context_type = fields.Selection([("full", "Full"), ("selective", "Selective"), ("minimal", "Minimal")])

    # Money (USD)
    cost_usd = fields.Float(digits=PRICE_DIGITS, string="Cost (USD)")
    cost_unknown = fields.Boolean(help="No price was known for the model: the cost is missing, not zero.")
    price_id = fields.Many2one("ai.service.provider.price", ondelete="set null", readonly=True)
    prompt_cache_savings_usd = fields.Float(
        digits=PRICE_DIGITS,
        help="What cache-read tokens would have cost at the uncached input price, minus their cost.",
    )

    # Outcome
    latency_ms = fields.Float()
    cache_hit = fields.Boolean(help="Answered from the response cache, without calling the provider.")
    status = fields.Selection(
        [("ok", "OK"), ("error", "Error"), ("blocked", "Blocked")], default="ok", required=True, index=True
    )
    error_message = fields.Text()
    attempts = fields.Integer(default=1)
    prompt_hash = fields.Char()  # searched through ai_token_usage_waste_prompt_idx, which it leads
    prompt_text = fields.Text()
    completion_text = fields.Text()
    quality_score = fields.Integer(help="User feedback, 0-100.")
    feedback = fields.Text()

    # Recommendation made for this call
    recommended_provider_id = fields.Many2one("ai.service.provider", ondelete="set null")
    recommended_cost_usd = fields.Float(digits=PRICE_DIGITS)
    switched = fields.Boolean()
    switched_from_id = fields.Many2one("ai.service.provider", ondelete="set null")

    # Waste
    waste_detected = fields.Boolean()  # the costly ones: ai_token_usage_waste_saved_idx, partial
    waste_reason = fields.Char()
    could_have_saved_usd = fields.Float(digits=PRICE_DIGITS)
    optimization_score = fields.Integer(help="100: nothing to improve.")

    @api.depends("input_tokens", "output_tokens")
    def _compute_total_tokens(self):
        for usage in self:
            usage.total_tokens = usage.input_tokens + usage.output_tokens

    @api.depends("model", "operation", "create_date")
    def _compute_display_name(self):
        for usage in self:
            usage.display_name = " · ".join(filter(None, [usage.model, usage.operation or usage.task_type]))

    def _core_usage(self):
        self.ensure_one()
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
        )

    def _recompute_cost(self):
        """Re-price rows with the price version that priced each call (after a correction of it),
        or, for calls whose cost was unknown, the version in force at the time of the call."""
        for usage in self.filtered(lambda u: u.status == "ok" and not u.cache_hit and u.provider_id):
            price = usage.price_id or usage.provider_id._price_at(usage.create_date)
            if not price:
                usage.write({"cost_unknown": True, "cost_usd": 0.0, "price_id": False})
                continue
            usage.write(
                {
                    "price_id": price.id,
                    "cost_unknown": False,
                    "cost_usd": pricing.compute_cost(usage._core_usage(), price._as_core_price()),
                }
            )

    @api.model
    def _add_ledger_rows(self, ledger):
        """Hook: add to `ledger` (ledger.LedgerStatement) the rows that every usage row the gateway
        writes brings with it, written by the same statement (the rollups)."""

    def analyze_waste(self):
        """Fill the waste fields; the rules come with waste detection (ai.token.analytics)."""
        return self.env["ai.service"]._analyze_waste(self)

    def action_open_record(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
        }

    @api.model
    def _cron_purge_prompts(self):
        """Blank prompt and completion texts older than each company's retention period."""
        for company in self.env["res.company"].search([]):
            cutoff = fields.Datetime.subtract(fields.Datetime.now(), days=company.ai_prompt_retention_days)
            self.search(
                [
                    ("company_id", "=", company.id),
                    ("create_date", "<", cutoff),
                    "|", ("prompt_text", "!=", False), ("completion_text", "!=", False),
                ]
            ).write({"prompt_text": False, "completion_text": False})
