"""Calendar periods of the cost reports: a day, an ISO week (Monday first) or a month, its first and last
day both included (the analytics records, get_cost_breakdown); and the named periods that the dashboard, the
Reporting menus' filters, the Benchmarks pivot and the JSON API offer ("Last 30 days", "This month", ...).

Budgets run on the very same calendar periods, written once in core.budget.period_bounds, whose end is the
first day of the next period.
"""

from __future__ import annotations

from datetime import date, timedelta

from .budget import period_bounds

# The named periods, by key: their first and last day are `named_period_bounds`'s. A search view's filter of
# the same name selects the same days (a test evaluates each filter's domain against this function).
NAMED_PERIODS = {
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "this_month": "This month",
    "last_month": "Last month",
}

# A report's period type, as the analytics records name it, and the same period as budgets name it.
REPORT_PERIOD_TYPES = {"day": "daily", "week": "weekly", "month": "monthly"}


def report_period_bounds(period_type: str, day: date) -> tuple[date, date]:
    """The calendar period of type `period_type` ('day', 'week' or 'month') holding `day`:
    (first day, last day)."""
    if period_type not in REPORT_PERIOD_TYPES:
        raise ValueError(f"Unknown period type {period_type!r}: use day, week or month.")
    start, end = period_bounds(day, REPORT_PERIOD_TYPES[period_type])
    return start, end - timedelta(days=1)


def named_period_bounds(period: str, today: date) -> tuple[date, date]:
    """(first day, last day), both included, of the named period `period` (a key of NAMED_PERIODS) seen on
    `today`, the user's day (Odoo's context_today): "Last 30 days" is today and the 29 days before it, "This
    month" the 1st up to today, "Last month" the whole previous calendar month."""
    if period in ("7d", "30d", "90d"):
        return today - timedelta(days=int(period[:-1]) - 1), today
    first_of_month = today.replace(day=1)
    if period == "this_month":
        return first_of_month, today
    if period == "last_month":
        last = first_of_month - timedelta(days=1)
        return last.replace(day=1), last
    raise ValueError(f"Unknown period {period!r}: use one of {', '.join(NAMED_PERIODS)}.")


def previous_period_bounds(period: str, today: date) -> tuple[date, date]:
    """(first day, last day) of what the named period `period` is compared with: "This month" with the same
    days of last month (its days so far), "Last month" with the month before, "Last N days" with the N days
    before them."""
    start, end = named_period_bounds(period, today)
    if period == "this_month":
        return same_days_last_month(today)
    if period == "last_month":
        return named_period_bounds("last_month", start)
    return start - timedelta(days=(end - start).days + 1), start - timedelta(days=1)


def same_days_last_month(today: date) -> tuple[date, date]:
    """(first day, last day) of last month's days matching this month's so far: on the 3rd, days 1 to 3
    of last month; on the 31st after a 30-day month, all of it."""
    last_of_previous = today.replace(day=1) - timedelta(days=1)
    return last_of_previous.replace(day=1), last_of_previous.replace(day=min(today.day, last_of_previous.day))
