from odoo import fields, models

from .ai_service_provider_price import PRICE_DIGITS
from .ai_token_usage import QUALITY_LEVELS


class AiCostRecommendation(models.Model):
    """One answer of ai.cost.optimizer.recommend_provider, kept to show what was advised and why."""

    _name = "ai.cost.recommendation"
    _description = "AI Provider Recommendation"
    _inherit = ["ai.cost.code.label.mixin"]
    _order = "date desc, id desc"
    _code_label_fields = ("task_type",)

    name = fields.Char(required=True)
    date = fields.Datetime(default=fields.Datetime.now, required=True, index=True)
    user_id = fields.Many2one("res.users", default=lambda self: self.env.user, index=True)
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company, index=True)

    # The question
    task_type = fields.Char(string="Task Type Code", required=True, index=True)
    task_type_label = fields.Char(string="Task Type", compute="_compute_code_labels")
    quality_required = fields.Selection(QUALITY_LEVELS, required=True)
    context_size_tokens = fields.Integer()
    expected_output_tokens = fields.Integer()
    max_budget_usd = fields.Float(digits=PRICE_DIGITS, string="Max Budget (USD)")

    # The answer
    recommended_provider_id = fields.Many2one("ai.service.provider", ondelete="set null")
    estimated_cost_usd = fields.Float(digits=PRICE_DIGITS, string="Estimated Cost (USD)")
    qualifying_count = fields.Integer(string="Qualifying Providers")
    excluded_count = fields.Integer(string="Excluded Providers")
    reasoning = fields.Text()
