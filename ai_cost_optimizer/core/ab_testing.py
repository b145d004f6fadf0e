"""A/B assignment: a user's arm is a pure function of (experiment, user) and the percentages.

Deterministic assignment means every worker and node computes the same arm for a user, even
before the assignment is stored; the stored assignment then keeps it when percentages change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

# 10,000 buckets: percentages may have two decimals.
BUCKETS = 10_000


def bucket(experiment_id: int, user_id: int) -> int:
    """The user's bucket in 0..BUCKETS-1, uniform over users and independent across experiments."""
    digest = hashlib.sha256(f"{experiment_id}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def pick_arm(user_bucket: int, percentages: Sequence[float]) -> int:
    """The index of the arm whose cumulative share holds `user_bucket`; percentages sum to 100."""
    if not percentages:
        raise ValueError("an experiment needs arms")
    cumulative = 0.0
    for index, percentage in enumerate(percentages):
        cumulative += percentage * BUCKETS / 100
        if user_bucket < cumulative:
            return index
    return len(percentages) - 1
