"""Calendar periods of the cost reports: first and last day included, the same periods as budgets."""

from datetime import date, timedelta

import pytest

from ai_cost_optimizer.core import budget
from ai_cost_optimizer.core.periods import (
    NAMED_PERIODS,
    REPORT_PERIOD_TYPES,
    named_period_bounds,
    previous_period_bounds,
    report_period_bounds,
)


def test_day_week_and_month():
    assert report_period_bounds("day", date(2024, 2, 29)) == (date(2024, 2, 29), date(2024, 2, 29))
    # Thursday 2025-03-13: the ISO week runs Monday 10th to Sunday 16th.
    assert report_period_bounds("week", date(2025, 3, 13)) == (date(2025, 3, 10), date(2025, 3, 16))
    assert report_period_bounds("week", date(2025, 3, 10)) == (date(2025, 3, 10), date(2025, 3, 16))
    assert report_period_bounds("week", date(2025, 3, 16)) == (date(2025, 3, 10), date(2025, 3, 16))
    # A week across the new year.
    assert report_period_bounds("week", date(2025, 1, 1)) == (date(2024, 12, 30), date(2025, 1, 5))
    assert report_period_bounds("month", date(2024, 2, 10)) == (date(2024, 2, 1), date(2024, 2, 29))
    assert report_period_bounds("month", date(2023, 2, 28)) == (date(2023, 2, 1), date(2023, 2, 28))
    assert report_period_bounds("month", date(2024, 12, 31)) == (date(2024, 12, 1), date(2024, 12, 31))


@pytest.mark.parametrize("period_type", sorted(REPORT_PERIOD_TYPES))
def test_same_periods_as_budgets(period_type):
    """Every day of two years falls in the report period that the budget period of the same kind spans."""
    day = date(2023, 1, 1)
    while day < date(2025, 1, 1):
        start, last = report_period_bounds(period_type, day)
        assert start <= day <= last
        assert budget.period_bounds(day, REPORT_PERIOD_TYPES[period_type]) == (start, last + timedelta(days=1))
        day += timedelta(days=1)


def test_unknown_period_type():
    with pytest.raises(ValueError, match="use day, week or month"):
        report_period_bounds("daily", date(2025, 1, 1))


def test_named_periods_count_today_and_whole_days():
    """"Last 30 days" is today and the 29 days before it: 30 days, not 31."""
    today = date(2025, 3, 15)
    for period, days in (("7d", 7), ("30d", 30), ("90d", 90)):
        start, end = named_period_bounds(period, today)
        assert (end, (end - start).days + 1) == (today, days)
    assert named_period_bounds("this_month", today) == (date(2025, 3, 1), today)
    assert named_period_bounds("last_month", today) == (date(2025, 2, 1), date(2025, 2, 28))
    assert named_period_bounds("last_month", date(2025, 1, 31)) == (date(2024, 12, 1), date(2024, 12, 31))
    assert set(NAMED_PERIODS) == {"7d", "30d", "90d", "this_month", "last_month"}
    with pytest.raises(ValueError, match="Unknown period"):
        named_period_bounds("1y", today)


def test_previous_period_is_the_one_before():
    today = date(2026, 3, 31)
    # As many days right before, the month before, and last month's same days so far.
    assert previous_period_bounds("7d", today) == (date(2026, 3, 18), date(2026, 3, 24))
    assert previous_period_bounds("30d", today) == (date(2026, 1, 31), date(2026, 3, 1))
    assert previous_period_bounds("last_month", today) == (date(2026, 1, 1), date(2026, 1, 31))
    assert previous_period_bounds("this_month", today) == (date(2026, 2, 1), date(2026, 2, 28))
    for period in NAMED_PERIODS:
        start, end = named_period_bounds(period, today)
        before_start, before_end = previous_period_bounds(period, today)
        assert before_end < start and before_start <= before_end
