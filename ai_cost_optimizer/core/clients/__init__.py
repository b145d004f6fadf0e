"""Provider wire clients behind three entry points: ``chat``, ``open_stream`` and ``embed``."""

from __future__ import annotations

import time
from collections.abc import Callable

from .anthropic_client import chat_anthropic, stream_anthropic
from .base import KINDS, ChatRequest, ChatResult, ChatStream, ProviderConfig, ProviderError, call_with_retries
from .demo_client import chat_demo, stream_demo
from .openai_client import EmbeddingResult, chat_openai_compatible, embed_openai_compatible, stream_openai_compatible
from .rate_limits import RateLimits

__all__ = [
    "KINDS", "ChatRequest", "ChatResult", "ChatStream", "EmbeddingResult", "ProviderConfig", "ProviderError",
    "RateLimits", "call_with_retries", "chat", "embed", "open_stream",
]

_CALLERS = {"anthropic": chat_anthropic, "openai_compatible": chat_openai_compatible, "demo": chat_demo}
_STREAMERS = {"anthropic": stream_anthropic, "openai_compatible": stream_openai_compatible, "demo": stream_demo}
_EMBEDDERS = {"openai_compatible": embed_openai_compatible}


def _caller(callers: dict, config: ProviderConfig) -> Callable:
    caller = callers.get(config.kind)
    if caller is None:
        raise ValueError(f"Unknown provider kind {config.kind!r}; expected one of {', '.join(callers)}.")
    return caller


def chat(
    config: ProviderConfig,
    request: ChatRequest,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_attempt_failed: Callable[[ProviderError], None] | None = None,
) -> ChatResult:
    """Send ``request`` to the provider of ``config``, retrying transient failures.

    Raises ValueError for an unknown provider kind and ProviderError when the call fails for
    good. ``sleep`` is the backoff wait, replaceable in tests; ``on_attempt_failed`` is called
    with the ProviderError of every failed attempt (see ``call_with_retries``).
    """
    caller = _caller(_CALLERS, config)
    return call_with_retries(lambda: caller(config, request), config, sleep, on_attempt_failed)


def open_stream(
    config: ProviderConfig,
    request: ChatRequest,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_attempt_failed: Callable[[ProviderError], None] | None = None,
) -> ChatStream:
    """Open a streamed answer, as ``chat`` sends its request: opening is retried like a call, a stream
    that breaks once it delivers is not (its chunks are the caller's already)."""
    streamer = _caller(_STREAMERS, config)
    return call_with_retries(lambda: streamer(config, request), config, sleep, on_attempt_failed)


def embed(
    config: ProviderConfig,
    texts: list[str],
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_attempt_failed: Callable[[ProviderError], None] | None = None,
) -> EmbeddingResult:
    """The vectors of ``texts`` (one request: the caller batches), retrying transient failures. Only
    OpenAI-compatible providers serve ``/embeddings``: ValueError for another kind."""
    embedder = _caller(_EMBEDDERS, config)
    return call_with_retries(lambda: embedder(config, texts), config, sleep, on_attempt_failed)
