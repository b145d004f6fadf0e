from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    ai_waste_duplicate_window_minutes = fields.Integer(
        related="company_id.ai_waste_duplicate_window_minutes", readonly=False
    )
    ai_waste_redundant_min_tokens = fields.Integer(related="company_id.ai_waste_redundant_min_tokens", readonly=False)
    ai_waste_oversized_input_tokens = fields.Integer(
        related="company_id.ai_waste_oversized_input_tokens", readonly=False
    )
    ai_waste_near_window_pct = fields.Integer(related="company_id.ai_waste_near_window_pct", readonly=False)
    ai_waste_tiny_answer_tokens = fields.Integer(related="company_id.ai_waste_tiny_answer_tokens", readonly=False)
    ai_waste_wrong_model_saving_pct = fields.Integer(
        related="company_id.ai_waste_wrong_model_saving_pct", readonly=False
    )
    ai_waste_history_min_tokens = fields.Integer(related="company_id.ai_waste_history_min_tokens", readonly=False)
    ai_waste_cache_window_minutes = fields.Integer(related="company_id.ai_waste_cache_window_minutes", readonly=False)
    ai_response_cache = fields.Boolean(related="company_id.ai_response_cache", readonly=False)
    ai_response_cache_ttl_hours = fields.Integer(related="company_id.ai_response_cache_ttl_hours", readonly=False)
