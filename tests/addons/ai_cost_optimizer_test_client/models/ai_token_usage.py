from odoo import api, fields, models


class AiTokenUsage(models.Model):
    """What another module adds to the gateway's usage rows: a stored computed field, a field with a default,
    and a create() override. The gateway writes its rows through create(), so all three apply to them."""

    _inherit = "ai.token.usage"

    client_label = fields.Char(compute="_compute_client_label", store=True)
    client_channel = fields.Char(default="odoo")
    client_created = fields.Boolean(readonly=True)

    @api.depends("operation", "res_model")
    def _compute_client_label(self):
        for usage in self:
            usage.client_label = f"{usage.operation or 'call'} about {usage.res_model or 'nothing'}"

    @api.model_create_multi
    def create(self, vals_list):
        return super().create([{**vals, "client_created": True} for vals in vals_list])
