"""Claude through the official ``anthropic`` SDK (Messages API)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any

import anthropic

from ..usage import from_anthropic
from .base import (
    ChatResult,
    ProviderConfig,
    ProviderError,
    connection_error,
    estimate_usage,
    status_error,
    timeout_error,
)

_MAX_CLIENTS = 16
_clients: OrderedDict[tuple[str, str, float], anthropic.Anthropic] = OrderedDict()
_clients_lock = threading.Lock()


def _client(config: ProviderConfig) -> anthropic.Anthropic:
    """A cached SDK client, so repeated calls reuse its connection pool.

    Keyed by a hash of the key rather than the key itself; least recently used clients are
    dropped beyond a few entries. SDK retries are off: ``call_with_retries`` owns the policy.
    """
    key = (config.base_url, hashlib.sha256(config.api_key.encode()).hexdigest(), config.timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
        client = anthropic.Anthropic(
            api_key=config.api_key, base_url=config.base_url, max_retries=0, timeout=config.timeout
        )
        _clients[key] = client
        if len(_clients) > _MAX_CLIENTS:
            _clients.popitem(last=False)
        return client


def _system_param(system_texts: list[str], prompt_caching: bool) -> str | list[dict] | None:
    """The ``system`` parameter; with prompt caching, text blocks cached up to the last one."""
    if not system_texts:
        return None
    if not prompt_caching:
        return "\n\n".join(system_texts)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text} for text in system_texts]
    blocks[-1]["cache_control"] = {"type": "ephemeral"}
    return blocks


def _conversation(messages: list[dict]) -> list[dict]:
    """User/assistant turns, consecutive same-role messages merged as Anthropic expects."""
    turns: list[dict] = []
    for message in messages:
        if message["role"] == "system":
            continue
        if turns and turns[-1]["role"] == message["role"]:
            turns[-1]["content"] += "\n\n" + message["content"]
        else:
            turns.append({"role": message["role"], "content": message["content"]})
    return turns


def _request_kwargs(config: ProviderConfig, messages: list[dict], max_tokens: int, temperature: float | None) -> dict:
    kwargs: dict[str, Any] = {"model": config.model, "max_tokens": max_tokens, "messages": _conversation(messages)}
    system = _system_param([m["content"] for m in messages if m["role"] == "system"], config.prompt_caching)
    if system is not None:
        kwargs["system"] = system
    if temperature is not None:
        # Recent SDK releases dropped the ``temperature`` keyword from ``messages.create``;
        # extra_body sends the API field with every SDK version.
        kwargs["extra_body"] = {"temperature": temperature}
    return kwargs


def _api_message(error: anthropic.APIStatusError) -> str:
    """The provider's own error text, from the JSON error body when there is one."""
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or body["error"].get("type") or error.message)
    return error.message


def _provider_error(error: anthropic.AnthropicError, config: ProviderConfig) -> ProviderError:
    """Translate an SDK exception into a ProviderError (timeout checked before its parent)."""
    if isinstance(error, anthropic.APITimeoutError):
        return timeout_error(config.base_url, config.timeout)
    if isinstance(error, anthropic.APIConnectionError):
        return connection_error(config.base_url, error)
    if isinstance(error, anthropic.APIStatusError):
        return status_error(error.status_code, _api_message(error), error.response.headers, config)
    return ProviderError("malformed", f"unexpected response from Anthropic: {error}", secret=config.api_key)


def chat_anthropic(
    config: ProviderConfig, messages: list[dict], max_tokens: int, temperature: float | None = None
) -> ChatResult:
    """One Messages API call (no retries); SDK and parsing failures raise ProviderError."""
    kwargs = _request_kwargs(config, messages, max_tokens, temperature)
    started = time.perf_counter()
    try:
        response = _client(config).messages.create(**kwargs)
    except anthropic.AnthropicError as error:
        raise _provider_error(error, config) from None
    except ValueError as error:  # body that is not JSON or not a Message
        raise ProviderError("malformed", f"invalid response body from Anthropic: {error}") from None
    latency_ms = (time.perf_counter() - started) * 1000
    content_blocks = getattr(response, "content", None)
    if not isinstance(content_blocks, list):
        raise ProviderError("malformed", "Anthropic response has no content blocks")
    content = "".join(block.text for block in content_blocks if getattr(block, "type", None) == "text")
    reported = getattr(response, "usage", None)
    usage = from_anthropic(reported) if reported is not None else estimate_usage(messages, content, config.model)
    return ChatResult(
        content=content,
        usage=usage,
        model=getattr(response, "model", None) or config.model,
        latency_ms=latency_ms,
        attempts=1,
        usage_reported=reported is not None,
    )
