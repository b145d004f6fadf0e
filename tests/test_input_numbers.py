"""Pure checks of numeric and threshold input (core.messages.is_finite_number, core.budget.parse_thresholds)."""

import pytest

from ai_cost_optimizer.core import budget
from ai_cost_optimizer.core.messages import is_finite_number


@pytest.mark.parametrize("value", [0, 1, -1, 0.5, 1e308, 2**63])
def test_finite_numbers(value):
    assert is_finite_number(value)


@pytest.mark.parametrize(
    "value", [True, False, None, "1", [1], float("nan"), float("inf"), float("-inf"), 10**400, -(10**400)]
)
def test_not_finite_numbers(value):
    assert not is_finite_number(value)


@pytest.mark.parametrize("value", [50, 50.0, {"a": 50}, object()])
def test_thresholds_that_are_not_a_list_are_refused_clearly(value):
    with pytest.raises(ValueError, match="not a list of percentages"):
        budget.parse_thresholds(value)


def test_thresholds_as_a_tuple():
    assert budget.parse_thresholds((50, "80")) == [50.0, 80.0]
