from odoo import fields, models


class AiTokenUsageRecordDaily(models.Model):
    """Per-day sums of the usage rows that concern an Odoo record, keyed by that record too.

    Kept apart from ai.token.usage.daily so that the record dimension, which has many values,
    does not multiply the rows the dashboard reads; it answers "cost per lead/ticket"."""

    _name = "ai.token.usage.record.daily"
    _inherit = "ai.token.usage.rollup.mixin"
    _description = "AI Usage per Record and Day"
    _order = "day desc, id desc"
    _rollup_extra_keys = [("res_id", "u.res_id", "res_id")]
    _rollup_where = "u.res_model IS NOT NULL AND u.res_id IS NOT NULL AND u.res_id != 0"

    res_id = fields.Integer(string="Related Record", required=True, readonly=True)
