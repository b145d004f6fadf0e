"""Spend anomalies: an hour against the median of the active hours of the 7 days before (core.anomaly)."""

from datetime import datetime

import pytest

from ai_cost_optimizer.core.anomaly import (
    HISTORY_HOURS,
    Anomaly,
    AnomalySettings,
    candidates,
    find_anomalies,
    history_bounds,
    is_anomaly,
    last_complete_hour,
    usual_hourly_spend,
)

DEFAULTS = AnomalySettings()


def test_defaults_are_five_times_and_one_dollar():
    assert (DEFAULTS.ratio, DEFAULTS.min_spend) == (5.0, 1.0)
    assert DEFAULTS.errors() == []


@pytest.mark.parametrize(
    ("ratio", "min_spend", "wrong"),
    [(1.0, 1.0, "ratio"), (0.5, 1.0, "ratio"), (-3, 1.0, "ratio"), (float("nan"), 1.0, "ratio"),
     (5.0, -0.01, "minimum"), (5.0, float("inf"), "minimum"), (True, 1.0, "ratio")],
)
def test_bad_settings_are_named(ratio, min_spend, wrong):
    errors = AnomalySettings(ratio, min_spend).errors()
    assert len(errors) == 1 and wrong in errors[0].lower()


def test_zero_minimum_is_allowed():
    assert AnomalySettings(2.0, 0.0).errors() == []


def test_the_last_complete_hour_and_the_week_before():
    assert last_complete_hour(datetime(2026, 3, 4, 15, 7, 12)) == datetime(2026, 3, 4, 14)
    assert last_complete_hour(datetime(2026, 3, 4, 15, 0)) == datetime(2026, 3, 4, 14)
    assert last_complete_hour(datetime(2026, 3, 1, 0, 30)) == datetime(2026, 2, 28, 23)
    start, end = history_bounds(datetime(2026, 3, 4, 14))
    assert (start, end) == (datetime(2026, 2, 25, 14), datetime(2026, 3, 4, 14))
    assert (end - start).total_seconds() == HISTORY_HOURS * 3600


def test_usual_spend_is_the_median_of_active_hours():
    assert usual_hourly_spend([]) == 0.0
    assert usual_hourly_spend([0.4]) == 0.4
    assert usual_hourly_spend([0.1, 0.3, 0.2]) == 0.2
    assert usual_hourly_spend([0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.25)
    # A quiet hour with a call (a free model, an error) is an active hour at $0.
    assert usual_hourly_spend([0.0, 0.0, 0.5]) == 0.0


def test_an_anomaly_is_above_both_lines():
    assert is_anomaly(5.01, 1.0, DEFAULTS)
    assert not is_anomaly(5.0, 1.0, DEFAULTS), "more than 5 times, not 5 times"
    assert not is_anomaly(1.0, 0.0, DEFAULTS), "more than $1, not $1"
    assert is_anomaly(1.01, 0.0, DEFAULTS), "no usual spend: above the minimum is enough"
    assert not is_anomaly(0.9, 0.01, DEFAULTS), "90 times the usual hour, but below $1"
    assert is_anomaly(0.9, 0.01, AnomalySettings(5.0, 0.5))


def test_office_hours_are_not_anomalies():
    # 10 busy hours a weekday at about $3: the 118 idle hours of the week do not make the usual hour $0.
    history = {"lead_summary": [3.0 + (n % 5) * 0.1 for n in range(50)]}
    assert find_anomalies({"lead_summary": 3.4}, history, DEFAULTS) == []
    [loop] = find_anomalies({"lead_summary": 40.0}, history, DEFAULTS)
    assert loop == Anomaly("lead_summary", 40.0, 3.2, 50)
    assert loop.ratio == pytest.approx(12.5)


def test_only_hours_above_the_minimum_are_candidates():
    spend = {"a": 0.2, "b": 1.5, None: 3.0, 7: 1.0}
    assert candidates(spend, DEFAULTS) == ["b", None]
    # Nothing to read for `a` and 7: their history is not asked for.
    found = find_anomalies(spend, {"b": [1.4, 1.6], None: [0.1]}, DEFAULTS)
    assert [(anomaly.key, anomaly.ratio) for anomaly in found] == [(None, pytest.approx(30.0))]


def test_new_spender_has_no_ratio_and_costliest_come_first():
    found = find_anomalies({"new_agent": 2.0, 42: 9.0}, {42: [0.5] * 20}, DEFAULTS)
    assert [anomaly.key for anomaly in found] == [42, "new_agent"]
    assert found[1].median == 0.0 and found[1].ratio is None and found[1].active_hours == 0
