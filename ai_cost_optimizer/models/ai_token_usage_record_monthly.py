import calendar
from datetime import date

from odoo import api, fields, models

from .ai_token_usage_record_daily import TOP_COLUMNS
from .ai_token_usage_rollup_mixin import ROLLUP_KEYS


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


class AiTokenUsageRecordMonthly(models.Model):
    """Per-month sums of the usage rows that concern an Odoo record, keyed by the record only.

    It answers the API's "top records by cost" of the months that a period covers (ai.cost.report
    `_record_parts`): ai.token.usage.record.daily also keys its rows by day, provider, user, operation,
    status and cache hit, which multiplies them (a call session about one lead spreads over a dozen rows
    per day), and summing every record of 90 days from it misses the 300 ms target. Provider, user,
    operation, status and cache_hit stay empty here: queries filtering on them read the per-day rollup."""

    _name = "ai.token.usage.record.monthly"
    _inherit = "ai.token.usage.rollup.mixin"
    _description = "AI Usage per Record and Month"
    _order = "day desc, id desc"
    _rollup_required_fields = ("res_model", "res_id")
    # The top records of the months a period covers, read from the index alone.
    _rollup_company_day_index = TOP_COLUMNS

    day = fields.Date(string="Month")
    # Not a key here: the month rollup leaves it empty.
    status = fields.Selection(required=False)
    res_id = fields.Integer(string="Related Record", required=True, readonly=True)

    @classmethod
    def _rollup_keys(cls):
        keys = {column: (column, expr, index) for column, expr, index in ROLLUP_KEYS}
        # `day` holds the first day (UTC) of the month.
        return [("day", "date_trunc('month', u.create_date)::date", "day"), keys["company_id"], keys["res_model"],
                ("res_id", "u.res_id", "res_id")]

    @api.model
    def _rebuild(self, date_from=None):
        """As the mixin's, from the start of `date_from`'s month: a month is rebuilt whole or not at all."""
        return super()._rebuild(date_from and month_start(fields.Date.to_date(date_from)))
