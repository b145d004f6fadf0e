from odoo import models


class AiTokenUsageDaily(models.Model):
    """Per-day sums of the usage ledger by company, provider, user, operation, related model,
    status and cache hit: what the dashboard and the JSON API read."""

    _name = "ai.token.usage.daily"
    _inherit = "ai.token.usage.rollup.mixin"
    _description = "AI Usage per Day"
    _order = "day desc, id desc"
