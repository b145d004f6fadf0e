"""Provider recommendation: filter candidates, blend quality, rank by cost per quality point.

Pure logic, no Odoo. The model ``ai.cost.optimizer`` reads providers and cached benchmark
figures, builds ``Candidate`` objects and calls ``rank``.

- The quality of a candidate is its configured prior blended with the average of its rated
  benchmark results: ``w = n / (n + BENCHMARK_FULL_WEIGHT)`` is the weight of the benchmarks after
  ``n`` rated samples (20 ratings weigh as much as the prior).
- A candidate fits when the prompt plus the expected answer fit its context window.
- The estimated cost is the prompt at the input price plus the expected answer at the output price.
- Candidates are ranked by cost per quality point, then by cost, then by id (stable ties).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .pricing import format_usd

QUALITY_BARS = {"low": 40, "medium": 60, "high": 80}
DEFAULT_QUALITY = "medium"
# Rated samples at which the benchmarks weigh as much as the configured prior.
BENCHMARK_FULL_WEIGHT = 20
# Expected answer length when neither the task type nor the usage history says otherwise.
DEFAULT_EXPECTED_OUTPUT_TOKENS = 500
# Calls of a task type needed before their average answer length replaces the configured one.
MIN_OUTPUT_SAMPLES = 5
_MILLION = 1_000_000


def fits_context_window(tokens: int, context_window: int) -> bool:
    """Whether ``tokens`` fit a context window; an unknown window (0) excludes nothing: the provider
    decides, not a guess."""
    return not context_window or tokens <= context_window


@dataclass(frozen=True)
class Candidate:
    """One provider as the ranking sees it. Prices are USD per million tokens; None: unknown."""

    provider_id: int
    name: str
    prior_quality: float
    context_window: int  # 0: unknown
    input_price: float | None
    output_price: float | None
    serves_task: bool = True
    usable: bool = True  # e.g. False when it has no API key
    benchmark_quality: float | None = None
    benchmark_samples: int = 0


@dataclass(frozen=True)
class Scored:
    """A candidate that passed every filter."""

    candidate: Candidate
    quality: float
    estimated_cost: float

    @property
    def cost_per_quality_point(self) -> float:
        return self.estimated_cost / self.quality if self.quality else float("inf")


@dataclass
class Ranking:
    """The outcome: qualifying candidates best first, and why each other one was excluded."""

    ranked: list[Scored] = field(default_factory=list)
    excluded: list[tuple[Candidate, str]] = field(default_factory=list)

    @property
    def best(self) -> Scored | None:
        return self.ranked[0] if self.ranked else None


def quality_bar(level: str) -> int:
    """The minimum quality (0-100) of a quality level; ValueError for an unknown level."""
    if level not in QUALITY_BARS:
        raise ValueError(f"unknown quality level {level!r}; expected one of {', '.join(QUALITY_BARS)}")
    return QUALITY_BARS[level]


def strictest_quality(*levels: str | None) -> str:
    """The strictest of the quality levels given (None: not given), 'medium' when none is."""
    given = [level for level in levels if level is not None]
    return max(given, key=quality_bar) if given else DEFAULT_QUALITY


def blended_quality(prior: float, benchmark: float | None, samples: int) -> float:
    """The configured prior blended with the benchmark average; the samples set its weight."""
    if benchmark is None or samples <= 0:
        return float(prior)
    weight = samples / (samples + BENCHMARK_FULL_WEIGHT)
    return prior * (1 - weight) + benchmark * weight


def expected_output_tokens(configured: int | None, learned_average: float | None, samples: int) -> int:
    """The learned average answer length once there are enough samples, else the configured one,
    else ``DEFAULT_EXPECTED_OUTPUT_TOKENS``."""
    if learned_average is not None and samples >= MIN_OUTPUT_SAMPLES:
        return max(1, round(learned_average))
    return configured if configured and configured > 0 else DEFAULT_EXPECTED_OUTPUT_TOKENS


def estimate_cost(input_tokens: int, output_tokens: int, input_price: float, output_price: float) -> float:
    """USD cost of a call at prices per million tokens."""
    return (input_tokens * input_price + output_tokens * output_price) / _MILLION


def rank(
    candidates: Iterable[Candidate],
    context_tokens: int,
    output_tokens: int,
    level: str,
    max_budget_usd: float | None = None,
) -> Ranking:
    """Filter the candidates (task, credentials, price known, context window, quality bar, budget)
    and rank the rest by cost per quality point."""
    bar = quality_bar(level)
    needed = context_tokens + output_tokens
    ranking = Ranking()
    for candidate in candidates:
        quality = blended_quality(candidate.prior_quality, candidate.benchmark_quality, candidate.benchmark_samples)
        reason = None
        if not candidate.serves_task:
            reason = "does not serve this task type"
        elif not candidate.usable:
            reason = "has no API key"
        elif candidate.input_price is None or candidate.output_price is None:
            reason = "has no known price"
        elif not fits_context_window(needed, candidate.context_window):
            reason = f"its {candidate.context_window}-token context window is below the {needed} tokens needed"
        elif quality < bar:
            reason = f"its quality {quality:.0f} is below the {level} bar of {bar}"
        if reason:
            ranking.excluded.append((candidate, reason))
            continue
        cost = estimate_cost(context_tokens, output_tokens, candidate.input_price, candidate.output_price)
        if max_budget_usd is not None and cost > max_budget_usd:
            ranking.excluded.append(
                (candidate, f"its estimated {format_usd(cost)} exceeds the {format_usd(max_budget_usd)} budget")
            )
            continue
        ranking.ranked.append(Scored(candidate, quality, cost))
    ranking.ranked.sort(key=lambda s: (s.cost_per_quality_point, s.estimated_cost, s.candidate.provider_id))
    return ranking


def reasoning(ranking: Ranking, level: str) -> str:
    """One sentence a manager can read: why the winner, or what excluded each candidate. It names no task
    type: the screens show the task type's label beside it, and a caller knows the one it asked about."""
    best = ranking.best
    if best is None:
        if not ranking.excluded:
            return f"No provider qualifies at {level} quality: no active provider is configured."
        reasons = "; ".join(f"{candidate.name} {why}" for candidate, why in ranking.excluded)
        return f"No provider qualifies at {level} quality: {reasons}."
    others = len(ranking.ranked) - 1
    return (
        f"{best.candidate.name} is the cheapest per quality point at {level} quality: "
        f"about {format_usd(best.estimated_cost)} per call for quality {best.quality:.0f}"
        + (f", ahead of {others} other qualifying provider{'s' if others > 1 else ''}" if others else "")
        + (f"; {len(ranking.excluded)} excluded" if ranking.excluded else "")
        + "."
    )
