from odoo import fields, models

from ..core.waste import RULES
from .ai_service_provider_price import PRICE_DIGITS

RULE_LABELS = {
    "duplicate_query": "Duplicate query",
    "redundant_context": "Redundant context",
    "oversized_context": "Oversized context",
    "wrong_model": "Wrong model",
    "unnecessary_history": "Unnecessary history",
    "missed_cache": "Missed prompt cache",
}


class AiTokenWasteFinding(models.Model):
    """One waste rule's finding on one call: the lines of the waste report."""

    _name = "ai.token.waste.finding"
    _description = "AI Waste Finding"
    _order = "create_date desc, id desc"
    _rec_name = "rule"

    usage_id = fields.Many2one("ai.token.usage", required=True, ondelete="cascade", index=True, readonly=True)
    rule = fields.Selection([(rule, RULE_LABELS[rule]) for rule in RULES], required=True, index=True, readonly=True)
    description = fields.Char(readonly=True)
    recommendation = fields.Char(readonly=True)
    tokens_wasted = fields.Integer(readonly=True)
    cost_wasted_usd = fields.Float(digits=PRICE_DIGITS, string="Cost Wasted (USD)", readonly=True)
    reviewed = fields.Boolean(help="A manager looked at this finding.")
    reviewed_by_id = fields.Many2one("res.users", readonly=True)

    # Copied from the call when the finding is made (usage rows do not change), for filtering and grouping
    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    user_id = fields.Many2one("res.users", readonly=True)
    operation = fields.Char(readonly=True)
    provider_id = fields.Many2one("ai.service.provider", readonly=True, ondelete="set null")
    call_date = fields.Datetime(readonly=True, index=True, string="Call Date")

    def action_mark_reviewed(self):
        self.write({"reviewed": True, "reviewed_by_id": self.env.uid})
