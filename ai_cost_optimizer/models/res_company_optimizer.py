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
    ai_fallback_on_failure = fields.Boolean(
        string="Fall Back When a Provider Fails",
        default=True,
        help="When a provider still fails after its retries (outage, timeout, rate limit), send the call to the "
        "next recommended provider that qualifies, in passthrough and smart router mode alike. A request the "
        "provider rejects as invalid is never sent elsewhere. Off: the call fails with the provider's error.",
    )
