"""OpenAI-compatible chat completions over ``requests``.

Serves OpenAI, DeepSeek, Groq, Cerebras, OpenRouter, Mistral, Gemini's OpenAI endpoint, Ollama
and vLLM: ``base_url`` is the API root ending in ``/v1`` (e.g. ``https://api.openai.com/v1``).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import requests

from ..tokens import count_text_tokens
from ..usage import Usage, from_openai
from .base import (
    ChatRequest,
    ChatResult,
    ChatStream,
    ProviderConfig,
    ProviderError,
    StreamProgress,
    connection_error,
    estimate_usage,
    status_error,
    stream_broken_error,
    timeout_error,
    tool_call,
)
from .rate_limits import RateLimits, openai_rate_limits

# One session per process: keep-alive connections are reused across calls (and threads; the
# urllib3 pool behind it is thread-safe). Odoo serves requests from many threads at once, so
# each host keeps more connections than requests' default of 10.
POOL_SIZE = 64
_session = requests.Session()
for _scheme in ("http://", "https://"):
    _session.mount(_scheme, requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=POOL_SIZE))
# The environment's proxies and CA bundle are read once per API root (_environment_settings), as httpx reads
# them once per client: requests would read them, and ~/.netrc, again on every request (0.15-0.2 ms a call).
_session.trust_env = False


@functools.lru_cache(maxsize=64)
def _environment_settings(base_url: str) -> dict[str, Any]:
    """The `proxies` and `verify` that the environment sets for requests to `base_url` (HTTPS_PROXY, NO_PROXY,
    REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE), as a session trusting the environment merges them."""
    settings = requests.Session().merge_environment_settings(base_url, {}, None, None, None)
    return {"proxies": settings["proxies"], "verify": settings["verify"]}


def _wire_message(message: dict) -> dict:
    """A gateway message in the chat completions format: tool calls carry their arguments as JSON text."""
    wire: dict[str, Any] = {"role": message["role"], "content": message["content"]}
    if message.get("tool_calls"):
        wire["content"] = message["content"] or None
        wire["tool_calls"] = [
            {"id": call["id"], "type": "function",
             "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}
            for call in message["tool_calls"]
        ]
    if message["role"] == "tool":
        wire["tool_call_id"] = message["tool_call_id"]
    return wire


def _tool_param(tool: dict) -> dict:
    function = {"name": tool["name"], "parameters": tool["parameters"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _payload(config: ProviderConfig, request: ChatRequest) -> dict:
    payload: dict[str, Any] = {
        "model": config.model,
        "messages": [_wire_message(m) for m in request.messages],
        "max_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        payload["temperature"] = request.temperature
    if request.tools:
        payload["tools"] = [_tool_param(tool) for tool in request.tools]
    tool_choice = request.tool_choice
    if tool_choice is not None:
        payload["tool_choice"] = (
            {"type": "function", "function": {"name": tool_choice["name"]}}
            if isinstance(tool_choice, dict) else tool_choice
        )
    if request.response_format is not None:
        schema = {"name": "response", "schema": request.response_format}
        payload["response_format"] = {"type": "json_schema", "json_schema": schema}
    return payload


def _headers(config: ProviderConfig) -> dict[str, str]:
    """The bearer key, when there is one: a local server (Ollama, vLLM) may need none."""
    return {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}


def _post(
    config: ProviderConfig, payload: dict, path: str = "/chat/completions", stream: bool = False
) -> requests.Response:
    """POST the request, translating transport failures (timeout checked before its parent)."""
    base_url = config.base_url.rstrip("/")
    try:
        return _session.post(
            base_url + path,
            json=payload,
            headers=_headers(config),
            timeout=config.timeout,
            stream=stream,
            **_environment_settings(base_url),
        )
    except requests.Timeout:
        raise timeout_error(config.base_url, config.timeout) from None
    except requests.RequestException as error:
        raise connection_error(config.base_url, error) from None


def _status_error(response: requests.Response, config: ProviderConfig) -> ProviderError:
    return status_error(response.status_code, _error_detail(response), response.headers, config, openai_rate_limits)


def _rate_limits(response: requests.Response) -> RateLimits | None:
    return openai_rate_limits(response.headers, datetime.now(timezone.utc))


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


def _reply_message(body: dict) -> dict:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProviderError("malformed", "response has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ProviderError("malformed", "response choice has no message")
    return message


def _tool_calls(message: dict) -> list[dict]:
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ProviderError("malformed", "tool_calls is not a list")
    functions = [(call.get("id"), call.get("function") or {}) for call in calls if isinstance(call, dict)]
    return [tool_call(call_id, function.get("name"), function.get("arguments")) for call_id, function in functions]


def chat_openai_compatible(config: ProviderConfig, request: ChatRequest) -> ChatResult:
    """One chat completion (no retries); transport, HTTP and parsing failures raise ProviderError."""
    started = time.perf_counter()
    response = _post(config, _payload(config, request))
    if response.status_code >= 400:
        raise _status_error(response, config)
    body = _json_body(response, config)
    latency_ms = (time.perf_counter() - started) * 1000
    message = _reply_message(body)
    # content is null for refusals and tool calls: an empty reply, not a broken response.
    content = message.get("content") or ""
    reported = body.get("usage")
    usage_reported = isinstance(reported, dict)
    return ChatResult(
        content=content,
        usage=from_openai(reported) if usage_reported else estimate_usage(request.messages, content, config.model),
        model=body.get("model") or config.model,
        latency_ms=latency_ms,
        attempts=1,
        usage_reported=usage_reported,
        tool_calls=_tool_calls(message),
        rate_limits=_rate_limits(response),
    )


def stream_openai_compatible(config: ProviderConfig, request: ChatRequest) -> ChatStream:
    """Open a streamed chat completion (no retries): ``stream: true``, the usage asked for in a last chunk
    (``stream_options.include_usage``). HTTP errors raise ProviderError here, a broken stream while it is read."""
    payload = _payload(config, request)
    payload.update(stream=True, stream_options={"include_usage": True})
    response = _post(config, payload, stream=True)
    if response.status_code >= 400:
        raise _status_error(response, config)
    progress = StreamProgress(model=config.model)
    return ChatStream(
        _stream_chunks(response, progress, config), progress, request, response.close, _rate_limits(response)
    )


def _stream_chunks(response: requests.Response, progress: StreamProgress, config: ProviderConfig) -> Iterator[str]:
    """The text of the server-sent chunks until ``data: [DONE]``; the usage of the last chunk and the
    tool call fragments go to ``progress``."""
    try:
        for line in response.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            data = line[len("data:"):].strip()
            if data == "[DONE]":
                return
            chunk = json.loads(data)
            if not isinstance(chunk, dict):
                raise ValueError("a chunk is not a JSON object")
            progress.model = chunk.get("model") or progress.model
            if isinstance(chunk.get("usage"), dict):
                usage = from_openai(chunk["usage"])
                progress.reported_input = usage
                progress.reported_output = usage.output_tokens
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                for call in delta.get("tool_calls") or []:
                    function = call.get("function") or {}
                    progress.add_tool_fragment(call.get("index", 0), call.get("id"), function.get("name"),
                                               function.get("arguments"))
                if delta.get("content"):
                    yield delta["content"]
    except requests.RequestException as error:
        raise stream_broken_error(config.base_url, error) from None
    except (ValueError, AttributeError, TypeError) as error:
        raise ProviderError("malformed", f"unreadable stream chunk: {error}", secret=config.api_key) from None


@dataclass
class EmbeddingResult:
    """The vectors of a batch of texts, in their order, and the tokens the provider counted."""

    vectors: list[list[float]]
    usage: Usage
    model: str
    latency_ms: float
    attempts: int
    usage_reported: bool
    rate_limits: RateLimits | None = None


def embed_openai_compatible(config: ProviderConfig, texts: list[str]) -> EmbeddingResult:
    """One ``/embeddings`` request for ``texts`` (no retries); failures raise ProviderError."""
    started = time.perf_counter()
    response = _post(config, {"model": config.model, "input": texts}, path="/embeddings")
    if response.status_code >= 400:
        raise _status_error(response, config)
    body = _json_body(response, config)
    data = body.get("data")
    if not isinstance(data, list) or len(data) != len(texts):
        raise ProviderError("malformed", "the embeddings response has not one vector per text")
    try:
        vectors = [[float(value) for value in item["embedding"]] for item in sorted(data, key=lambda i: i["index"])]
    except (KeyError, TypeError, ValueError):
        raise ProviderError("malformed", "the embeddings response holds an unreadable vector") from None
    reported = body.get("usage")
    usage_reported = isinstance(reported, dict)
    tokens = (
        int(reported.get("prompt_tokens") or 0)
        if usage_reported
        else sum(count_text_tokens(text, config.model).tokens for text in texts)
    )
    return EmbeddingResult(
        vectors=vectors,
        usage=Usage(input_tokens=tokens),
        model=body.get("model") or config.model,
        latency_ms=(time.perf_counter() - started) * 1000,
        attempts=1,
        usage_reported=usage_reported,
        rate_limits=_rate_limits(response),
    )
