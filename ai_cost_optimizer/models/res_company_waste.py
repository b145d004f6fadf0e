from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError

from ..core.waste import WasteSettings

WASTE_FIELDS = (
    "ai_waste_duplicate_window_minutes",
    "ai_waste_redundant_min_tokens",
    "ai_waste_oversized_input_tokens",
    "ai_waste_near_window_pct",
    "ai_waste_tiny_answer_tokens",
    "ai_waste_wrong_model_saving_pct",
    "ai_waste_history_min_tokens",
    "ai_waste_cache_window_minutes",
)
WASTE_SET = frozenset(WASTE_FIELDS)


class ResCompany(models.Model):
    """Waste-rule thresholds and the response cache, per company (see core/waste.py for the rules)."""

    _inherit = "res.company"

    # Waste rules
    ai_waste_duplicate_window_minutes = fields.Integer(
        string="Duplicate Window (minutes)", default=60,
        help="The same prompt answered again within this time is a duplicate query.",
    )
    ai_waste_redundant_min_tokens = fields.Integer(
        string="Redundant Context (tokens)", default=50,
        help="Repeated text blocks inside one prompt adding up to this many tokens are redundant context.",
    )
    ai_waste_oversized_input_tokens = fields.Integer(
        string="Oversized Input (tokens)", default=16000,
        help="Input above this (4000 for classify, 8000 for extract and translate) is oversized context.",
    )
    ai_waste_near_window_pct = fields.Integer(
        string="Near Context Window (%)", default=80,
        help="Input filling this share of the context window for a tiny answer is oversized context.",
    )
    ai_waste_tiny_answer_tokens = fields.Integer(
        string="Tiny Answer (tokens)", default=100, help="An answer of at most this many tokens is tiny."
    )
    ai_waste_wrong_model_saving_pct = fields.Integer(
        string="Wrong Model Saving (%)", default=20,
        help="A qualifying provider cheaper by at least this share makes the call a wrong-model call.",
    )
    ai_waste_history_min_tokens = fields.Integer(
        string="Unnecessary History (tokens)", default=200,
        help="Earlier turns of at least this many tokens sent with a single-shot task are unnecessary history.",
    )
    ai_waste_cache_window_minutes = fields.Integer(
        string="Prompt Cache Lifetime (minutes)", default=5,
        help="A static prefix repeated within this time without cache reads is a missed prompt cache.",
    )

    # Response cache
    ai_response_cache = fields.Boolean(
        string="Response Cache", default=True,
        help="Answer repeated deterministic calls (temperature 0 or unset) from stored answers.",
    )
    ai_response_cache_ttl_hours = fields.Integer(string="Response Cache Lifetime (hours)", default=24)

    @api.constrains(*WASTE_FIELDS, "ai_response_cache_ttl_hours")
    def _check_ai_waste_settings(self):
        for company in self:
            errors = company._ai_waste_settings_read().errors()
            if errors:
                raise ValidationError(self.env._("Invalid waste detection thresholds: %s", " ".join(errors)))
            if company.ai_response_cache_ttl_hours <= 0:
                raise ValidationError(self.env._("The response cache lifetime must be at least one hour."))

    def write(self, vals):
        result = super().write(vals)
        if WASTE_SET.intersection(vals):
            self.env.registry.clear_cache()
        return result

    def _ai_waste_settings(self):
        """The company's thresholds as the core rules take them; cached, as they are read on every call
        and seldom change (a change clears the cache of every worker through the registry signaling)."""
        self.ensure_one()
        return self._ai_waste_settings_cached(self.id)

    @tools.ormcache("company_id")
    def _ai_waste_settings_cached(self, company_id):
        return self.sudo().browse(company_id)._ai_waste_settings_read()

    def _ai_waste_settings_read(self):
        self.ensure_one()
        return WasteSettings(
            duplicate_window_seconds=self.ai_waste_duplicate_window_minutes * 60,
            redundant_min_tokens=self.ai_waste_redundant_min_tokens,
            oversized_input_tokens=self.ai_waste_oversized_input_tokens,
            near_window_ratio=self.ai_waste_near_window_pct / 100,
            tiny_answer_tokens=self.ai_waste_tiny_answer_tokens,
            wrong_model_min_saving_ratio=self.ai_waste_wrong_model_saving_pct / 100,
            history_min_tokens=self.ai_waste_history_min_tokens,
            missed_cache_window_seconds=self.ai_waste_cache_window_minutes * 60,
        )
