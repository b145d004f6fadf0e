from odoo import fields, models
from odoo.tools import create_index
from odoo.tools.sql import drop_index

from .ai_service_provider_price import PRICE_DIGITS


class AiTokenUsage(models.Model):
    """Waste facts of a call, measured from its prompt when it is recorded, so that the rules can
    run later on the row alone (the prompt text itself may not be kept)."""

    _inherit = "ai.token.usage"

    static_prefix_hash = fields.Char(help="SHA-256 of the leading system messages: the cacheable prefix.")
    static_prefix_tokens = fields.Integer(help="Tokens of the leading system messages.")
    redundant_context_tokens = fields.Integer(help="Tokens of repeated text blocks inside the prompt.")
    history_tokens = fields.Integer(help="Tokens of the conversation turns before the last user message.")
    cache_savings_usd = fields.Float(
        digits=PRICE_DIGITS, string="Response Cache Savings (USD)",
        help="Answered from the response cache: what the original call cost.",
    )
    waste_finding_ids = fields.One2many("ai.token.waste.finding", "usage_id", string="Waste Findings")

    def init(self):
        super().init()
        # Constant-time look-ups of the waste rules: an earlier identical prompt or prefix,
        # of the same company, within a time window.
        create_index(
            self.env.cr, "ai_token_usage_waste_prompt_idx", self._table, ["prompt_hash", "company_id", "create_date"]
        )
        # It supersedes the plain prompt_hash index of earlier versions (Odoo keeps a dropped index):
        # one index less to maintain on every call.
        drop_index(self.env.cr, "ai_token_usage__prompt_hash_index", self._table)
        create_index(
            self.env.cr, "ai_token_usage_waste_prefix_idx", self._table,
            ["static_prefix_hash", "provider_id", "create_date"], where="static_prefix_hash IS NOT NULL",
        )
