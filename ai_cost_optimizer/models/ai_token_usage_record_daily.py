from odoo import fields, models
from odoo.tools import SQL

# What the API's top records read of a row (ai.cost.report `_top_records`).
TOP_COLUMNS = "res_model, res_id, cost_usd, call_count"


class AiTokenUsageRecordDaily(models.Model):
    """Per-day sums of the usage rows that concern an Odoo record, keyed by that record too.

    Kept apart from ai.token.usage.daily so that the record dimension, which has many values,
    does not multiply the rows the dashboard reads; it answers "cost per lead/ticket" (the API's top
    records and its filter on one record)."""

    _name = "ai.token.usage.record.daily"
    _inherit = "ai.token.usage.rollup.mixin"
    _description = "AI Usage per Record and Day"
    _order = "day desc, id desc"
    _rollup_extra_keys = [("res_id", "u.res_id", "res_id")]
    _rollup_required_fields = ("res_model", "res_id")
    _rollup_company_day_index = TOP_COLUMNS

    res_id = fields.Integer(string="Related Record", required=True, readonly=True)

    def init(self):
        super().init()
        # The API's top records read these columns only, for a period (the mixin's covering index) or for
        # one operation's (cost per module): answered from the index, not the rows. DDL in init(): covering
        # indexes (INCLUDE), which a field's index= cannot declare.
        self.env.cr.execute(SQL(
            "CREATE INDEX IF NOT EXISTS %s ON %s (company_id, operation, day) INCLUDE (%s)",
            SQL.identifier(f"{self._table}_operation_top_idx"), SQL.identifier(self._table), SQL(TOP_COLUMNS),
        ))
        # The API's filter on one record.
        self.env.cr.execute(SQL(
            "CREATE INDEX IF NOT EXISTS %s ON %s (res_id, day) INCLUDE (company_id, operation, res_model, cost_usd, "
            "call_count)", SQL.identifier(f"{self._table}_record_idx"), SQL.identifier(self._table),
        ))
