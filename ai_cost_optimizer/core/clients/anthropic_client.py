"""Claude through the official ``anthropic`` SDK (Messages API)."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import anthropic

from ..usage import from_anthropic
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
from .rate_limits import anthropic_rate_limits

# Structured output on Anthropic: a tool whose input schema is the wanted reply, forced by tool_choice;
# its input is the reply.
RESPONSE_TOOL = "json_response"
# The errors of the SDK's HTTP library (httpx, httpx2 in recent releases) while a stream is read.
_HTTP_ERROR = getattr(
    sys.modules[anthropic.DefaultHttpxClient.__mro__[1].__module__.split(".")[0]], "HTTPError", OSError
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


def _turn(message: dict) -> dict:
    """One message as an Anthropic turn: an assistant's tool calls become tool_use blocks, a tool
    result a user turn with a tool_result block."""
    if message["role"] == "tool":
        block = {"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": message["content"]}
        return {"role": "user", "content": [block]}
    if message.get("tool_calls"):
        blocks = [{"type": "text", "text": message["content"]}] if message["content"].strip() else []
        blocks += [
            {"type": "tool_use", "id": call["id"], "name": call["name"], "input": call["arguments"]}
            for call in message["tool_calls"]
        ]
        return {"role": "assistant", "content": blocks}
    return {"role": message["role"], "content": message["content"]}


def _blocks(content: str | list[dict]) -> list[dict]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _conversation(messages: list[dict]) -> list[dict]:
    """User/assistant turns, consecutive same-role messages merged as Anthropic expects."""
    turns: list[dict] = []
    for message in messages:
        if message["role"] == "system":
            continue
        turn = _turn(message)
        if not (turns and turns[-1]["role"] == turn["role"]):
            turns.append(turn)
        elif isinstance(turns[-1]["content"], str) and isinstance(turn["content"], str):
            turns[-1]["content"] += "\n\n" + turn["content"]
        else:
            turns[-1]["content"] = _blocks(turns[-1]["content"]) + _blocks(turn["content"])
    return turns


def _tool_param(tool: dict) -> dict:
    spec = {"name": tool["name"], "input_schema": tool["parameters"]}
    if tool.get("description"):
        spec["description"] = tool["description"]
    return spec


def _tool_choice_param(tool_choice: str | dict) -> dict:
    if isinstance(tool_choice, dict):
        return {"type": "tool", "name": tool_choice["name"]}
    return {"type": {"required": "any"}.get(tool_choice, tool_choice)}


def _tools_kwargs(request: ChatRequest, prompt_caching: bool) -> dict:
    """The tools and tool_choice parameters; a response format is a tool the model must call. With prompt
    caching, the tool list, which leads the prompt and rarely changes, is cached up to its last tool."""
    tools, tool_choice = request.tools, request.tool_choice
    if request.response_format is not None:
        tools = [{"name": RESPONSE_TOOL, "description": "Give the reply in this structure.",
                  "parameters": request.response_format}]
        tool_choice = {"name": RESPONSE_TOOL}
    kwargs: dict[str, Any] = {}
    if tools:
        kwargs["tools"] = [_tool_param(tool) for tool in tools]
        if prompt_caching:
            kwargs["tools"][-1]["cache_control"] = {"type": "ephemeral"}
    if tool_choice is not None:
        kwargs["tool_choice"] = _tool_choice_param(tool_choice)
    return kwargs


def _request_kwargs(config: ProviderConfig, request: ChatRequest) -> dict:
    messages = request.messages
    kwargs: dict[str, Any] = {
        "model": config.model, "max_tokens": request.max_tokens, "messages": _conversation(messages)
    }
    kwargs.update(_tools_kwargs(request, config.prompt_caching))
    system = _system_param([m["content"] for m in messages if m["role"] == "system"], config.prompt_caching)
    if system is not None:
        kwargs["system"] = system
    if request.temperature is not None:
        # Recent SDK releases dropped the ``temperature`` keyword from ``messages.create``;
        # extra_body sends the API field with every SDK version.
        kwargs["extra_body"] = {"temperature": request.temperature}
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
        return status_error(
            error.status_code, _api_message(error), error.response.headers, config, anthropic_rate_limits
        )
    return ProviderError("malformed", f"unexpected response from Anthropic: {error}", secret=config.api_key)


def chat_anthropic(config: ProviderConfig, request: ChatRequest) -> ChatResult:
    """One Messages API call (no retries); SDK and parsing failures raise ProviderError. With a
    ``response_format``, the content is the JSON text of the forced tool's input."""
    kwargs = _request_kwargs(config, request)
    started = time.perf_counter()
    try:
        # The raw response: its headers carry the rate limits, its parse() the Message create() returns.
        raw = _client(config).messages.with_raw_response.create(**kwargs)
        response = raw.parse()
    except anthropic.AnthropicError as error:
        raise _provider_error(error, config) from None
    except ValueError as error:  # body that is not JSON or not a Message
        raise ProviderError("malformed", f"invalid response body from Anthropic: {error}") from None
    latency_ms = (time.perf_counter() - started) * 1000
    rate_limits = anthropic_rate_limits(raw.headers, datetime.now(timezone.utc))
    content_blocks = getattr(response, "content", None)
    if not isinstance(content_blocks, list):
        raise ProviderError("malformed", "Anthropic response has no content blocks")
    content = "".join(block.text for block in content_blocks if getattr(block, "type", None) == "text")
    calls = [
        tool_call(block.id, block.name, block.input)
        for block in content_blocks
        if getattr(block, "type", None) == "tool_use"
    ]
    if request.response_format is not None:
        answer = [call for call in calls if call["name"] == RESPONSE_TOOL]
        content = json.dumps(answer[0]["arguments"]) if answer else content
        calls = [call for call in calls if call["name"] != RESPONSE_TOOL]
    reported = getattr(response, "usage", None)
    usage = (
        from_anthropic(reported) if reported is not None else estimate_usage(request.messages, content, config.model)
    )
    return ChatResult(
        content=content,
        usage=usage,
        model=getattr(response, "model", None) or config.model,
        latency_ms=latency_ms,
        attempts=1,
        usage_reported=reported is not None,
        tool_calls=calls,
        rate_limits=rate_limits,
    )


