"""Budget arithmetic: calendar periods in a timezone, thresholds, the action a call triggers, forecasts.

Budgets run on calendar periods (a monthly budget resets on the 1st at midnight in the company's
timezone), never on rolling windows. Everything here is plain Python so that it is fast to test.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

PERIOD_TYPES = ("daily", "weekly", "monthly")
THRESHOLD_MIN = 1.0
THRESHOLD_MAX = 1000.0

# The outcome of a budget check, from the mildest to the strictest: the strictest one wins.
STATUSES = ("ok", "warning", "switched", "blocked")

# How a budget reserves a call before it goes out (DESIGN section 13). `worst_case`: the prompt plus
# `max_tokens` of output, which never overspends beyond the estimation error. `calibrated`: the prompt plus
# the p99 of the output tokens that the same provider, model and operation actually returned (successful
# served calls of the last CALIBRATION_WINDOW_DAYS days), once at least CALIBRATION_MIN_SAMPLES calls tell it,
# never more than `max_tokens`; with fewer samples, the worst case.
RESERVATION_MODES = ("worst_case", "calibrated")
CALIBRATION_MIN_SAMPLES = 30
CALIBRATION_WINDOW_DAYS = 7
CALIBRATION_PERCENTILE = 0.99


def in_scope(
    user_ids: frozenset[int], provider_ids: frozenset[int], operations: frozenset[str],
    user_id: int, provider_id: int, operation: str | None,
) -> bool:
    """Whether a call by `user_id` to `provider_id` for `operation` falls in a scope (of a budget or a rate
    limit) of these users, providers and operations, each empty for all."""
    return (
        (not user_ids or user_id in user_ids)
        and (not provider_ids or provider_id in provider_ids)
        and (not operations or operation in operations)
    )


def local_day(now_utc: datetime, tz_name: str | None) -> date:
    """The calendar day of the UTC instant `now_utc` (naive means UTC) in the timezone `tz_name`."""
    if now_utc.tzinfo is None:
        now_utc = now_utc.replace(tzinfo=timezone.utc)
    return now_utc.astimezone(ZoneInfo(tz_name or "UTC")).date()


def period_bounds(day: date, period_type: str) -> tuple[date, date]:
    """The calendar period holding `day`: (first day, first day of the next period).

    Weekly periods start on Monday (ISO weeks), monthly ones on the 1st.
    """
    if period_type == "daily":
        return day, day + timedelta(days=1)
    if period_type == "weekly":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period_type == "monthly":
        start = day.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1)
    raise ValueError(f"Unknown period type {period_type!r}: use one of {', '.join(PERIOD_TYPES)}.")


def current_period(now_utc: datetime, tz_name: str | None, period_type: str) -> tuple[date, date]:
    """The period of `period_type` running at the UTC instant `now_utc` in the timezone `tz_name`."""
    return period_bounds(local_day(now_utc, tz_name), period_type)


def utc_range(start: date, end: date, tz_name: str | None) -> tuple[datetime, datetime]:
    """The naive UTC datetimes of local midnight on `start` and on `end` (to filter UTC timestamps)."""
    zone = ZoneInfo(tz_name or "UTC")

    def to_utc(day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None)

    return to_utc(start), to_utc(end)


def parse_thresholds(value: str | Iterable[float | int | str] | None) -> list[float]:
    """Alert thresholds as a list of percentages, from '50, 80, 100' or [50, 80, 100].

    Raises ValueError with a readable message when a value is not a number, lies outside 1-1000,
    or when the values are not strictly increasing.
    """
    if not value:
        return []
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise ValueError(f"{value!r} is not a list of percentages such as '50, 80, 100'.")
    thresholds = []
    for part in parts:
        if part == "" or isinstance(part, bool):
            raise ValueError(f"{part!r} is not a percentage.")
        try:
            percent = float(part)
        except (TypeError, ValueError):
            raise ValueError(f"{part!r} is not a percentage.") from None
        if not THRESHOLD_MIN <= percent <= THRESHOLD_MAX:
            raise ValueError(f"The threshold {percent:g}% is outside 1-1000%.")
        if thresholds and percent <= thresholds[-1]:
            raise ValueError("Alert thresholds must be strictly increasing, e.g. 50, 80, 100.")
        thresholds.append(percent)
    return thresholds


def format_thresholds(thresholds: Sequence[float]) -> str:
    """The canonical text of a threshold list: '50, 80, 100'."""
    return ", ".join(f"{percent:g}" for percent in thresholds)


def action_lines(
    amount: float, auto_switch_at: float = 0.0, block_at: float = 0.0
) -> tuple[float | None, float | None]:
    """The spend (in USD) at which a budget of `amount` switches calls and blocks them: (switch line,
    block line), None for an action switched off (threshold 0).

    `evaluate` compares spend with these very numbers, and so does the gateway's reservation statement
    in SQL (HOLD_SQL of ai.cost.budget.period, the same IEEE double arithmetic), so both take the same
    decision at the boundary; an Odoo-tier test compares the two on generated cases.
    """
    if amount <= 0:
        raise ValueError("A budget amount must be positive.")
    return (amount * auto_switch_at / 100 if auto_switch_at else None, amount * block_at / 100 if block_at else None)


def evaluate(
    committed: float,
    estimate: float,
    amount: float,
    alert_thresholds: Sequence[float] = (),
    auto_switch_at: float = 0.0,
    block_at: float = 0.0,
) -> str:
    """The status a call estimated at `estimate` gets from a budget of `amount` already holding
    `committed` (spend plus in-flight reservations). Thresholds are percentages; 0 disables one.

    The call is blocked when it could carry the budget past its block line, so that spend plus
    reservations never cross that line by more than the estimation error of one call.
    """
    switch_line, block_line = action_lines(amount, auto_switch_at, block_at)
    projected = committed + estimate
    if block_line is not None and projected > block_line:
        return "blocked"
    if switch_line is not None and projected >= switch_line:
        return "switched"
    if any(projected >= amount * threshold / 100 for threshold in alert_thresholds):
        return "warning"
    return "ok"


def is_calibrated(samples: int) -> bool:
    """Whether `samples` served calls are enough to reserve their learned p99 instead of `max_tokens`."""
    return samples >= CALIBRATION_MIN_SAMPLES


def reserved_output_tokens(max_tokens: int, learned_p99: int | None, mode: str = "calibrated") -> int:
    """The output tokens a call asking for at most `max_tokens` reserves under a budget of reservation `mode`,
    given the p99 of the output tokens learned for its provider, model and operation once enough calls tell it
    (`is_calibrated`), None before. Never more than `max_tokens`; the worst case (`max_tokens`) in `worst_case`
    mode and while nothing usable was learned."""
    if mode not in RESERVATION_MODES:
        raise ValueError(f"Unknown reservation mode {mode!r}: use one of {', '.join(RESERVATION_MODES)}.")
    if mode == "worst_case" or learned_p99 is None:
        return max_tokens
    return max(0, min(max_tokens, int(learned_p99)))


def percentile_disc(values: Sequence[float], fraction: float) -> float:
    """PostgreSQL's `percentile_disc(fraction) WITHIN GROUP (ORDER BY value)`: the first value, in ascending
    order, whose cumulative share of the values reaches `fraction` (an observed value, never interpolated).
    The learned p99 of calibrated reservations is this, computed in SQL; tests compare the two."""
    if not values:
        raise ValueError("No values to take a percentile of.")
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def strictest(statuses: Iterable[str]) -> str:
    """The strictest of budget statuses ('ok' when there are none)."""
    return max(statuses, key=STATUSES.index, default="ok")


def crossed_thresholds(thresholds: Sequence[float], alerted_up_to: float, percent: float) -> list[float]:
    """The alert thresholds reached by `percent` that were not alerted yet in the period.

    Thresholds are increasing, so the period only needs to remember the highest one alerted.
    """
    return [threshold for threshold in thresholds if alerted_up_to < threshold <= percent]


def forecast_spend(daily_spend: Sequence[float], total_days: int) -> float:
    """Project a period's total spend from the spend of its days so far (oldest first, today last).

    The daily rate is a weighted mean of the days so far where day i (1 = first day) weighs i, so
    the most recent days count most: a budget whose spend accelerates is forecast higher than a
    plain average would. The remaining days of the period are assumed to spend at that rate:
    forecast = spend so far + rate x (total_days - days so far).
    """
    days = len(daily_spend)
    if not days:
        return 0.0
    if total_days < days:
        raise ValueError("A period cannot have fewer days than the days already spent in it.")
    weights = range(1, days + 1)
    rate = sum(weight * spend for weight, spend in zip(weights, daily_spend, strict=True)) / sum(weights)
    return sum(daily_spend) + rate * (total_days - days)


def period_forecast(spend_by_day: Mapping[date, float], start: date, end: date, today: date) -> float:
    """The forecast of the period [start, end) (`end`: the first day of the next period) on `today`, from
    the spend of each of its days so far (`spend_by_day`; a day without spend may be missing), today
    included: forecast_spend of those days. The one forecast behind the dashboard's "Forecast" of the month
    and a budget's forecasts (0 before the period starts)."""
    days_so_far = (min(today, end - timedelta(days=1)) - start).days + 1
    if days_so_far <= 0:
        return 0.0
    series = [spend_by_day.get(start + timedelta(days=offset)) or 0.0 for offset in range(days_so_far)]
    return forecast_spend(series, (end - start).days)


