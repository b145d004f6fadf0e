from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    ai_default_mode = fields.Selection(
        [
            ("passthrough", "Passthrough: use the caller's provider"),
            ("smart_router", "Smart router: the optimizer picks"),
        ],
        string="Default AI Mode",
        default="passthrough",
        required=True,
        help="The mode of calls that name none.",
    )
    ai_enable_waste_detection = fields.Boolean(
        string="Waste Detection", default=True, help="Switch the waste rules off for every provider of the company."
    )
    ai_enable_cost_optimization = fields.Boolean(
        string="Cost Optimization (all providers)",
        help="Optimize the calls of every provider of the company, whatever the provider's own flag.",
    )
    ai_auto_switch_provider = fields.Boolean(
        string="Auto-switch Providers (all providers)",
        help="Send calls to the recommended provider when it is cheaper, whatever the provider's own flag.",
    )
