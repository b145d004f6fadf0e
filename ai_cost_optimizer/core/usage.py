"""Token usage normalized across providers.

One meaning everywhere: ``input_tokens`` counts ALL prompt tokens, and the cache reads and cache
writes are parts of it. Providers disagree on this (OpenAI includes cached tokens in
``prompt_tokens``, Anthropic reports cache tokens on top of ``input_tokens``), so every provider
payload goes through one of the ``from_*`` functions below before it is priced or stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Usage:
    """Tokens of one call; cache_read and cache_write are parts of input_tokens, and cache_write_1h (the
    cache writes kept for an hour, which Anthropic bills higher than the 5-minute ones) is part of
    cache_write."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def uncached_input_tokens(self) -> int:
        """Prompt tokens billed at the plain input rate (never negative)."""
        return max(0, self.input_tokens - self.cache_read_tokens - self.cache_write_tokens)

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.input_tokens + self.output_tokens


def _value(source: Any, name: str) -> Any:
    """A field of a dict or an SDK object; None when missing."""
    return source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)


def _field(source: Any, name: str) -> int:
    """Read an integer field from a dict or an SDK object; missing or None means 0."""
    return int(_value(source, name) or 0)


def from_anthropic(usage: Any) -> Usage:
    """Normalize an Anthropic Messages API ``usage`` block (SDK object or dict).

    Anthropic's ``input_tokens`` EXCLUDES ``cache_read_input_tokens`` and
    ``cache_creation_input_tokens``, so they are added back to get all prompt tokens. The cache writes
    with a 1-hour lifetime (``cache_creation.ephemeral_1h_input_tokens``) are billed at their own rate.
    """
    cache_read = _field(usage, "cache_read_input_tokens")
    cache_write = _field(usage, "cache_creation_input_tokens")
    return Usage(
        input_tokens=_field(usage, "input_tokens") + cache_read + cache_write,
        output_tokens=_field(usage, "output_tokens"),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=min(cache_write, _field(_value(usage, "cache_creation"), "ephemeral_1h_input_tokens")),
    )


def from_openai(usage: Mapping[str, Any]) -> Usage:
    """Normalize an OpenAI-compatible chat completion ``usage`` dict.

    ``prompt_tokens`` already includes the cached tokens, reported as
    ``prompt_tokens_details.cached_tokens`` by OpenAI and as ``prompt_cache_hit_tokens`` by
    DeepSeek. OpenAI does not bill cache writes; OpenRouter reports them as
    ``prompt_tokens_details.cache_write_tokens``, read when present.
    """
    details = usage.get("prompt_tokens_details") or {}
    cache_read = _field(details, "cached_tokens") or _field(usage, "prompt_cache_hit_tokens")
    return Usage(
        input_tokens=_field(usage, "prompt_tokens"),
        output_tokens=_field(usage, "completion_tokens"),
        cache_read_tokens=cache_read,
        cache_write_tokens=_field(details, "cache_write_tokens"),
    )
