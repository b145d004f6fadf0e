import calendar
from datetime import date

from odoo import api, fields, models
from odoo.tools import SQL

from .ai_token_usage_record_daily import RECORD_ROWS_SQL, covers_records, create_record_index
from .ai_token_usage_rollup_mixin import ROLLUP_KEYS

# `day` holds the first day (UTC) of the month.
MONTH_SQL = "date_trunc('month', u.create_date)::date"


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


class AiTokenUsageRecordMonthly(models.Model):
    """Per-month sums of the usage rows that concern an Odoo record, keyed by the record only.

    It answers the API's "top records by cost" without filters: ai.token.usage.record.daily also keys
    its rows by provider, user, operation, status and cache hit, which multiplies them (a call session
    about one lead spreads over a dozen rows per day). Provider, user, operation, status and cache_hit
    stay empty here: queries filtering on the operation read ai.token.usage.record.operation.monthly, those
    filtering on the others the daily per-record rollup."""

    _name = "ai.token.usage.record.monthly"
    _inherit = "ai.token.usage.rollup.mixin"
    _description = "AI Usage per Record and Month"
    _order = "day desc, id desc"
    _rollup_where = RECORD_ROWS_SQL
    _rollup_period_sql = MONTH_SQL  # the first day of the period a row sums, from the usage row `u`
    _rollup_record_keys = ("company_id", "res_model")  # keys of ROLLUP_KEYS kept, besides the period and res_id
    # The columns of the index of given records' rows: the API sums the months of its candidate records.
    _rollup_record_index = "company_id, res_model, cost_usd, call_count"
    # The costliest-records index (see `init`) also serves what the (company_id, day) one would: the sums of
    # the months a period covers, from the index alone.
    _rollup_company_day_index = False

    day = fields.Date(string="Month")
    # Not a key here: the month rollup leaves it empty.
    status = fields.Selection(required=False)
    res_id = fields.Integer(string="Related Record", required=True, readonly=True)

    @classmethod
    def _rollup_keys(cls):
        keys = {column: (column, expr, index) for column, expr, index in ROLLUP_KEYS}
        return [
            ("day", cls._rollup_period_sql, "day"), *(keys[column] for column in cls._rollup_record_keys),
            ("res_id", "u.res_id", "res_id"),
        ]

    def _rollup_covers(self, rows):
        return covers_records(rows)

    def init(self):
        super().init()
        if self._rollup_record_index:
            create_record_index(self.env.cr, self._table, self._rollup_record_index)
        # The costliest records of a period, read in order from the index, with the columns the API reads.
        key = ", ".join(column for column in self._rollup_record_keys if column != "res_model")
        self.env.cr.execute(SQL(
            "CREATE INDEX IF NOT EXISTS %s ON %s (%s, day, cost_usd DESC) INCLUDE (res_model, res_id, call_count)",
            SQL.identifier(f"{self._table}_costliest_idx"), SQL.identifier(self._table), SQL(key),
        ))
        self.env.cr.execute(SQL("SELECT 1 FROM %s LIMIT 1", SQL.identifier(self._table)))
        if not self.env.cr.rowcount:  # new (or unused) rollup: fill it from the ledger
            self._rebuild()

    @api.model
    def _period_start(self, day: date) -> date:
        """The first day of the period of `day`, as `day` holds it."""
        return month_start(day)

    @api.model
    def _rebuild(self, date_from=None):
        """As the mixin's, from the start of `date_from`'s period: a period is rebuilt whole or not at all."""
        return super()._rebuild(date_from and self._period_start(fields.Date.to_date(date_from)))
