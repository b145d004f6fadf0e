"""OpenAI-compatible chat completions over ``requests``.

Serves OpenAI, DeepSeek, Groq, Cerebras, OpenRouter, Mistral, Gemini's OpenAI endpoint, Ollama
and vLLM: ``base_url`` is the API root ending in ``/v1`` (e.g. ``https://api.openai.com/v1``).
"""

from __future__ import annotations

import time
from typing import Any

import requests

from ..usage import from_openai
from .base import (
    ChatResult,
    ProviderConfig,
    ProviderError,
    connection_error,
    estimate_usage,
    status_error,
    timeout_error,
)

# One session per process: keep-alive connections are reused across calls (and threads; the
# urllib3 pool behind it is thread-safe). Odoo serves requests from many threads at once, so
# each host keeps more connections than requests' default of 10.
POOL_SIZE = 64
_session = requests.Session()
for _scheme in ("http://", "https://"):
    _session.mount(_scheme, requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=POOL_SIZE))


def _endpoint(base_url: str) -> str:
    return base_url.rstrip("/") + "/chat/completions"


def _payload(config: ProviderConfig, messages: list[dict], max_tokens: int, temperature: float | None) -> dict:
    payload: dict[str, Any] = {
        "model": config.model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "max_tokens": max_tokens,
    }
    if temperature is not None:
        payload["temperature"] = temperature
    return payload


def _headers(config: ProviderConfig) -> dict[str, str]:
    """The bearer key, when there is one: a local server (Ollama, vLLM) may need none."""
    return {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}


def _post(config: ProviderConfig, payload: dict) -> requests.Response:
    """POST the request, translating transport failures (timeout checked before its parent)."""
    try:
        return _session.post(
            _endpoint(config.base_url), json=payload, headers=_headers(config), timeout=config.timeout
        )
    except requests.Timeout:
        raise timeout_error(config.base_url, config.timeout) from None
    except requests.RequestException as error:
        raise connection_error(config.base_url, error) from None


def _error_detail(response: requests.Response) -> str:
    """The provider's error message from an OpenAI-style error body, else the raw text."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return response.text[:500] or response.reason


def _check_complete(response: requests.Response, config: ProviderConfig) -> None:
    """Older urllib3 releases return a body cut short by a dropped connection without an error.
    A compressed body's length is not comparable with the decoded content, so it is not checked."""
    declared = response.headers.get("Content-Length")
    compressed = response.headers.get("Content-Encoding")
    if declared and not compressed and declared.isdigit() and len(response.content) < int(declared):
        detail = f"The response from {config.base_url} was cut off at {len(response.content)} of {declared} bytes"
        raise ProviderError("connection", detail, secret=config.api_key)


def _json_body(response: requests.Response, config: ProviderConfig) -> dict:
    _check_complete(response, config)
    try:
        body = response.json()
    except ValueError:
        # Covers truncated and non-JSON bodies alike; the start of the text helps diagnose.
        detail = f"response is not JSON: {response.text[:200]!r}"
        raise ProviderError("malformed", detail, secret=config.api_key) from None
    if not isinstance(body, dict):
        raise ProviderError("malformed", f"response is JSON {type(body).__name__}, not an object")
    return body


def _reply_text(body: dict) -> str:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProviderError("malformed", "response has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ProviderError("malformed", "response choice has no message")
    # content is null for refusals and tool calls: an empty reply, not a broken response.
    return message.get("content") or ""


def chat_openai_compatible(
    config: ProviderConfig, messages: list[dict], max_tokens: int, temperature: float | None = None
) -> ChatResult:
    """One chat completion (no retries); transport, HTTP and parsing failures raise ProviderError."""
    started = time.perf_counter()
    response = _post(config, _payload(config, messages, max_tokens, temperature))
    if response.status_code >= 400:
        raise status_error(response.status_code, _error_detail(response), response.headers, config)
    body = _json_body(response, config)
    latency_ms = (time.perf_counter() - started) * 1000
    content = _reply_text(body)
    reported = body.get("usage")
    usage_reported = isinstance(reported, dict)
    return ChatResult(
        content=content,
        usage=from_openai(reported) if usage_reported else estimate_usage(messages, content, config.model),
        model=body.get("model") or config.model,
        latency_ms=latency_ms,
        attempts=1,
        usage_reported=usage_reported,
    )
