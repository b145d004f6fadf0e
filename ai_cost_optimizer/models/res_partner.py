from odoo import models


class ResPartner(models.Model):
    _inherit = "res.partner"

    def write(self, vals):
        result = super().write(vals)
        if "tz" in vals and self.env["res.company"].sudo().search_count([("partner_id", "in", self.ids)], limit=1):
            # A company's timezone sets its budgets' periods: it is cached with its gateway settings.
            self.env["ai.cost.gateway.cache.mixin"]._clear_gateway_cache()
        return result