def days_in_month(day: date) -> int:
    """Number of days in the month of `day`."""
    return calendar.monthrange(day.year, day.month)[1]


def cost_alerts(
    spend_today: float,
    daily_limit: float,
    cost_per_record: dict[str, tuple[float, int]],
    record_limit: float,
    cache_hits: int,
    calls: int,
    cache_floor: float,
    min_calls: int = 20,
) -> dict[str, str]:
    """Company-level cost alerts, keyed by kind ('daily_spend', 'cost_per_record', 'cache_hit_rate').

    `cost_per_record` maps a related model (e.g. crm.lead) to (cost, distinct records). A limit of
    0 switches its alert off. The cache hit rate is judged on at least `min_calls` calls, so that a
    quiet morning's two calls do not raise an alarm.
    """
    alerts = {}
    if daily_limit and spend_today > daily_limit:
        alerts["daily_spend"] = f"AI spend today is ${spend_today:.2f}, above the daily limit of ${daily_limit:.2f}."
    if record_limit:
        over = [
            f"{model} ${cost / records:.4f}"
            for model, (cost, records) in sorted(cost_per_record.items())
            if records and cost / records > record_limit
        ]
        if over:
            alerts["cost_per_record"] = (
                f"Average AI cost per record today is above ${record_limit:.4f} for: {', '.join(over)}."
            )
    if cache_floor and calls >= min_calls:
        rate = cache_hits / calls * 100
        if rate < cache_floor:
            alerts["cache_hit_rate"] = (
                f"Cache hit rate today is {rate:.1f}% ({cache_hits} of {calls} calls), below the floor of "
                f"{cache_floor:g}%."
            )
    return alerts
