from odoo import fields, models
from odoo.tools import SQL
from odoo.tools.sql import drop_index

# The usage rows that concern an Odoo record: what the per-record rollups cover.
RECORD_ROWS_SQL = "u.res_model IS NOT NULL AND u.res_id IS NOT NULL AND u.res_id != 0"
# What the API's top records read of a per-record rollup row.
TOP_COLUMNS = "res_model, res_id, cost_usd, call_count"


def create_record_index(cr, table, columns):
    """The index of the rows of given records, covering `columns` (those the API's top records read of
    them and filter them on, see cost_api `_pruned_top`)."""
    cr.execute(SQL(
        "CREATE INDEX IF NOT EXISTS %s ON %s (res_id, day) INCLUDE (%s)",
        SQL.identifier(f"{table}_record_idx"), SQL.identifier(table), SQL(columns),
    ))
    # It supersedes the plain res_id index of earlier versions (Odoo keeps a dropped index).
    drop_index(cr, f"{table}__res_id_index", table)


def covers_records(rows):
    """The Python twin of RECORD_ROWS_SQL (`_rollup_covers`): whether any of `rows` (usage records or
    values) concerns a record; it may say yes too often, as the SQL filters again."""
    return any(row["res_id"] for row in rows)


class AiTokenUsageRecordDaily(models.Model):
    """Per-day sums of the usage rows that concern an Odoo record, keyed by that record too.

    Kept apart from ai.token.usage.daily so that the record dimension, which has many values,
    does not multiply the rows the dashboard reads; it answers "cost per lead/ticket"."""

    _name = "ai.token.usage.record.daily"
    _inherit = "ai.token.usage.rollup.mixin"
    _description = "AI Usage per Record and Day"
    _order = "day desc, id desc"
    _rollup_extra_keys = [("res_id", "u.res_id", "res_id")]
    _rollup_where = RECORD_ROWS_SQL
    _rollup_company_day_index = TOP_COLUMNS

    res_id = fields.Integer(string="Related Record", required=True, readonly=True)

    def _rollup_covers(self, rows):
        return covers_records(rows)

    def init(self):
        super().init()
        # The API's top records read these columns only, for a period (the days of the months it cuts: the
        # mixin's covering index) or for one operation's (cost per module): answered from the index, not the rows.
        self.env.cr.execute(SQL(
            "CREATE INDEX IF NOT EXISTS %s ON %s (company_id, operation, day) INCLUDE (%s)",
            SQL.identifier(f"{self._table}_operation_top_idx"), SQL.identifier(self._table), SQL(TOP_COLUMNS),
        ))
        # The API's filter on one record, and its top records of one operation.
        create_record_index(self.env.cr, self._table, "company_id, operation, res_model, cost_usd, call_count")
