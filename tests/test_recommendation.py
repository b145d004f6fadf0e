"""core.recommendation: quality blend, expected output, filters and ranking."""

import pytest

from ai_cost_optimizer.core import recommendation as rec
from ai_cost_optimizer.core.recommendation import Candidate


def candidate(provider_id, quality, input_price, output_price, context_window=128_000, **kw):
    return Candidate(provider_id, f"P{provider_id}", quality, context_window, input_price, output_price, **kw)


def test_blended_quality_weighs_benchmarks_by_samples():
    assert rec.blended_quality(70, None, 0) == 70
    assert rec.blended_quality(70, 30, 0) == 70
    assert rec.blended_quality(70, 30, rec.BENCHMARK_FULL_WEIGHT) == pytest.approx(50)
    assert rec.blended_quality(70, 30, 10_000) == pytest.approx(30, abs=0.1)


def test_expected_output_learned_only_with_enough_samples():
    assert rec.expected_output_tokens(None, None, 0) == rec.DEFAULT_EXPECTED_OUTPUT_TOKENS
    assert rec.expected_output_tokens(300, 40.0, rec.MIN_OUTPUT_SAMPLES - 1) == 300
    assert rec.expected_output_tokens(300, 40.4, rec.MIN_OUTPUT_SAMPLES) == 40


def test_unknown_context_window_excludes_no_candidate():
    unknown = candidate(1, 80, 0.5, 2.0, context_window=0)
    ranking = rec.rank([unknown, candidate(2, 80, 0.1, 0.4, context_window=1000)], 150_000, 500, "medium")
    assert [s.candidate for s in ranking.ranked] == [unknown]
    assert rec.fits_context_window(10**8, 0) and not rec.fits_context_window(1001, 1000)


def test_each_filter_excludes_the_right_candidate():
    cheap_weak = candidate(1, 45, 0.1, 0.4)
    small_window = candidate(2, 90, 0.2, 0.8, context_window=1000)
    expensive = candidate(3, 95, 30.0, 120.0)
    good = candidate(4, 75, 0.5, 2.0)
    no_price = candidate(5, 90, None, None)
    no_task = candidate(6, 90, 0.1, 0.1, serves_task=False)
    no_key = candidate(7, 90, 0.1, 0.1, usable=False)
    ranking = rec.rank([cheap_weak, small_window, expensive, good, no_price, no_task, no_key], 2000, 500, "medium",
                       max_budget_usd=0.01)
    assert [s.candidate for s in ranking.ranked] == [good]
    reasons = {c.provider_id: why for c, why in ranking.excluded}
    assert "quality 45 is below the medium bar of 60" in reasons[1]
    assert "context window" in reasons[2]
    assert "budget" in reasons[3]
    assert "price" in reasons[5]
    assert "task type" in reasons[6]
    assert "API key" in reasons[7]


def test_ranked_by_cost_per_quality_point():
    # Costs for 1000 in / 1000 out: A 0.002 (q 50 -> 4e-5/pt), B 0.0024 (q 80 -> 3e-5/pt), C 0.001 (q 40 -> 2.5e-5).
    a, b, c = candidate(1, 50, 1.0, 1.0), candidate(2, 80, 1.2, 1.2), candidate(3, 40, 0.5, 0.5)
    ranking = rec.rank([a, b, c], 1000, 1000, "low")
    assert [s.candidate.provider_id for s in ranking.ranked] == [3, 2, 1]
    assert ranking.best.estimated_cost == pytest.approx(0.001)
    assert "P3 is the cheapest per quality point" in rec.reasoning(ranking, "low")


def test_nothing_qualifies_names_each_exclusion():
    ranking = rec.rank([candidate(1, 30, 1.0, 1.0), candidate(2, 90, 1.0, 1.0, context_window=100)], 500, 100, "high")
    assert ranking.best is None
    text = rec.reasoning(ranking, "high")
    assert text.startswith("No provider qualifies at high quality")
    assert "P1 its quality 30 is below the high bar of 80" in text and "P2 its 100-token context window" in text
    assert "no active provider" in rec.reasoning(rec.rank([], 10, 10, "low"), "low")


def test_unknown_quality_level_is_refused():
    with pytest.raises(ValueError, match="unknown quality level"):
        rec.rank([], 10, 10, "best")


def test_strictest_quality_keeps_the_highest_bar_given():
    assert rec.strictest_quality("high", "low") == "high"
    assert rec.strictest_quality(None, "low") == "low"
    assert rec.strictest_quality("low", "medium", None) == "medium"
    assert rec.strictest_quality(None, None) == "medium"
    with pytest.raises(ValueError):
        rec.strictest_quality("urgent")
