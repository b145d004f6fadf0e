"""Budget arithmetic: calendar periods in a non-UTC timezone, thresholds, actions, forecast."""

from datetime import date, datetime

import pytest

from ai_cost_optimizer.core import budget

TZ = "Pacific/Auckland"  # UTC+13 in January: the local day runs well ahead of UTC


def test_month_starts_at_local_midnight_of_the_first():
    # 2025-01-31 11:30 UTC is already Feb 1st, 00:30 in Auckland: February's budget applies.
    assert budget.current_period(datetime(2025, 1, 31, 11, 30), TZ, "monthly") == (date(2025, 2, 1), date(2025, 3, 1))
    # Ten minutes before local midnight it is still January.
    assert budget.current_period(datetime(2025, 1, 31, 10, 50), TZ, "monthly") == (
        date(2025, 1, 1),
        date(2025, 2, 1),
    )
    # The same instant in UTC is January.
    assert budget.current_period(datetime(2025, 1, 31, 11, 30), "UTC", "monthly")[0] == date(2025, 1, 1)


def test_week_starts_on_local_monday():
    # Sunday 2025-03-09 12:00 UTC is Monday 2025-03-10 01:00 in Auckland (UTC+13).
    assert budget.current_period(datetime(2025, 3, 9, 12, 0), TZ, "weekly") == (date(2025, 3, 10), date(2025, 3, 17))
    assert budget.current_period(datetime(2025, 3, 9, 10, 0), TZ, "weekly") == (date(2025, 3, 3), date(2025, 3, 10))
    # New York is behind UTC: Monday 03:00 UTC is still Sunday evening there.
    assert budget.current_period(datetime(2025, 3, 10, 3, 0), "America/New_York", "weekly")[0] == date(2025, 3, 3)


def test_daily_period_and_month_ends():
    assert budget.period_bounds(date(2024, 2, 29), "daily") == (date(2024, 2, 29), date(2024, 3, 1))
    assert budget.period_bounds(date(2024, 12, 31), "monthly") == (date(2024, 12, 1), date(2025, 1, 1))
    assert budget.period_bounds(date(2024, 2, 10), "monthly")[1] == date(2024, 3, 1)
    assert budget.days_in_month(date(2024, 2, 10)) == 29


def test_unknown_period_type():
    with pytest.raises(ValueError, match="Unknown period type 'yearly'"):
        budget.period_bounds(date(2025, 1, 1), "yearly")


def test_utc_range_of_a_local_period():
    # Auckland midnight of Feb 1st (UTC+13) is Jan 31st 11:00 UTC.
    start, end = budget.utc_range(date(2025, 2, 1), date(2025, 3, 1), TZ)
    assert start == datetime(2025, 1, 31, 11, 0)
    assert end == datetime(2025, 2, 28, 11, 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("50, 80,100", [50.0, 80.0, 100.0]), ([75, "90"], [75.0, 90.0]), ("", []), (None, []), ("1000", [1000.0])],
)
def test_parse_thresholds(value, expected):
    assert budget.parse_thresholds(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0, 50", "outside 1-1000"),
        ("50, 1001", "outside 1-1000"),
        ("80, 50", "strictly increasing"),
        ("50, 50", "strictly increasing"),
        ("fifty", "not a percentage"),
        ("50,,80", "not a percentage"),
        ([True], "not a percentage"),
    ],
)
def test_bad_thresholds(value, message):
    with pytest.raises(ValueError, match=message):
        budget.parse_thresholds(value)


def test_format_thresholds_round_trips():
    assert budget.format_thresholds(budget.parse_thresholds("50,80.5, 100")) == "50, 80.5, 100"


def test_evaluate_actions():
    kwargs = {"amount": 10.0, "alert_thresholds": [50, 80], "auto_switch_at": 90, "block_at": 100}
    assert budget.evaluate(1.0, 1.0, **kwargs) == "ok"
    assert budget.evaluate(4.0, 1.0, **kwargs) == "warning"
    assert budget.evaluate(8.5, 0.5, **kwargs) == "switched"
    # 9.5 committed + 0.6 estimated would pass the $10 block line.
    assert budget.evaluate(9.5, 0.6, **kwargs) == "blocked"
    assert budget.evaluate(9.5, 0.5, **kwargs) == "switched"
    # No block threshold: never blocked, even far above the amount.
    assert budget.evaluate(50.0, 1.0, amount=10.0, alert_thresholds=[50]) == "warning"
    with pytest.raises(ValueError):
        budget.evaluate(0, 1, amount=0)


def test_strictest_status_wins():
    assert budget.strictest(["ok", "blocked", "warning"]) == "blocked"
    assert budget.strictest(["warning", "switched"]) == "switched"
    assert budget.strictest([]) == "ok"


def test_crossed_thresholds_once():
    assert budget.crossed_thresholds([50, 80, 100], 0.0, 85) == [50, 80]
    assert budget.crossed_thresholds([50, 80, 100], 80, 95) == []
    assert budget.crossed_thresholds([50, 80, 100], 80, 100) == [100]


