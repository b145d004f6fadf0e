from datetime import date

from odoo import api, fields, models
from odoo.tools import SQL

# `day` holds the first day (UTC) of the year.
YEAR_SQL = "date_trunc('year', u.create_date)::date"


def year_start(day: date) -> date:
    return day.replace(month=1, day=1)


class AiTokenUsageRecordYearly(models.Model):
    """Per-year sums of the usage rows that concern an Odoo record, keyed by the record only.

    A record costs at most its year's sum in any period of that year (costs are never negative): the API
    takes the costliest records of a period from the costliest of its year, and sums only those (see
    cost_api `_pruned_top`), instead of summing every record of the period."""

    _name = "ai.token.usage.record.yearly"
    _inherit = "ai.token.usage.record.monthly"
    _description = "AI Usage per Record and Year"
    _rollup_period_sql = YEAR_SQL
    # Read in cost order, by the index below, which also serves what the (company_id, day) one would.
    _rollup_record_index = _rollup_top_columns = None
    _rollup_company_day_index = False

    day = fields.Date(string="Year")

    def init(self):
        super().init()
        # The costliest records of a year, read in order from the index (with the columns the API reads).
        key = ", ".join(column for column in self._rollup_record_keys if column != "res_model")
        self.env.cr.execute(SQL(
            "CREATE INDEX IF NOT EXISTS %s ON %s (%s, day, cost_usd DESC) INCLUDE (res_model, res_id)",
            SQL.identifier(f"{self._table}_costliest_idx"), SQL.identifier(self._table), SQL(key),
        ))

    @api.model
    def _period_start(self, day: date) -> date:
        return year_start(day)