def stream_anthropic(config: ProviderConfig, request: ChatRequest) -> ChatStream:
    """Open a streamed Messages API call through the SDK (no retries): failures before the first event
    raise ProviderError here, later ones while the stream is read. With a ``response_format``, the
    forced tool's input streams as the text."""
    kwargs = _request_kwargs(config, request)
    try:
        events = _client(config).messages.create(**kwargs, stream=True)
    except anthropic.AnthropicError as error:
        raise _provider_error(error, config) from None
    progress = StreamProgress(model=config.model)
    rate_limits = anthropic_rate_limits(events.response.headers, datetime.now(timezone.utc))
    return ChatStream(_stream_chunks(events, progress, config), progress, request, events.close, rate_limits)


def _stream_chunks(events: Any, progress: StreamProgress, config: ProviderConfig) -> Iterator[str]:
    """The text of Anthropic's stream events; the usage of message_start (prompt and cache tokens) and
    message_delta (output tokens) and the tool calls go to ``progress``."""
    answers: set[int] = set()  # the blocks of the forced response tool, streamed as text
    try:
        for event in events:
            kind = event.type
            if kind == "message_start":
                progress.model = event.message.model or progress.model
                if event.message.usage is not None:
                    progress.reported_input = from_anthropic(event.message.usage)
            elif kind == "content_block_start" and event.content_block.type == "tool_use":
                block = event.content_block
                if block.name == RESPONSE_TOOL:
                    answers.add(event.index)
                else:
                    progress.add_tool_fragment(event.index, block.id, block.name, None)
            elif kind == "content_block_delta" and event.delta.type == "text_delta":
                yield event.delta.text
            elif kind == "content_block_delta" and event.delta.type == "input_json_delta":
                if event.index in answers:
                    yield event.delta.partial_json
                else:
                    progress.add_tool_fragment(event.index, None, None, event.delta.partial_json)
            elif kind == "message_delta" and event.usage is not None:
                progress.reported_output = event.usage.output_tokens
    except (anthropic.APIStatusError, anthropic.APITimeoutError) as error:
        # An error event in the stream, or a read that timed out: the provider's own error.
        raise _provider_error(error, config) from None
    except (anthropic.AnthropicError, _HTTP_ERROR, OSError, ValueError) as error:
        # Whatever class the SDK release carries it in (its connection error since 2.x), a stream that
        # stopped after it opened broke off: it did not fail to connect.
        raise stream_broken_error(config.base_url or "Anthropic", error) from None
