from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    ai_default_mode = fields.Selection(related="company_id.ai_default_mode", readonly=False)
    ai_enable_waste_detection = fields.Boolean(related="company_id.ai_enable_waste_detection", readonly=False)
    ai_enable_cost_optimization = fields.Boolean(related="company_id.ai_enable_cost_optimization", readonly=False)
    ai_auto_switch_provider = fields.Boolean(related="company_id.ai_auto_switch_provider", readonly=False)
    ai_fallback_on_failure = fields.Boolean(related="company_id.ai_fallback_on_failure", readonly=False)
