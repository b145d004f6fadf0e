"""Token waste rules: each measures the tokens and dollars one call wasted, never a bare yes/no.

The rules are pure functions over plain facts about one call (``CallFacts``), so the gateway can
run them after every call in constant time: the facts that need the prompt (repeated blocks, old
turns, the static prefix) are measured once when the call is recorded, and the facts that need
other calls (an earlier identical prompt, an earlier identical prefix) are answered by indexed
hash look-ups before the rules run.

Thresholds (``WasteSettings``), all configurable per company in Settings > AI Cost:

- ``duplicate_window_seconds``: an identical prompt (same company, operation and model) answered
  within this many seconds before, without a response-cache hit, is a ``duplicate_query``; the
  whole cost of the call is wasted.
- ``redundant_min_tokens``: ``redundant_context`` fires when the extra copies of repeated text
  blocks (paragraphs of at least ``REDUNDANT_MIN_BLOCK_CHARS`` characters) in one prompt add up to
  at least this many tokens; the extra copies are wasted.
- ``oversized_input_tokens``: ``oversized_context`` fires when the input exceeds what the task type
  needs (this limit, or the stricter one of ``TASK_INPUT_TOKENS``), or when the input fills at least
  ``near_window_ratio`` of the context window for an answer of at most ``tiny_answer_tokens``; the
  tokens above the need are wasted.
- ``wrong_model_min_saving_ratio``: ``wrong_model`` fires when a qualifying provider would have cost
  at least this fraction less for the same tokens; the difference is wasted. Which providers qualify is
  not decided here: the caller passes the alternatives (the Odoo tier passes the provider the optimizer,
  ``recommendation.rank``, recommended for the call).
- ``history_min_tokens``: ``unnecessary_history`` fires when a single-shot task type
  (``SINGLE_SHOT_TASKS``) carries at least this many tokens of earlier conversation turns.
- ``missed_cache_window_seconds``: ``missed_cache`` fires when a static prefix at least as long as
  the provider's minimum cacheable length was sent within this many seconds before (a prompt
  cache's lifetime) and the call read nothing from the prompt cache; the saving the cache would
  have given is wasted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from .pricing import format_usd

RULES = (
    "duplicate_query",
    "redundant_context",
    "oversized_context",
    "wrong_model",
    "unnecessary_history",
    "missed_cache",
)
# Task types whose answer depends on the last request only: earlier turns are dead weight.
SINGLE_SHOT_TASKS = frozenset({"classify", "extract", "translate", "summarize"})
# What short-answer task types need at most, below the general oversized_input_tokens limit.
TASK_INPUT_TOKENS = {"classify": 4000, "extract": 8000, "translate": 8000}
# A repeated block shorter than this is formatting (headers, signatures), not duplicated context.
REDUNDANT_MIN_BLOCK_CHARS = 80
# Smallest prompt prefix providers cache: 1024 tokens (OpenAI, Claude Sonnet/Opus), 2048 for Claude Haiku.
DEFAULT_MIN_CACHEABLE_TOKENS = 1024
HAIKU_MIN_CACHEABLE_TOKENS = 2048
# How to avoid each kind of waste: what an administrator changes where, or what to ask of the developer of
# the operation, in words the Waste Report and the dashboard show as they are.
ADVICE = {
    "duplicate_query": "Keep Settings > AI Cost > Response cache on, so that a repeated question is answered "
    "from the stored answer; if the answers vary, ask the operation's developer to send it at temperature 0 "
    "or to keep the answer on the record.",
    "redundant_context": "Ask the operation's developer to send each document or instruction once: the prompt "
    "repeats text it already holds.",
    "oversized_context": "Ask the operation's developer to send only the relevant part of the record or "
    "document (a summary or the matching passages), not all of it.",
    "wrong_model": "Tick Auto Switch Provider on the provider (or Settings > AI Cost > Switch to the cheaper "
    "provider), or set Routing of calls to Smart router, so that these calls go to the cheapest qualifying provider.",
    "unnecessary_history": "Ask the operation's developer to send only the instructions and the last request: "
    "this kind of task does not need the earlier conversation.",
    "missed_cache": "Tick Enable Prompt Caching on the provider, and ask the operation's developer to keep the "
    "instructions identical from call to call, so that the provider reads them from its cache.",
}
_BLOCK_SPLIT = re.compile(r"\n\s*\n")
_MILLION = 1_000_000


@dataclass(frozen=True)
class WasteSettings:
    """The thresholds of the waste rules (see the module docstring for their meaning)."""

    duplicate_window_seconds: int = 3600
    redundant_min_tokens: int = 50
    oversized_input_tokens: int = 16000
    near_window_ratio: float = 0.8
    tiny_answer_tokens: int = 100
    wrong_model_min_saving_ratio: float = 0.2
    history_min_tokens: int = 200
    missed_cache_window_seconds: int = 300
    task_input_tokens: Mapping[str, int] = field(default_factory=lambda: dict(TASK_INPUT_TOKENS))

    def errors(self) -> list[str]:
        """What makes no sense in these thresholds (empty when they are valid)."""
        problems = []
        for name in ("duplicate_window_seconds", "missed_cache_window_seconds", "oversized_input_tokens"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive.")
        for name in ("redundant_min_tokens", "tiny_answer_tokens", "history_min_tokens"):
            if getattr(self, name) < 0:
                problems.append(f"{name} cannot be negative.")
        for name in ("near_window_ratio", "wrong_model_min_saving_ratio"):
            if not 0 < getattr(self, name) <= 1:
                problems.append(f"{name} must be a ratio above 0 and at most 1.")
        return problems


@dataclass(frozen=True)
class Prices:
    """USD per million tokens of the provider that served the call."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    cache_read_per_mtok: float = 0.0

    def input_cost(self, tokens: int) -> float:
        """Cost of ``tokens`` uncached input tokens."""
        return tokens * self.input_per_mtok / _MILLION

    def cache_saving(self, tokens: int) -> float:
        """What reading ``tokens`` from the prompt cache saves against sending them uncached."""
        read = self.cache_read_per_mtok or self.input_per_mtok
        return tokens * max(0.0, self.input_per_mtok - read) / _MILLION


