"""Spend anomalies (DESIGN section 13): an operation's or a user's spend in one hour, against its usual hourly
spend, so that an agent that loops is caught within the hour, not at the month's end.

The usual hourly spend of an operation or a user is the median of its **active hours** of the 7 days (168
hours) before the hour checked: the hours in which it made at least one call. Hours without a call do not
count as $0. Most AI spend follows office hours (people at work, a nightly batch, a weekly report): an
operation that runs 10 hours a day on weekdays has 118 idle hours a week, so the median of all 168 hours
would be $0 and every busy hour above the minimum amount would be "an anomaly", once a day, every day. The
median of active hours is what an hour of that operation usually costs when it runs. An operation or a user
with no call in the 7 days before has no usual spend ($0): its first hour is an anomaly when it passes the
minimum amount (a new agent that loops from its first minute).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

HISTORY_DAYS = 7
HISTORY_HOURS = HISTORY_DAYS * 24
DEFAULT_RATIO = 5.0
DEFAULT_MIN_SPEND = 1.0


@dataclass(frozen=True)
class AnomalySettings:
    """A company's thresholds: an hour is an anomaly when its spend is more than `ratio` times the usual
    hourly spend and more than `min_spend` dollars."""

    ratio: float = DEFAULT_RATIO
    min_spend: float = DEFAULT_MIN_SPEND

    def errors(self) -> list[str]:
        """What is wrong with these thresholds, as sentences (empty when they are valid)."""
        errors = []
        if not _finite(self.ratio) or self.ratio <= 1:
            errors.append("The ratio must be a number above 1 (an hour more than N times the usual hour).")
        if not _finite(self.min_spend) or self.min_spend < 0:
            errors.append("The minimum amount cannot be negative.")
        return errors


@dataclass(frozen=True)
class Anomaly:
    """One operation's or user's hour above its usual spend."""

    key: Hashable  # an operation code (None: calls without one) or a user id
    spend: float  # in the hour checked
    median: float  # the usual hourly spend: median of the active hours before (0.0: none)
    active_hours: int  # how many of the 168 hours before had a call

    @property
    def ratio(self) -> float | None:
        """The hour's spend as a multiple of the usual hour; None when there was no usual spend."""
        return self.spend / self.median if self.median > 0 else None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def last_complete_hour(now: datetime) -> datetime:
    """The start of the last hour that has ended at `now` (14:00 at 15:07, 14:00 at 15:00 sharp)."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def history_bounds(hour: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the 7 days before `hour` (the start of the hour checked): 168 whole hours."""
    return hour - timedelta(hours=HISTORY_HOURS), hour


def usual_hourly_spend(active_hour_spends: Iterable[float]) -> float:
    """The median spend of the active hours (each an hour with at least one call); 0.0 when there is none."""
    spends = list(active_hour_spends)
    return float(median(spends)) if spends else 0.0


def is_anomaly(spend: float, usual: float, settings: AnomalySettings) -> bool:
    """More than `ratio` times the usual hourly spend, and more than the minimum amount."""
    return spend > settings.min_spend and spend > settings.ratio * usual


def candidates(spend_by_key: Mapping[Hashable, float], settings: AnomalySettings) -> list[Hashable]:
    """The keys whose hour passes the minimum amount: the only ones whose history needs reading."""
    return [key for key, spend in spend_by_key.items() if spend > settings.min_spend]


def find_anomalies(
    spend_by_key: Mapping[Hashable, float],
    history_by_key: Mapping[Hashable, Iterable[float]],
    settings: AnomalySettings,
) -> list[Anomaly]:
    """The anomalies among `spend_by_key` (each key's spend in the hour checked), given each key's spend in
    its active hours of the 7 days before (`history_by_key`; a key missing there had no call). Costliest
    first."""
    anomalies = []
    for key in candidates(spend_by_key, settings):
        spends = list(history_by_key.get(key, ()))
        usual = usual_hourly_spend(spends)
        if is_anomaly(spend_by_key[key], usual, settings):
            anomalies.append(Anomaly(key, spend_by_key[key], usual, len(spends)))
    return sorted(anomalies, key=lambda anomaly: -anomaly.spend)
