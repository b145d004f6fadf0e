from odoo import api, fields, models, tools

from ..core.pricing import ModelPrice

PRICE_DIGITS = (16, 8)
PRICE_FIELDS = ("input_price", "output_price", "cache_read_price", "cache_write_price")


class AiServiceProviderPrice(models.Model):
    _name = "ai.service.provider.price"
    _inherit = ["ai.cost.gateway.cache.mixin"]
    _description = "AI Provider Price Version"
    _order = "provider_id, date_start desc, id desc"
    # See _versions and _core_price.
    _gateway_cache_fields = ("provider_id", "date_start", "source", "model", "price_provider", *PRICE_FIELDS)

    provider_id = fields.Many2one("ai.service.provider", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="provider_id.company_id", store=True)
    date_start = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    source = fields.Selection(
        [("genai_prices", "genai-prices"), ("manual", "Manual override"), ("free", "Free")],
        required=True, default="manual",
    )
    source_detail = fields.Char(help="Package version or the matched model id the prices came from.")
    # What genai-prices matches to price each call (see core.pricing.call_cost)
    model = fields.Char(help="The provider's model id these prices were matched for.")
    price_provider = fields.Char(string="Price List", help="genai-prices' price list the model was matched in.")

    # Prices in USD per million tokens
    input_price = fields.Float(digits=PRICE_DIGITS)
    output_price = fields.Float(digits=PRICE_DIGITS)
    cache_read_price = fields.Float(digits=PRICE_DIGITS)
    cache_write_price = fields.Float(digits=PRICE_DIGITS)

    usage_count = fields.Integer(compute="_compute_usage_count")

    def _compute_usage_count(self):
        counts = dict(
            self.env["ai.token.usage"]._read_group(
                [("price_id", "in", self.ids)], ["price_id"], ["__count"]
            )
        )
        for price in self:
            price.usage_count = counts.get(price, 0)

    def write(self, vals):
        # Rates typed over genai-prices' make a manual price: its calls are then priced at these rates.
        if any(name in vals for name in PRICE_FIELDS) and "source" not in vals:
            vals = {**vals, "source": "manual"}
        return super().write(vals)

    @api.depends("provider_id", "date_start", "source")
    def _compute_display_name(self):
        for price in self:
            price.display_name = f"{price.provider_id.name} – {price.date_start} ({price.source})"

    def action_recompute_usage_cost(self):
        """Re-price the usage rows that used these price versions, after a correction."""
        usages = self.env["ai.token.usage"].search([("price_id", "in", self.ids)])
        usages._recompute_cost()
        return True

    @api.model
    def _versions(self, provider_id):
        """((date_start, id), ...) of a provider's price versions, newest first. Every gateway call looks
        its price up and versions change seldom: cached, and cleared in every worker when one changes."""
        return self._versions_cached(provider_id)

    @tools.ormcache("provider_id")
    def _versions_cached(self, provider_id):
        prices = self.sudo().search_fetch([("provider_id", "=", provider_id)], ["date_start"])
        return tuple((price.date_start, price.id) for price in prices)

    def _as_core_price(self):
        """The price as a core.pricing.ModelPrice, for cost computation; cached, as every call reads it."""
        self.ensure_one()
        return self._core_price_cached(self.id)

    @tools.ormcache("price_id")
    def _core_price_cached(self, price_id):
        price = self.sudo().browse(price_id)
        model = price.model or price.provider_id.model or ""
        return ModelPrice(
            input_per_mtok=price.input_price,
            output_per_mtok=price.output_price,
            cache_read_per_mtok=price.cache_read_price or None,
            cache_write_per_mtok=price.cache_write_price or None,
            source=price.source,
            model_ref=model,
            model=model,
            price_provider=price.price_provider or None,
        )