@dataclass(frozen=True)
class CallFacts:
    """What the rules know about one call."""

    task_type: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    prices: Prices
    cache_read_tokens: int = 0
    context_window: int = 0
    redundant_tokens: int = 0
    history_tokens: int = 0
    static_prefix_tokens: int = 0
    duplicate_of_recent: bool = False
    prefix_seen_recently: bool = False
    # (provider name, cost of this call's tokens at its prices) of each qualifying alternative, as the
    # optimizer decided it (recommendation.rank): the rules do not judge eligibility
    alternatives: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Finding:
    """One rule's verdict: what was wasted and how to avoid it."""

    type: str
    description: str
    tokens_wasted: int
    cost_wasted: float
    recommendation: str

    def as_dict(self) -> dict:
        """The finding in the shape of ``analyze_waste``'s report."""
        return {
            "type": self.type,
            "description": self.description,
            "tokens_wasted": self.tokens_wasted,
            "cost_wasted": self.cost_wasted,
            "recommendation": self.recommendation,
        }


# ----------------------------------------------------------------------
# Facts measured from the prompt when the call is recorded
# ----------------------------------------------------------------------
def redundant_blocks(messages: list[dict]) -> list[tuple[str, int]]:
    """The text blocks (paragraphs) repeated inside one prompt, with their number of extra copies."""
    counts = Counter(
        block.strip()
        for message in messages
        for block in _BLOCK_SPLIT.split(message["content"])
        if len(block.strip()) >= REDUNDANT_MIN_BLOCK_CHARS
    )
    return [(block, count - 1) for block, count in counts.items() if count > 1]


def redundant_tokens(messages: list[dict], count_tokens: Callable[[str], int]) -> int:
    """Tokens of the extra copies of repeated blocks in ``messages``."""
    return sum(count_tokens(block) * extra for block, extra in redundant_blocks(messages))


def history_messages(messages: list[dict]) -> list[dict]:
    """The conversation turns before the last user message (system messages are not history)."""
    last_user = max(index for index, message in enumerate(messages) if message["role"] == "user")
    return [message for message in messages[:last_user] if message["role"] != "system"]


def static_prefix(messages: list[dict]) -> str:
    """The leading system messages: the part of a prompt that repeats across calls and can be cached."""
    texts = []
    for message in messages:
        if message["role"] != "system":
            break
        texts.append(message["content"])
    return "\n\n".join(texts)


def min_cacheable_tokens(model: str) -> int:
    """The shortest prefix the provider of ``model`` caches."""
    return HAIKU_MIN_CACHEABLE_TOKENS if "haiku" in (model or "").lower() else DEFAULT_MIN_CACHEABLE_TOKENS


# ----------------------------------------------------------------------
# The six rules
# ----------------------------------------------------------------------
def duplicate_query(facts: CallFacts, settings: WasteSettings) -> Finding | None:
    """The same prompt was answered within the window: this whole call was wasted."""
    if not facts.duplicate_of_recent:
        return None
    minutes = settings.duplicate_window_seconds // 60
    return Finding(
        "duplicate_query",
        f"The same prompt was already answered in the last {minutes} minutes.",
        facts.input_tokens + facts.output_tokens,
        facts.cost_usd,
        ADVICE["duplicate_query"],
    )


def _input_waste(rule: str, description: str, tokens: int, facts: CallFacts) -> Finding:
    """A finding whose waste is `tokens` of input, priced at the call's uncached input rate."""
    return Finding(rule, description, tokens, facts.prices.input_cost(tokens), ADVICE[rule])


