from odoo import api, fields, models
from odoo.addons.ai_cost_optimizer.models.ai_service_provider_price import PRICE_DIGITS


class AiCostUnallocated(models.Model):
    """The spend of a posted day that neither its record nor any rule allocated: kept, per day, provider,
    operation, user and related model, so that it is shown rather than dropped. Written by the posting
    and replaced with the day's items when the day is posted again."""

    _name = "ai.cost.unallocated"
    _description = "Unallocated AI Spend"
    _inherit = ["ai.cost.code.label.mixin"]
    _order = "day desc, cost_usd desc, id"
    _code_label_fields = ("operation",)

    # Key
    day = fields.Date(required=True, index=True, readonly=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, ondelete="cascade", index=True)
    provider_id = fields.Many2one("ai.service.provider", readonly=True, ondelete="set null")
    operation = fields.Char(string="Operation Code", readonly=True)
    operation_label = fields.Char(string="Operation", compute="_compute_code_labels")
    user_id = fields.Many2one("res.users", readonly=True, ondelete="set null")
    res_model = fields.Char(string="Related Model Code", readonly=True)
    res_model_name = fields.Char(string="Related Model", compute="_compute_res_model_name")

    # Measures
    call_count = fields.Integer(string="Calls", readonly=True)
    cost_usd = fields.Float(digits=PRICE_DIGITS, string="Cost (USD)", readonly=True)

    @api.depends("res_model")
    def _compute_res_model_name(self):
        # The model as users know it (Contact, Lead); its technical name when that model is not installed.
        found = self.env["ir.model"].sudo().search_fetch([("model", "in", self.mapped("res_model"))], ["model", "name"])
        names = {model.model: model.name for model in found}
        for row in self:
            row.res_model_name = names.get(row.res_model, row.res_model)

    @api.model
    def _total_usd(self, date_from, date_to, companies):
        """The unallocated spend of the posted days from `date_from` to `date_to` (inclusive) of `companies`:
        the figure every screen shows."""
        [(total,)] = self._read_group(
            [("day", ">=", date_from), ("day", "<=", date_to), ("company_id", "in", companies.ids)],
            aggregates=["cost_usd:sum"],
        )
        return total or 0.0
