from odoo import fields, models

from .ai_service_provider_price import PRICE_DIGITS


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    ai_alert_daily_spend = fields.Float(related="company_id.ai_alert_daily_spend", readonly=False, digits=PRICE_DIGITS)
    ai_alert_cost_per_record = fields.Float(
        related="company_id.ai_alert_cost_per_record", readonly=False, digits=PRICE_DIGITS
    )
    ai_alert_cache_hit_floor = fields.Float(related="company_id.ai_alert_cache_hit_floor", readonly=False)
