"""Calendar periods of the cost reports: a day, an ISO week (Monday first) or a month, its first and last
day both included (the analytics records, get_cost_breakdown).

Budgets run on the very same calendar periods, written once in core.budget.period_bounds, whose end is the
first day of the next period.
"""

from __future__ import annotations

from datetime import date, timedelta

from .budget import period_bounds

# A report's period type, as the analytics records name it, and the same period as budgets name it.
REPORT_PERIOD_TYPES = {"day": "daily", "week": "weekly", "month": "monthly"}


def report_period_bounds(period_type: str, day: date) -> tuple[date, date]:
    """The calendar period of type `period_type` ('day', 'week' or 'month') holding `day`:
    (first day, last day)."""
    if period_type not in REPORT_PERIOD_TYPES:
        raise ValueError(f"Unknown period type {period_type!r}: use day, week or month.")
    start, end = period_bounds(day, REPORT_PERIOD_TYPES[period_type])
    return start, end - timedelta(days=1)
