from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    ai_enable_cost_optimization = fields.Boolean(
        string="Cost Optimization (all providers)",
        help="Optimize the calls of every provider of the company, whatever the provider's own flag.",
    )
    ai_auto_switch_provider = fields.Boolean(
        string="Auto-switch Providers (all providers)",
        help="Send calls to the recommended provider when it is cheaper, whatever the provider's own flag.",
    )
