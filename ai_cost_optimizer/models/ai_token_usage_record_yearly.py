from datetime import date

from odoo import api, fields, models

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
    # Read in cost order only, by the monthly rollup's costliest-records index.
    _rollup_record_index = None

    day = fields.Date(string="Year")

    @api.model
    def _period_start(self, day: date) -> date:
        return year_start(day)