def redundant_context(facts: CallFacts, settings: WasteSettings) -> Finding | None:
    """The same block of text was sent more than once in one prompt."""
    if not facts.redundant_tokens or facts.redundant_tokens < settings.redundant_min_tokens:
        return None
    return _input_waste(
        "redundant_context",
        f"{facts.redundant_tokens} tokens of the prompt repeat text already in it.",
        facts.redundant_tokens,
        facts,
    )


def oversized_context(facts: CallFacts, settings: WasteSettings) -> Finding | None:
    """More input than the task type needs, or a nearly full context window for a tiny answer."""
    need = min(settings.oversized_input_tokens, settings.task_input_tokens.get(facts.task_type, facts.input_tokens))
    near_window = (
        facts.context_window > 0
        and facts.input_tokens >= settings.near_window_ratio * facts.context_window
        and facts.output_tokens <= settings.tiny_answer_tokens
    )
    if near_window:
        # A tiny answer needs at most the headroom the ratio leaves in the window.
        need = min(need, round(facts.context_window * (1 - settings.near_window_ratio)))
    wasted = facts.input_tokens - need
    if wasted <= 0:
        return None
    reason = (
        f"{facts.input_tokens} input tokens fill the context window for a {facts.output_tokens}-token answer"
        if near_window
        else f"{facts.input_tokens} input tokens where calls of this task type need about {need}"
    )
    return _input_waste("oversized_context", reason + ".", wasted, facts)


def wrong_model(facts: CallFacts, settings: WasteSettings) -> Finding | None:
    """A qualifying provider would have answered the same tokens for clearly less."""
    if not facts.alternatives or facts.cost_usd <= 0:
        return None
    name, cost = min(facts.alternatives, key=lambda alternative: alternative[1])
    saving = facts.cost_usd - cost
    if saving < settings.wrong_model_min_saving_ratio * facts.cost_usd:
        return None
    return Finding(
        "wrong_model",
        f"{name} meets the quality bar and would have cost {format_usd(cost)} instead of {format_usd(facts.cost_usd)}.",
        facts.input_tokens + facts.output_tokens,
        saving,
        f"Send calls of this task type to {name}: tick Auto Switch Provider on it, or set Routing of calls "
        "to Smart router in Settings > AI Cost.",
    )


def unnecessary_history(facts: CallFacts, settings: WasteSettings) -> Finding | None:
    """Earlier conversation turns were sent with a single-shot task."""
    if facts.task_type not in SINGLE_SHOT_TASKS or not facts.history_tokens:
        return None
    if facts.history_tokens < settings.history_min_tokens:
        return None
    return _input_waste(
        "unnecessary_history",
        f"{facts.history_tokens} tokens of earlier turns were sent with a single-shot task.",
        facts.history_tokens,
        facts,
    )


def missed_cache(facts: CallFacts, settings: WasteSettings) -> Finding | None:
    """A long static prefix was sent again within the cache lifetime without any cache read."""
    if not facts.prefix_seen_recently or facts.cache_read_tokens:
        return None
    if facts.static_prefix_tokens < min_cacheable_tokens(facts.model):
        return None
    return Finding(
        "missed_cache",
        f"A {facts.static_prefix_tokens}-token prompt prefix (tool definitions, system prompt) sent again within "
        f"{settings.missed_cache_window_seconds} seconds was not read from the prompt cache.",
        facts.static_prefix_tokens,
        facts.prices.cache_saving(facts.static_prefix_tokens),
        ADVICE["missed_cache"],
    )


ALL_RULES = (duplicate_query, redundant_context, oversized_context, wrong_model, unnecessary_history, missed_cache)


def analyze(facts: CallFacts, settings: WasteSettings) -> dict:
    """Run every rule; the report of ``ai.token.analytics.analyze_waste``.

    A duplicate call wastes its whole cost, so the savings are capped at the call's cost; the
    waste score (0-100) is the share of the cost that could have been saved (the share of tokens
    when the cost is unknown).

    The findings' costs add up to the savings: rules overlap (a duplicate's history is part of its
    cost), so each finding, in the order of ALL_RULES, counts the part of the call's cost that the
    findings before it left. The waste report sums the findings and the dashboard the calls' savings:
    both read the same dollars.
    """
    # A finding that wasted neither tokens nor money (a duplicate of a call that used none) is no waste.
    found = [
        finding for rule in ALL_RULES
        if (finding := rule(facts, settings)) and (finding.tokens_wasted > 0 or finding.cost_wasted > 0)
    ]
    findings, savings = [], 0.0
    for finding in found:
        cost = min(finding.cost_wasted, max(facts.cost_usd - savings, 0.0))
        findings.append(replace(finding, cost_wasted=cost))
        savings += cost
    if facts.cost_usd > 0:
        score = round(100 * savings / facts.cost_usd)
    else:
        total = facts.input_tokens + facts.output_tokens
        wasted = min(max((finding.tokens_wasted for finding in findings), default=0), total)
        score = round(100 * wasted / total) if total else 0
    return {
        "waste_detected": bool(findings),
        "waste_score": score,
        "findings": [finding.as_dict() for finding in findings],
        "potential_savings_usd": savings,
    }
