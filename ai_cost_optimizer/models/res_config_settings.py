from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    ai_default_provider_id = fields.Many2one(related="company_id.ai_default_provider_id", readonly=False)
    ai_prompt_retention = fields.Selection(related="company_id.ai_prompt_retention", readonly=False)
    ai_prompt_retention_days = fields.Integer(related="company_id.ai_prompt_retention_days", readonly=False)
