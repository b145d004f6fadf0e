from odoo import fields, models


class AiTokenUsageDaily(models.Model):
    """Per-day sums of the usage ledger by company, provider, model, user, operation, related model,
    status, cache hit and whether the request reached the provider: what the dashboard, the JSON API and the
    reconciliation with the providers' bills (ai.billing.account `_ledger_days`) read.

    The model and provider_called keys, and the cache tokens, are the reconciliation's: a provider bills per
    UTC day and model, the attempts that reached it (failed ones included, never the response cache's
    answers), and prices cache reads and writes apart. They barely multiply the rows: a provider calls one
    model, and only failed calls split on provider_called."""

    _name = "ai.token.usage.daily"
    _inherit = "ai.token.usage.rollup.mixin"
    _description = "AI Usage per Day"
    _order = "day desc, id desc"
    _rollup_extra_keys = [
        ("model", "u.model", "COALESCE(model, '')"),
        ("provider_called", "COALESCE(u.provider_called, FALSE)", "provider_called"),
    ]
    _rollup_extra_measures = [
        ("cache_read_tokens", "SUM(COALESCE(u.cache_read_tokens, 0))"),
        ("cache_write_tokens", "SUM(COALESCE(u.cache_write_tokens, 0))"),
        ("cache_write_1h_tokens", "SUM(COALESCE(u.cache_write_1h_tokens, 0))"),
    ]

    # Keys
    model = fields.Char(readonly=True)
    provider_called = fields.Boolean(
        string="Reached the Provider", readonly=True,
        help="The requests that reached the provider, answered or failed: what it may bill.",
    )

    # Measures: parts of input_tokens, as on the usage rows. default=0: the rows summed before these measures
    # existed get 0, to which the upserts add.
    cache_read_tokens = fields.Integer(readonly=True, default=0)
    cache_write_tokens = fields.Integer(readonly=True, default=0)
    cache_write_1h_tokens = fields.Integer(
        string="1-hour Cache Write Tokens", readonly=True, default=0,
        help="The part of the cache writes kept for an hour (Anthropic), billed at its own rate.",
    )