def test_forecast_weights_recent_days():
    # Weights 1, 2, 3: rate = (1*1 + 2*2 + 3*3) / 6 = 14/6; 7 remaining days.
    assert budget.forecast_spend([1.0, 2.0, 3.0], 10) == pytest.approx(6.0 + 14 / 6 * 7)
    # A flat series forecasts its plain rate.
    assert budget.forecast_spend([2.0] * 5, 30) == pytest.approx(60.0)
    # An accelerating series forecasts above the plain average.
    assert budget.forecast_spend([0.0, 0.0, 3.0], 30) > 3.0 / 3 * 30
    assert budget.forecast_spend([], 30) == 0.0
    # A finished period forecasts what it spent.
    assert budget.forecast_spend([1.0, 1.0], 2) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        budget.forecast_spend([1.0, 1.0], 1)


def test_cost_alerts():
    alerts = budget.cost_alerts(
        12.5, 10.0, {"crm.lead": (3.0, 10), "helpdesk.ticket": (0.2, 10)}, 0.1, 2, 40, 25.0
    )
    assert alerts == {
        "daily_spend": "AI spend today is $12.50, above the daily limit of $10.00.",
        "cost_per_record": "Average AI cost per record today is above $0.1000 for: crm.lead $0.3000.",
        "cache_hit_rate": "Cache hit rate today is 5.0% (2 of 40 calls), below the floor of 25%.",
    }
    # Under the limits, limits switched off (0), or too few calls to judge the cache: nothing.
    assert budget.cost_alerts(9.0, 10.0, {"crm.lead": (0.5, 10)}, 0.1, 30, 40, 25.0) == {}
    assert budget.cost_alerts(99.0, 0, {"crm.lead": (99.0, 1)}, 0, 0, 40, 0) == {}
    assert budget.cost_alerts(0, 0, {}, 0, 0, 19, 25.0) == {}


def test_action_lines_decide_the_boundary():
    assert budget.action_lines(10.0, 90, 100) == (9.0, 10.0)
    assert budget.action_lines(10.0) == (None, None)
    # A call that lands exactly on the block line passes; one that passes it by any amount is blocked.
    assert budget.evaluate(7.5, 2.5, amount=10.0, block_at=100) == "ok"
    assert budget.evaluate(7.5, 2.5000001, amount=10.0, block_at=100) == "blocked"
    # The switch line is reached on equality.
    assert budget.evaluate(8.0, 1.0, amount=10.0, auto_switch_at=90) == "switched"
    with pytest.raises(ValueError):
        budget.action_lines(0.0, 50, 100)


def test_period_forecast_reads_the_days_so_far():
    """The forecast of a period from its spend per day: days without spend count as 0, days before the period
    or after today are left out, and a period not started yet forecasts 0."""
    spend = {date(2025, 3, 1): 1.0, date(2025, 3, 3): 3.0, date(2025, 2, 28): 100.0, date(2025, 3, 5): 100.0}
    march = budget.period_bounds(date(2025, 3, 3), "monthly")
    # Days 1-3 weigh 1, 2, 3: (1 + 0 + 9) / 6 USD a day for the 28 days left.
    assert budget.period_forecast(spend, *march, date(2025, 3, 3)) == pytest.approx(4.0 + 10 / 6 * 28)
    assert budget.period_forecast(spend, *march, date(2025, 3, 3)) == budget.forecast_spend([1.0, 0.0, 3.0], 31)
    assert budget.period_forecast(spend, *march, date(2025, 2, 27)) == 0.0


def test_reserved_output_tokens_calibrated_only_with_enough_samples():
    enough = budget.CALIBRATION_MIN_SAMPLES
    assert not budget.is_calibrated(enough - 1), "too few samples: nothing usable is learned"
    assert budget.is_calibrated(enough)
    assert budget.reserved_output_tokens(32000, None) == 32000, "nothing usable learned: the worst case"
    assert budget.reserved_output_tokens(32000, 512) == 512
    assert budget.reserved_output_tokens(300, 512) == 300, "never more than max_tokens"
    assert budget.reserved_output_tokens(32000, 512, "worst_case") == 32000
    with pytest.raises(ValueError, match="Unknown reservation mode 'optimistic'"):
        budget.reserved_output_tokens(100, 10, "optimistic")


@pytest.mark.parametrize(("values", "fraction", "expected"), [
    ([5], 0.99, 5),
    (list(range(1, 31)), 0.99, 30),  # 30 samples: the p99 is the largest
    (list(range(1, 101)), 0.99, 99),
    (list(range(1, 1001)), 0.99, 990),
    ([3, 1, 2, 4], 0.5, 2),
])
def test_percentile_disc_is_an_observed_value(values, fraction, expected):
    assert budget.percentile_disc(values, fraction) == expected
