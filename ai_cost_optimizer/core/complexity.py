"""Prompt complexity scoring for the smart router: simple | medium | complex, from the prompt itself.

The score (0-100) adds up cheap, explainable signals of the user's request:

- length of the request (tokens of the user turns, logarithmic: 10 tokens add little, 2,000 a lot);
- reasoning verbs (analyze, compare, prove, design, refactor, step by step, ...);
- code (fenced blocks, function definitions) and structured output demands (JSON schema, tables);
- several questions or numbered requirements in one request.

Below ``MEDIUM_FROM`` the prompt is simple, from ``COMPLEX_FROM`` complex. Each level maps to a
quality bar (``QUALITY_FOR_COMPLEXITY``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

MEDIUM_FROM = 30
COMPLEX_FROM = 60
QUALITY_FOR_COMPLEXITY = {"simple": "low", "medium": "medium", "complex": "high"}

_REASONING = re.compile(
    r"\b(analy[sz]e|analysis|compare|contrast|evaluate|explain why|justify|prove|derive|design|architect|"
    r"refactor|optimi[sz]e|debug|trade-?offs?|step[- ]by[- ]step|reason|plan|strategy|critique|implement)\b",
    re.IGNORECASE,
)
_CODE = re.compile(r"```|\bdef \w+\(|\bclass \w+[:(]|\bfunction \w+\(|\bSELECT\b.+\bFROM\b|=>", re.DOTALL)
_STRUCTURED = re.compile(r"\b(json|schema|table|yaml|csv|xml)\b", re.IGNORECASE)
_ENUMERATION = re.compile(r"^\s*(\d+[.)]|[-*•])\s+", re.MULTILINE)


@dataclass(frozen=True)
class Complexity:
    """The level, its score and the signals that made it, for the usage row and the reasoning."""

    level: str
    score: int
    signals: tuple[str, ...]

    @property
    def quality_level(self) -> str:
        return QUALITY_FOR_COMPLEXITY[self.level]


def score_prompt(messages: list[dict], count_tokens: Callable[[str], int]) -> Complexity:
    """Score the user turns of ``messages``; ``count_tokens(text)`` counts tokens (tiktoken)."""
    text = "\n".join(m["content"] for m in messages if m.get("role") == "user" and isinstance(m.get("content"), str))
    tokens = count_tokens(text) if text else 0
    signals = []
    # 10 tokens -> 10 points, 100 -> 20, 1,000 -> 30, 10,000 -> 40.
    score = 10 * math.log10(tokens) if tokens > 1 else 0.0
    reasoning = {match.lower() for match in _REASONING.findall(text)}
    if reasoning:
        score += min(30, 15 * len(reasoning))
        signals.append("reasoning: " + ", ".join(sorted(reasoning)))
    if _CODE.search(text):
        score += 20
        signals.append("code")
    if _STRUCTURED.search(text):
        score += 5
        signals.append("structured output")
    parts = text.count("?") + len(_ENUMERATION.findall(text))
    if parts >= 3:
        score += min(15, 3 * parts)
        signals.append(f"{parts} questions or requirements")
    score = min(100, round(score))
    level = "complex" if score >= COMPLEX_FROM else "medium" if score >= MEDIUM_FROM else "simple"
    return Complexity(level, score, tuple(signals))
