"""Checks of a gateway call's parameters other than its messages: each raises ValueError with the sentence the
caller reads, so that bad input gets a clear error before anything is sent."""

from __future__ import annotations

import math
from typing import Any

from .messages import short_repr
from .recommendation import QUALITY_BARS

MODES = ("passthrough", "smart_router")
MAX_RECORD_ID = 2**31 - 1  # PostgreSQL integer ids


def is_one_of(value: Any, choices) -> bool:
    """Membership that tolerates unhashable junk (lists, dicts) instead of raising TypeError."""
    return (value is None or isinstance(value, str)) and value in choices


def is_number(value: Any) -> bool:
    """A real number: not a bool, not NaN."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def is_record_id(value: Any) -> bool:
    """Whether `value` can be the id of a record."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_RECORD_ID


def check_mode(mode: Any) -> None:
    if not is_one_of(mode, (None, *MODES)):
        raise ValueError(f"Unknown mode {short_repr(mode)}: use 'passthrough' or 'smart_router'.")


def check_quality(quality: Any) -> None:
    if not is_one_of(quality, (None, *QUALITY_BARS)):
        raise ValueError(f"quality_required must be low, medium or high, not {short_repr(quality)}.")


def check_max_tokens(max_tokens: Any, limit: int) -> None:
    """A positive integer, at most `limit` (more than any model answers: a provider's own limit may be unknown)."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
        raise ValueError(f"max_tokens must be a positive integer, not {short_repr(max_tokens)}.")
    if max_tokens > limit:
        raise ValueError(f"max_tokens {short_repr(max_tokens)} exceeds {limit}, more than any model answers.")


def check_temperature(temperature: Any) -> None:
    if temperature is not None and not (is_number(temperature) and 0 <= temperature <= 2):
        raise ValueError(f"temperature must be a number between 0 and 2, not {short_repr(temperature)}.")


def check_max_budget(budget: Any) -> None:
    if budget is not None and not (is_number(budget) and math.isfinite(budget) and budget >= 0):
        raise ValueError(f"max_budget_usd must be a positive number, not {short_repr(budget)}.")


def check_flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, not {short_repr(value)}.")


def check_record_reference(res_model: str | None, res_id: Any) -> int | None:
    """The record a call is about: a model name and a positive id, or nothing. Returns the id (None for none)."""
    if res_id is None or res_id is False:
        return None
    if not is_record_id(res_id):
        raise ValueError(f"res_id must be the id of a record (a positive integer), not {short_repr(res_id)}.")
    if not res_model:
        raise ValueError(f"res_id {res_id} needs res_model, the model of the record.")
    return res_id
