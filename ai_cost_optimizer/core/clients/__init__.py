"""Provider wire clients behind one entry point, ``chat``."""

from __future__ import annotations

import time
from collections.abc import Callable

from .anthropic_client import chat_anthropic
from .base import KINDS, ChatResult, ProviderConfig, ProviderError, call_with_retries
from .demo_client import chat_demo
from .openai_client import chat_openai_compatible

__all__ = ["KINDS", "ChatResult", "ProviderConfig", "ProviderError", "call_with_retries", "chat"]

_CALLERS = {"anthropic": chat_anthropic, "openai_compatible": chat_openai_compatible, "demo": chat_demo}


def chat(
    config: ProviderConfig,
    messages: list[dict],
    max_tokens: int = 1024,
    temperature: float | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_attempt_failed: Callable[[ProviderError], None] | None = None,
) -> ChatResult:
    """Send validated ``messages`` to the provider of ``config``, retrying transient failures.

    Raises ValueError for an unknown provider kind and ProviderError when the call fails for
    good. ``sleep`` is the backoff wait, replaceable in tests; ``on_attempt_failed`` is called
    with the ProviderError of every failed attempt (see ``call_with_retries``).
    """
    caller = _CALLERS.get(config.kind)
    if caller is None:
        raise ValueError(f"Unknown provider kind {config.kind!r}; expected one of {', '.join(KINDS)}.")
    return call_with_retries(
        lambda: caller(config, messages, max_tokens, temperature), config, sleep, on_attempt_failed
    )
