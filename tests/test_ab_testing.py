"""core.ab_testing: sticky, deterministic assignment that follows the percentages."""

import math

import pytest

from ai_cost_optimizer.core.ab_testing import BUCKETS, bucket, pick_arm


def test_assignment_is_stable_per_user_and_differs_across_experiments():
    assert [bucket(7, user) for user in range(50)] == [bucket(7, user) for user in range(50)]
    assert [bucket(7, user) for user in range(50)] != [bucket(8, user) for user in range(50)]
    assert all(0 <= bucket(1, user) < BUCKETS for user in range(1000))


@pytest.mark.parametrize("percentages", [(50, 50), (30, 70), (10, 20, 70), (33.33, 33.33, 33.34)])
def test_1000_users_follow_the_percentages(percentages):
    users = 1000
    counts = [0] * len(percentages)
    for user in range(1, users + 1):
        counts[pick_arm(bucket(42, user), percentages)] += 1
    for count, percentage in zip(counts, percentages, strict=True):
        p = percentage / 100
        # Four standard deviations of a binomial: a false alarm about once in 15,000 runs.
        assert abs(count - users * p) <= 4 * math.sqrt(users * p * (1 - p)), (counts, percentages)


def test_pick_arm_boundaries():
    assert pick_arm(0, (30, 70)) == 0
    assert pick_arm(2999, (30, 70)) == 0
    assert pick_arm(3000, (30, 70)) == 1
    assert pick_arm(BUCKETS - 1, (30, 70)) == 1
    with pytest.raises(ValueError):
        pick_arm(0, ())
