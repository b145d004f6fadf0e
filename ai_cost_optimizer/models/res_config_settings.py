from odoo import fields, models

from .ai_service_provider_price import PRICE_DIGITS


class ResConfigSettings(models.TransientModel):
    """Settings > AI Cost: the company's fields of res_company.py, in the same groups."""

    _inherit = "res.config.settings"

    # Providers and routing
    ai_default_provider_id = fields.Many2one(related="company_id.ai_default_provider_id", readonly=False)
    ai_default_mode = fields.Selection(related="company_id.ai_default_mode", readonly=False)
    ai_enable_cost_optimization = fields.Boolean(related="company_id.ai_enable_cost_optimization", readonly=False)
    ai_auto_switch_provider = fields.Boolean(related="company_id.ai_auto_switch_provider", readonly=False)
    ai_fallback_on_failure = fields.Boolean(related="company_id.ai_fallback_on_failure", readonly=False)

    # Daily cost alerts (cost monitor)
    ai_alert_daily_spend = fields.Float(related="company_id.ai_alert_daily_spend", readonly=False, digits=PRICE_DIGITS)
    ai_alert_cost_per_record = fields.Float(
        related="company_id.ai_alert_cost_per_record", readonly=False, digits=PRICE_DIGITS
    )
    ai_alert_cache_hit_floor = fields.Float(related="company_id.ai_alert_cache_hit_floor", readonly=False)

    # Spend anomalies
    ai_anomaly_check = fields.Boolean(related="company_id.ai_anomaly_check", readonly=False)
    ai_anomaly_ratio = fields.Float(related="company_id.ai_anomaly_ratio", readonly=False, digits=(16, 1))
    ai_anomaly_min_spend = fields.Float(related="company_id.ai_anomaly_min_spend", readonly=False, digits=PRICE_DIGITS)

    # Waste rules
    ai_enable_waste_detection = fields.Boolean(related="company_id.ai_enable_waste_detection", readonly=False)
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

    # Response cache
    ai_response_cache = fields.Boolean(related="company_id.ai_response_cache", readonly=False)
    ai_response_cache_ttl_hours = fields.Integer(related="company_id.ai_response_cache_ttl_hours", readonly=False)

    # Prompt retention
    ai_prompt_retention = fields.Selection(related="company_id.ai_prompt_retention", readonly=False)
    ai_prompt_retention_days = fields.Integer(related="company_id.ai_prompt_retention_days", readonly=False)
