"""A fake LLM provider on 127.0.0.1 speaking the real wire protocols, for tests and benchmarks. Over 400 lines:
it speaks both protocols with streaming and serves the providers' usage and cost reports.

Anthropic ``POST /v1/messages`` and OpenAI ``POST /v1/chat/completions`` and ``POST /v1/embeddings``,
with real request validation, real response shapes and deterministic token counts (``core.tokens``
counts of the request and reply texts), so tests can predict the usage a call reports. A request with
``stream: true`` is answered with server-sent events in the provider's format (Anthropic's
message_start ... message_stop events; OpenAI's chunks, the usage in a last chunk when asked by
``stream_options.include_usage``). Requests offering ``tools`` are answered with the tool calls set by
``set_tool_calls`` (or the forced tool's call); ``response_format`` replies hold the reply text.
Faults are scripted per request with ``queue_responses``. Every answer, an error one included, carries the
provider's rate-limit headers in its protocol's format (Anthropic's ``anthropic-ratelimit-*`` with RFC 3339
reset times, OpenAI's ``x-ratelimit-*`` with durations), their figures set by ``set_rate_limits``.

It also serves the organization reports an admin key reads (Anthropic's ``usage_report/messages`` and
``cost_report``, OpenAI's ``organization/usage/completions``, ``usage/embeddings`` and ``organization/costs``),
computed from the calls it really answered (billed at genai-prices unless ``set_billed_price`` says
otherwise; Anthropic's 1-hour cache writes at their own rate), plus what a test adds with
``add_billed_usage``, on the day they come or on ``set_billing_day``'s; days after ``set_reported_through``
are not reported yet.

    with FakeProviderServer() as server:
        server.queue_responses([{'status': 429, 'retry_after': '1'}])
        ...  # point a client at server.anthropic_base_url or server.openai_base_url
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..core.pricing import lookup_price, token_rates
from ..core.tokens import count_text_tokens

ANTHROPIC_VERSION = "2023-06-01"
VALID_KEY_PREFIX = "sk-test"
# Admin keys (Anthropic's sk-ant-admin..., OpenAI's sk-admin-...) read the organization's reports, and only them.
ADMIN_KEY_PREFIX = "sk-test-admin"
# The kinds of token billed apart, each at its rate: the 5-minute cache writes and the 1-hour ones apart.
BILLED_KINDS = ("uncached_input", "cache_read", "cache_write", "cache_write_1h", "output")
# The APIs a billed call went through: its report, and genai-prices' price list the fake bills it from.
REPORT_APIS = {"messages": "anthropic", "completions": "openai", "embeddings": "openai"}
SECRET_HEADERS = ("x-api-key", "authorization")
DEFAULT_REPLY = "This is a reply from the fake provider."
# What the rate-limit headers say by default: plenty left, full again a second after the answer.
DEFAULT_RATE_LIMITS = {"requests": 999, "tokens": 99_000, "requests_reset": 1.0, "tokens_reset": 1.0}
# The limits the headers name beside what remains (``...-limit``), by dimension.
_RATE_LIMIT_CEILINGS = {"requests": 1000, "tokens": 100_000, "input_tokens": 80_000, "output_tokens": 20_000}

# Anthropic's error types by status (https://docs.anthropic.com/en/api/errors).
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 429: "rate_limit_exceeded"}


class RequestError(Exception):
    """A client error the handler answers with an HTTP error in the provider's format."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _tokens(text: str) -> int:
    return count_text_tokens(text).tokens


def _text_of(content: Any) -> str:
    """Text of a message content: a string or a list of content blocks (text, tool_use, tool_result)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_block_text(block) for block in content if isinstance(block, dict))
    raise RequestError(400, "content must be a string or a list of content blocks")


def _block_text(block: dict) -> str:
    if block.get("type") == "tool_use":
        return block.get("name", "") + json.dumps(block.get("input"))
    if block.get("type") == "tool_result":
        return _text_of(block.get("content") or "")
    return block.get("text", "")


def _openai_message_text(message: dict) -> str:
    """Text of an OpenAI message: its content, and the calls of an assistant's tool calls."""
    calls = message.get("tool_calls") or []
    if message.get("content") is None and calls:
        content = ""
    else:
        content = _text_of(message.get("content"))
    return content + "".join(
        call.get("function", {}).get("name", "") + call.get("function", {}).get("arguments", "") for call in calls
    )


def _tools_tokens(body: dict) -> int:
    """Tokens of the tool definitions a request offers: the model reads them as part of the prompt."""
    return _tokens(json.dumps(body["tools"])) if body.get("tools") else 0


def _pieces(text: str, size: int = 3) -> list[str]:
    """``text`` cut into the pieces a stream delivers: a few words each, nothing lost."""
    words = text.split(" ")
    return [" ".join(words[i : i + size]) + (" " if i + size < len(words) else "") for i in range(0, len(words), size)]


def api_key_id(key: str | None) -> str | None:
    """The id the provider's console shows for an API key, as its reports name it."""
    return "apikey_" + hashlib.sha256(key.encode()).hexdigest()[:16] if key else None


def _rfc3339_after(seconds: float) -> str:
    """The time ``seconds`` from now as Anthropic writes its resets (``2026-12-06T10:00:03Z``)."""
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _go_duration(seconds: float) -> str:
    """``seconds`` as OpenAI writes its resets, a Go duration: ``6m0s``, ``1s``, ``20ms``, ``1h0m0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:g}s"
    if minutes or hours:
        text = f"{int(minutes)}m{text}"
    if hours:
        text = f"{int(hours)}h{text}"
    return text


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()


def _vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit-free embedding of ``text``."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [round(digest[i % len(digest)] / 255 - 0.5, 6) for i in range(dimensions)]


class _State:
    """Settings and records shared by the handler threads, guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        # Requests still sleeping through a latency from before the reset answer no one.
        self.generation = getattr(self, "generation", 0) + 1
        self.reply = DEFAULT_REPLY
        # set_replies: the texts of the following answers in turn (their lengths spread like real answers').
        self.replies: list[str] = []
        self.reply_turn = 0
        self.latency = 0.0
        self.key_required = True
        self.cached_tokens = 0
        self.faults: deque[dict] = deque()
        self.requests: list[dict] = []
        self.cached_prefixes: set[str] = set()
        self.last_usage: dict | None = None
        self.tool_calls: list[dict] = []
        self.chunk_delay = 0.0
        self.rate_limits: dict | None = dict(DEFAULT_RATE_LIMITS)
        # The organization's bill: one entry per answered call or added usage, the prices that differ
        # from genai-prices' ({model: {kind: USD per million}}), the last day reported (None: today).
        self.billed: list[dict] = []
        self.billed_prices: dict[str, dict[str, float]] = {}
        self.reported_through: date | None = None
        self.model_snapshots: dict[str, str] = {}
        # The day the bill puts answered calls and added usage on (None: the day they come).
        self.billing_day: date | None = None

    def next_fault(self) -> dict:
        with self.lock:
            return self.faults.popleft() if self.faults else {}

    def take_reply(self) -> str:
        """The text of the next answer (the lock held): the next of set_replies' texts in turn, else set_reply's."""
        if not self.replies:
            return self.reply
        self.reply_turn += 1
        return self.replies[(self.reply_turn - 1) % len(self.replies)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes headers and body separately; without TCP_NODELAY some clients wait
    # 40 ms for a delayed ACK, which would swamp every latency measurement.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        routes = {
            "/v1/messages": self._anthropic, "/v1/chat/completions": self._openai, "/v1/embeddings": self._embeddings,
        }
        # urlsplit: the absolute-form target a proxy receives (tests of the environment's proxy) is routed too.
        route = routes.get(urlsplit(self.path).path)
        body = self._read_json()
        self._record(body)
        if route is None:
            self._send_json(404, {"error": {"type": "not_found_error", "message": f"unknown path {self.path}"}})
            return
        route(body)

    def do_GET(self) -> None:
        self._record(None)
        routes = {
            "/v1/organizations/usage_report/messages": (self._anthropic_usage_report, _anthropic_error),
            "/v1/organizations/cost_report": (self._anthropic_cost_report, _anthropic_error),
            "/v1/organization/usage/completions": (self._openai_usage_report("completions"), _openai_error),
            "/v1/organization/usage/embeddings": (self._openai_usage_report("embeddings"), _openai_error),
            "/v1/organization/costs": (self._openai_cost_report, _openai_error),
        }
        url = urlsplit(self.path)
        if url.path not in routes:
            self._send_json(404, {"error": {"type": "not_found_error", "message": f"unknown path {self.path}"}})
            return
        build, error_body = routes[url.path]
        query = {name.removesuffix("[]"): values for name, values in parse_qs(url.query).items()}
        self._serve(query, self._validate_report_query, build, error_body)

    # -- request plumbing -------------------------------------------------------------------

    def _read_json(self) -> Any:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def _record(self, body: Any) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        for name in SECRET_HEADERS:
            if name in headers:
                headers[name] = "***"
        with self.server.state.lock:
            self.server.state.requests.append({"path": self.path, "headers": headers, "json": body})

    def _send(
        self, status: int, payload: bytes, headers: dict[str, str] | None = None, length: int | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) if length is None else length))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout); nothing left to answer.
            self.close_connection = True

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode("utf-8"), headers)

    def _send_events(self, events: list[bytes], fault: dict, headers: dict[str, str] | None = None) -> None:
        """Server-sent events, one HTTP chunk each; ``disconnect_after`` drops the connection after that
        many events, without the end of the chunked body, as a provider that fails mid-stream does."""
        cut = fault.get("disconnect_after")
        delay = fault.get("chunk_delay", self.server.state.chunk_delay)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            for index, event in enumerate(events):
                if cut is not None and index >= cut:
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if delay and index:
                    time.sleep(delay)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            # The client stopped reading: a consumer that closed its stream early.
            self.close_connection = True

    def _serve(
        self,
        body: Any,
        validate: Callable[[Any], None],
        build: Callable[[dict, dict], dict],
        error_body: Callable[[int, str], dict],
    ) -> None:
        """Shared flow: latency, auth and validation, scripted fault, then the response."""
        state = self.server.state
        generation = state.generation
        time.sleep(state.latency)
        if generation != state.generation:
            # Its client timed out and the test moved on: touch neither the faults nor the usage
            # queued for the next requests.
            self.close_connection = True
            return
        try:
            validate(body)
        except RequestError as error:
            self._send_json(error.status, error_body(error.status, error.message))
            return
        fault = state.next_fault()
        limits = self._rate_limit_headers(fault)
        if "status" in fault:
            self._send_error_fault(fault, error_body, limits)
        elif fault.get("malformed"):
            self._send(200, b'{"id": "broken", "content": [')
        elif "body" in fault:
            self._send_json(200, fault["body"], limits)
        elif fault.get("truncated"):
            payload = json.dumps(build(body, fault)).encode("utf-8")
            self._send(200, payload[: len(payload) // 2], limits, length=len(payload))
            self.close_connection = True
        elif body.get("stream") is True:
            events = self._anthropic_events if self.path.startswith("/v1/messages") else self._openai_events
            self._send_events(events(body, build(body, fault)), fault, limits)
        else:
            self._send_json(200, build(body, fault), limits)

    def _rate_limit_headers(self, fault: dict) -> dict[str, str]:
        """The rate-limit headers of this answer in the protocol's own format: the state's figures, those of
        ``fault['rate_limits']`` over them. A figure set to None sends no header; a string is sent as it is."""
        with self.server.state.lock:
            figures = self.server.state.rate_limits
        if figures is None:
            return {}
        figures = {**figures, **fault.get("rate_limits", {})}
        anthropic = self.path.startswith("/v1/messages")
        headers = {}
        for dimension, ceiling in _RATE_LIMIT_CEILINGS.items():
            remaining, reset = figures.get(dimension), figures.get(f"{dimension}_reset", 1.0)
            if remaining is None or (not anthropic and dimension not in ("requests", "tokens")):
                continue
            if anthropic:
                name = "anthropic-ratelimit-" + dimension.replace("_", "-")
                headers |= {f"{name}-limit": str(ceiling), f"{name}-remaining": str(remaining)}
                if reset is not None:
                    headers[f"{name}-reset"] = reset if isinstance(reset, str) else _rfc3339_after(reset)
            else:
                headers |= {f"x-ratelimit-limit-{dimension}": str(ceiling),
                            f"x-ratelimit-remaining-{dimension}": str(remaining)}
                if reset is not None:
                    headers[f"x-ratelimit-reset-{dimension}"] = reset if isinstance(reset, str) else _go_duration(reset)
        return headers

    def _send_error_fault(
        self, fault: dict, error_body: Callable[[int, str], dict], headers: dict[str, str] | None = None
    ) -> None:
        headers = dict(headers or {})
        if "retry_after" in fault:
            headers["Retry-After"] = str(fault["retry_after"])
        if "retry_after_ms" in fault:
            headers["retry-after-ms"] = str(fault["retry_after_ms"])
        status = fault["status"]
        self._send_json(status, error_body(status, fault.get("message", f"scripted error {status}")), headers)

    def _bearer_token(self) -> str | None:
        authorization = self.headers.get("Authorization") or ""
        return authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else None

    def _check_key(self, key: str | None) -> None:
        if key is None and not self.server.state.key_required:
            return  # a local server without authentication (Ollama, vLLM) ignores a missing key
        if not key or not key.startswith(VALID_KEY_PREFIX):
            # Real providers echo (part of) the key; echo it whole so tests prove it is redacted.
            raise RequestError(401, f"invalid API key: {key}")

    # -- Anthropic Messages API -------------------------------------------------------------

    def _anthropic(self, body: Any) -> None:
        self._serve(body, self._validate_anthropic, self._anthropic_message, _anthropic_error)

    def _validate_anthropic(self, body: Any) -> None:
        # Older SDKs send x-api-key, newer ones a bearer token; the API accepts both.
        self._check_key(self.headers.get("x-api-key") or self._bearer_token())
        if not self.headers.get("anthropic-version"):
            raise RequestError(400, "anthropic-version: header is required")
        if not isinstance(body, dict):
            raise RequestError(400, "request body must be a JSON object")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise RequestError(400, "model: field required")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise RequestError(400, "max_tokens: must be a positive integer")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "messages: at least one message is required")
        for index, message in enumerate(messages):
            expected = "user" if index % 2 == 0 else "assistant"
            if not isinstance(message, dict) or message.get("role") != expected:
                detail = "roles must alternate user/assistant, starting with user"
                raise RequestError(400, f"messages.{index}.role: {detail}")
            _text_of(message.get("content"))
        self._validate_tools(body.get("tools"), ("name", "input_schema"))

    @staticmethod
    def _validate_tools(tools: Any, keys: tuple[str, ...]) -> None:
        if tools is None:
            return
        if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
            raise RequestError(400, "tools: must be a list of objects")
        for index, tool in enumerate(tools):
            spec = tool.get("function", tool) if "function" in keys else tool
            for key in keys:
                if key != "function" and key not in spec:
                    raise RequestError(400, f"tools.{index}.{key}: field required")

    def _tool_calls(self, body: dict, forced: str | None) -> list[dict]:
        """The calls the model makes: those set for the offered tools, else the forced tool's, its
        arguments the reply text when it is a JSON object."""
        offered = {
            (tool.get("function") or tool).get("name") for tool in body.get("tools") or [] if isinstance(tool, dict)
        }
        with self.server.state.lock:
            calls = [call for call in self.server.state.tool_calls if call["name"] in offered]
            reply = self.server.state.reply
        if forced and not any(call["name"] == forced for call in calls):
            try:
                arguments = json.loads(reply)
            except ValueError:
                arguments = None
            calls = [{"name": forced, "arguments": arguments}] if isinstance(arguments, dict) else []
        return [{"id": f"call_{uuid.uuid4().hex[:12]}", **call} for call in calls]

    def _anthropic_message(self, body: dict, fault: dict) -> dict:
        state = self.server.state
        system = body.get("system") or ""
        system_text = _text_of(system)
        prompt_tokens = _tokens(system_text) + sum(_tokens(_text_of(m["content"])) for m in body["messages"])
        prompt_tokens += _tools_tokens(body)
        cached = _tokens(system_text) if _has_cache_control(system) else 0
        with state.lock:
            reply = state.take_reply()
            seen = system_text in state.cached_prefixes
            if cached:
                state.cached_prefixes.add(system_text)
        usage = {
            "input_tokens": prompt_tokens - cached,
            "output_tokens": _tokens(reply),
            "cache_read_input_tokens": cached if seen else 0,
            "cache_creation_input_tokens": 0 if seen else cached,
        }
        choice = body.get("tool_choice") or {}
        forced = choice.get("name") if isinstance(choice, dict) and choice.get("type") == "tool" else None
        calls = [] if choice == {"type": "none"} else self._tool_calls(body, forced)
        content: list[dict] = [{"type": "text", "text": reply}]
        if calls:
            content = [
                {"type": "tool_use", "id": call["id"], "name": call["name"], "input": call["arguments"]}
                for call in calls
            ]
            usage["output_tokens"] = sum(_tokens(_block_text(block)) for block in content)
        usage = fault.get("usage", usage)
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": "tool_use" if calls else "end_turn",
            "stop_sequence": None,
        }
        return self._with_usage(message, usage, fault)

    @staticmethod
    def _anthropic_events(body: dict, message: dict) -> list[bytes]:
        """A Messages API answer as its stream: message_start with the prompt's usage (cache tokens
        included), each content block in deltas, then message_delta with the output tokens."""
        usage = message.pop("usage", None)
        content = message.pop("content")
        start = {**message, "content": [], "stop_reason": None}
        if usage is not None:
            start["usage"] = {**usage, "output_tokens": 1}
        events = [("message_start", {"type": "message_start", "message": start}), ("ping", {"type": "ping"})]
        for index, block in enumerate(content):
            if block["type"] == "text":
                empty, deltas = {"type": "text", "text": ""}, [
                    {"type": "text_delta", "text": piece} for piece in _pieces(block["text"])
                ]
            else:
                empty = {**block, "input": {}}
                arguments = json.dumps(block["input"])
                deltas = [{"type": "input_json_delta", "partial_json": arguments[i : i + 16]}
                          for i in range(0, len(arguments), 16)]
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": empty}))
            events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                       for delta in deltas]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                                                    "stop_sequence": None}}
        delta["usage"] = {"output_tokens": usage["output_tokens"]} if usage is not None else {"output_tokens": 0}
        events += [("message_delta", delta), ("message_stop", {"type": "message_stop"})]
        return [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]

    # -- OpenAI chat completions ------------------------------------------------------------

    def _openai(self, body: Any) -> None:
        self._serve(body, self._validate_openai, self._chat_completion, _openai_error)

    def _validate_openai(self, body: Any) -> None:
        self._check_key(self._bearer_token())
        if not isinstance(body, dict):
            raise RequestError(400, "request body must be a JSON object")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise RequestError(400, "you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "messages: expected a non-empty array")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "tool"):
                raise RequestError(400, f"messages[{index}].role: invalid role")
            if message["role"] == "tool" and not message.get("tool_call_id"):
                raise RequestError(400, f"messages[{index}].tool_call_id: required for a tool message")
            _openai_message_text(message)
        self._validate_tools(body.get("tools"), ("function", "name"))
        response_format = body.get("response_format")
        if response_format is not None and (
            not isinstance(response_format, dict)
            or response_format.get("type") not in ("text", "json_object", "json_schema")
            or (response_format["type"] == "json_schema"
                and not isinstance((response_format.get("json_schema") or {}).get("schema"), dict))
        ):
            raise RequestError(400, "response_format: expected text, json_object or json_schema with a schema")
        options = body.get("stream_options")
        if options is not None and (body.get("stream") is not True or not isinstance(options, dict)):
            raise RequestError(400, "stream_options: only allowed with stream: true")

    def _chat_completion(self, body: dict, fault: dict) -> dict:
        state = self.server.state
        with state.lock:
            reply = state.take_reply()
            cached_tokens = fault.get("cached_tokens", state.cached_tokens)
        prompt_tokens = sum(_tokens(_openai_message_text(m)) for m in body["messages"]) + _tools_tokens(body)
        choice = body.get("tool_choice")
        forced = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        calls = [] if choice == "none" else self._tool_calls(body, forced)
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        if calls:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": call["id"], "type": "function",
                 "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}
                for call in calls
            ]}
        completion_tokens = _tokens(_openai_message_text(message))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": min(cached_tokens, prompt_tokens)},
        }
        usage = fault.get("usage", usage)
        completion = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        }
        return self._with_usage(completion, usage, fault)

    @staticmethod
    def _openai_events(body: dict, completion: dict) -> list[bytes]:
        """A chat completion as its stream of chunks; the usage in a last chunk without choices, only when
        ``stream_options.include_usage`` asks for it."""
        base = {key: completion[key] for key in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
        choice = completion["choices"][0]
        message = choice["message"]

        def chunk(delta: dict, finish: str | None = None) -> dict:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": piece}) for piece in _pieces(message["content"] or "") if message["content"]]
        for index, call in enumerate(message.get("tool_calls") or []):
            arguments = call["function"]["arguments"]
            chunks.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                                 "function": {"name": call["function"]["name"], "arguments": ""}}]}))
            chunks += [chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[i : i + 16]}}]})
                       for i in range(0, len(arguments), 16)]
        chunks.append(chunk({}, choice["finish_reason"]))
        if (body.get("stream_options") or {}).get("include_usage") and "usage" in completion:
            chunks.append({**base, "choices": [], "usage": completion["usage"]})
        return [f"data: {json.dumps(data)}\n\n".encode() for data in chunks] + [b"data: [DONE]\n\n"]

    # -- OpenAI embeddings ------------------------------------------------------------------

    def _embeddings(self, body: Any) -> None:
        self._serve(body, self._validate_embeddings, self._embedding_list, _openai_error)

    def _validate_embeddings(self, body: Any) -> None:
        self._check_key(self._bearer_token())
        if not isinstance(body, dict):
            raise RequestError(400, "request body must be a JSON object")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise RequestError(400, "you must provide a model parameter")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            raise RequestError(400, "input: expected a non-empty string or array of non-empty strings")
        if len(texts) > 2048:
            raise RequestError(400, "input: at most 2048 inputs per request")

    def _embedding_list(self, body: dict, fault: dict) -> dict:
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        dimensions = body.get("dimensions") or 8
        tokens = sum(_tokens(text) for text in texts)
        response = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": _vector(text, dimensions)}
                for index, text in enumerate(texts)
            ],
            "model": body["model"],
        }
        return self._with_usage(response, fault.get("usage", {"prompt_tokens": tokens, "total_tokens": tokens}), fault)

    def _with_usage(self, response: dict, usage: dict, fault: dict) -> dict:
        """Attach ``usage`` unless the fault drops it; remember what was reported, and bill the call (the
        provider did the work, whether or not the client reads the answer to its end)."""
        reported = None if fault.get("no_usage") else usage
        if reported is not None:
            response["usage"] = reported
        key = self.headers.get("x-api-key") or self._bearer_token()
        api = {"/v1/messages": "messages", "/v1/chat/completions": "completions"}.get(self.path.split("?")[0],
                                                                                       "embeddings")
        with self.server.state.lock:
            self.server.state.last_usage = reported
            model = self.server.state.model_snapshots.get(response["model"], response["model"])
            self.server.state.billed.append(_billed_entry(api, model, api_key_id(key), usage,
                                                          self.server.state.billing_day))
        return response

    # -- organization reports (admin key) ----------------------------------------------------

    def _validate_report_query(self, query: dict) -> None:
        key = self.headers.get("x-api-key") if "/organizations/" in self.path else self._bearer_token()
        if not key or not key.startswith(ADMIN_KEY_PREFIX):
            # Real providers echo (part of) the key; echo it whole so tests prove it is redacted.
            raise RequestError(401, f"invalid admin API key: {key}")
        if "/organizations/" in self.path and not self.headers.get("anthropic-version"):
            raise RequestError(400, "anthropic-version: header is required")
        for name in ("bucket_width",):
            if query.get(name, ["1d"]) != ["1d"]:
                raise RequestError(400, f"{name}: only 1d is served")
        try:
            if "/organizations/" in self.path:
                start = datetime.fromisoformat(query["starting_at"][0].replace("Z", "+00:00")).date()
                end = datetime.fromisoformat(query["ending_at"][0].replace("Z", "+00:00")).date()
            else:
                start = datetime.fromtimestamp(int(query["start_time"][0]), tz=timezone.utc).date()
                end = datetime.fromtimestamp(int(query["end_time"][0]), tz=timezone.utc).date()
            limit = int(query.get("limit", ["7"])[0])
            offset = int(query["page"][0].removeprefix("page_")) if "page" in query else 0
        except (KeyError, ValueError, IndexError):
            detail = "expected a start and an end time, a numeric limit and a page from next_page"
            raise RequestError(400, detail) from None
        if end <= start or not 1 <= limit <= 31 or offset < 0:
            raise RequestError(400, "the end must follow the start; limit between 1 and 31")
        query["_days"] = [start + timedelta(days=n) for n in range((end - start).days)]
        query["_limit"], query["_offset"] = limit, offset

    def _report_page(self, query: dict, bucket: Callable[[date, list[dict]], dict]) -> dict:
        """One page of daily buckets of the billed entries, up to the last day reported."""
        state = self.server.state
        with state.lock:
            through = state.reported_through or _utc_today()
            entries = list(state.billed)
        days = [day for day in query["_days"] if day <= through]
        offset, limit = query["_offset"], query["_limit"]
        page = days[offset : offset + limit]
        more = offset + limit < len(days)
        return {
            "data": [bucket(day, [entry for entry in entries if entry["day"] == day]) for day in page],
            "has_more": more,
            "next_page": f"page_{offset + limit}" if more else None,
        }

    def _anthropic_usage_report(self, query: dict, _fault: dict) -> dict:
        group_by = query.get("group_by", [])

        def bucket(day: date, entries: list[dict]) -> dict:
            results = []
            for (model, key_id), group in _grouped(entries, "messages", group_by).items():
                totals = _totals(group)
                results.append({
                    "api_key_id": key_id, "workspace_id": None, "model": model, "service_tier": "standard",
                    "context_window": "0-200k", "uncached_input_tokens": totals["uncached_input"],
                    "cache_read_input_tokens": totals["cache_read"],
                    "cache_creation": {"ephemeral_5m_input_tokens": totals["cache_write"],
                                       "ephemeral_1h_input_tokens": totals["cache_write_1h"]},
                    "output_tokens": totals["output"], "server_tool_use": {"web_search_requests": 0},
                })
            return {"starting_at": f"{day}T00:00:00Z", "ending_at": f"{day + timedelta(days=1)}T00:00:00Z",
                    "results": results}

        return self._report_page(query, bucket)

    def _anthropic_cost_report(self, query: dict, _fault: dict) -> dict:
        by_description = "description" in query.get("group_by", [])
        token_types = {"uncached_input": "uncached_input_tokens", "cache_read": "cache_read_input_tokens",
                       "cache_write": "cache_creation.ephemeral_5m_input_tokens",
                       "cache_write_1h": "cache_creation.ephemeral_1h_input_tokens", "output": "output_tokens"}

        def bucket(day: date, entries: list[dict]) -> dict:
            results = []
            # Priced by model, then summed into one amount when not grouped by description.
            for (model, _key), group in _grouped(entries, "messages", ["model"]).items():
                for kind, usd in self._billed_usd(model, group).items():
                    if usd or not by_description:
                        results.append({
                            # Lowest currency units (cents) as a decimal string, as Anthropic sends them.
                            "amount": str(usd * 100), "currency": "USD", "workspace_id": None,
                            "description": f"{model} {token_types[kind]}" if by_description else None,
                            "cost_type": "tokens" if by_description else None,
                            "model": model if by_description else None,
                            "token_type": token_types[kind] if by_description else None,
                            "service_tier": "standard" if by_description else None,
                            "context_window": "0-200k" if by_description else None,
                        })
            return {"starting_at": f"{day}T00:00:00Z", "ending_at": f"{day + timedelta(days=1)}T00:00:00Z",
                    "results": _merged_amounts(results) if not by_description else results}

        return self._report_page(query, bucket)

    def _openai_usage_report(self, api: str) -> Callable[[dict, dict], dict]:
        def build(query: dict, _fault: dict) -> dict:
            group_by = query.get("group_by", [])

            def bucket(day: date, entries: list[dict]) -> dict:
                results = []
                for (model, key_id), group in _grouped(entries, api, group_by).items():
                    totals = _totals(group)
                    result = {
                        "object": f"organization.usage.{api}.result",
                        "input_tokens": totals["uncached_input"] + totals["cache_read"],
                        "num_model_requests": totals["requests"], "project_id": None, "user_id": None,
                        "api_key_id": key_id, "model": model, "batch": None,
                    }
                    if api == "completions":
                        result |= {"output_tokens": totals["output"], "input_cached_tokens": totals["cache_read"],
                                   "input_audio_tokens": 0, "output_audio_tokens": 0}
                    results.append(result)
                return _openai_bucket(day, results)

            return {"object": "page", **self._report_page(query, bucket)}

        return build

    def _openai_cost_report(self, query: dict, _fault: dict) -> dict:
        by_line_item = "line_item" in query.get("group_by", [])
        parts = {"uncached_input": "input", "cache_read": "cached input", "output": "output"}

        def bucket(day: date, entries: list[dict]) -> dict:
            results = []
            for api in ("completions", "embeddings"):
                for (model, _key), group in _grouped(entries, api, ["model"]).items():
                    for kind, usd in self._billed_usd(model, group).items():
                        if usd:
                            results.append({
                                "object": "organization.costs.result",
                                "amount": {"value": float(usd), "currency": "usd"},
                                "line_item": f"{model}, {parts.get(kind, kind)}" if by_line_item else None,
                                "project_id": None,
                            })
            if not by_line_item:
                total = sum(result["amount"]["value"] for result in results)
                results = [{"object": "organization.costs.result", "amount": {"value": total, "currency": "usd"},
                            "line_item": None, "project_id": None}] if results else []
            return _openai_bucket(day, results)

        return {"object": "page", **self._report_page(query, bucket)}

    def _billed_usd(self, model: str, entries: list[dict]) -> dict[str, Decimal]:
        """The dollars of each kind of token of ``entries``: genai-prices' rates unless the test set others."""
        api = entries[0]["api"]
        with self.server.state.lock:
            overrides = dict(self.server.state.billed_prices.get(model, {}))
        price = lookup_price(model, REPORT_APIS[api])
        rates = (token_rates(price) if price else dict.fromkeys(BILLED_KINDS, 0)) | overrides
        totals = _totals(entries)
        return {kind: Decimal(totals[kind]) * Decimal(str(rates[kind])) / Decimal(1_000_000) for kind in BILLED_KINDS}


def _billed_entry(api: str, model: str, key_id: str | None, usage: dict, day: date | None = None,
                  requests: int = 1) -> dict:
    """One call on the organization's bill: its tokens of each kind billed apart, from the usage it reported
    in its API's own terms."""
    if api == "messages":
        cache_write = usage.get("cache_creation_input_tokens") or 0
        one_hour = min(cache_write, (usage.get("cache_creation") or {}).get("ephemeral_1h_input_tokens") or 0)
        tokens = {"uncached_input": usage.get("input_tokens", 0), "cache_read": usage.get("cache_read_input_tokens", 0),
                  "cache_write": cache_write - one_hour, "cache_write_1h": one_hour,
                  "output": usage.get("output_tokens", 0)}
    else:
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        tokens = {"uncached_input": usage.get("prompt_tokens", 0) - cached, "cache_read": cached, "cache_write": 0,
                  "cache_write_1h": 0, "output": usage.get("completion_tokens", 0)}
    return {"day": day or _utc_today(), "api": api, "model": model, "key_id": key_id, "requests": requests,
            **{kind: int(tokens[kind] or 0) for kind in BILLED_KINDS}}


def _grouped(entries: list[dict], api: str, group_by: list[str]) -> dict[tuple, list[dict]]:
    """Entries of ``api`` by (model, API key id), each None unless grouped by it."""
    groups: dict[tuple, list[dict]] = {}
    for entry in entries:
        if entry["api"] == api:
            model = entry["model"] if "model" in group_by else None
            groups.setdefault((model, entry["key_id"] if "api_key_id" in group_by else None), []).append(entry)
    return groups


def _totals(entries: list[dict]) -> dict[str, int]:
    return {name: sum(entry[name] for entry in entries) for name in (*BILLED_KINDS, "requests")}


def _merged_amounts(results: list[dict]) -> list[dict]:
    """Anthropic's cost results without group_by: one amount per bucket."""
    if not results:
        return []
    total = sum(Decimal(result["amount"]) for result in results)
    return [{**results[0], "amount": str(total)}]


def _openai_bucket(day: date, results: list[dict]) -> dict:
    start = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
    return {"object": "bucket", "start_time": int(start.timestamp()),
            "end_time": int((start + timedelta(days=1)).timestamp()), "results": results}


def _has_cache_control(system: Any) -> bool:
    return isinstance(system, list) and any(isinstance(b, dict) and b.get("cache_control") for b in system)


def _anthropic_error(status: int, message: str) -> dict:
    error_type = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _openai_error(status: int, message: str) -> dict:
    error_type = _OPENAI_ERROR_TYPES.get(status, "server_error")
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class FakeProviderServer:
    """The fake provider; a context manager that serves on a free loopback port."""

    def __init__(self) -> None:
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> FakeProviderServer:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        self._server = _Server(self._state)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("FakeProviderServer is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for the anthropic SDK (it appends ``/v1/messages``)."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """Base URL for OpenAI-compatible clients (they append ``/chat/completions``)."""
        return self.url + "/v1"

    @property
    def requests(self) -> list[dict]:
        """Received requests: ``{'path', 'headers' (secrets masked), 'json'}``, oldest first."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def last_usage(self) -> dict | None:
        """The usage block of the last successful response, as sent (None if it had none)."""
        with self._state.lock:
            return self._state.last_usage

    def set_reply(self, text: str) -> None:
        """Text of every following reply."""
        with self._state.lock:
            self._state.reply = text
            self._state.replies = []

    def set_replies(self, texts: list[str]) -> None:
        """Texts of the following replies, one per answer in turn (then again from the first): answers whose
        lengths vary as real ones do, e.g. around 500 tokens for the calibrated-reservations benchmark."""
        with self._state.lock:
            self._state.replies = list(texts)
            self._state.reply_turn = 0

    def set_latency(self, seconds: float) -> None:
        """Delay before every following response."""
        with self._state.lock:
            self._state.latency = seconds

    def set_key_required(self, required: bool) -> None:
        """Whether requests without a key are refused (401), as hosted APIs do; local servers don't."""
        with self._state.lock:
            self._state.key_required = required

    def set_tool_calls(self, calls: list[dict]) -> None:
        """Tool calls ``[{'name', 'arguments': dict}]`` the model makes when a request offers those tools."""
        with self._state.lock:
            self._state.tool_calls = [dict(call) for call in calls]

    def set_chunk_delay(self, seconds: float) -> None:
        """Delay between the events of every following streamed answer."""
        with self._state.lock:
            self._state.chunk_delay = seconds

    def set_cached_tokens(self, count: int) -> None:
        """``prompt_tokens_details.cached_tokens`` reported by following OpenAI responses."""
        with self._state.lock:
            self._state.cached_tokens = count

    def set_rate_limits(self, figures: dict | None = None, **changes: Any) -> None:
        """What the rate-limit headers of the following answers say: ``requests``, ``tokens`` (and, Anthropic
        only, ``input_tokens``, ``output_tokens``) left, and each one's ``<name>_reset``, seconds from the
        answer. Keywords change the current figures (``set_rate_limits(requests=0, requests_reset=30)``); a
        dict replaces them all; None as the dict sends no rate-limit header at all (a local server). A figure
        None sends no header for it, a string is sent as it is (a malformed header)."""
        with self._state.lock:
            if figures is None and not changes:
                self._state.rate_limits = None
                return
            current = dict(figures) if figures is not None else dict(self._state.rate_limits or DEFAULT_RATE_LIMITS)
            self._state.rate_limits = {**current, **changes}

    def queue_responses(self, faults: list[dict]) -> None:
        """Script the next requests, one entry consumed per request that passes validation.

        Entries: ``{'status': 429, 'retry_after': '1'}`` (also ``retry_after_ms``, ``message``),
        ``{'status': 500}`` or any other status, ``{'malformed': True}`` (200 with a broken
        JSON body), ``{'truncated': True}`` (Content-Length beyond the body, then close),
        ``{'body': {...}}`` (200 with this JSON body instead of a real response),
        ``{'no_usage': True}``, ``{'usage': {...}}`` (usage block override) and
        ``{'cached_tokens': n}`` (OpenAI). A streamed answer also takes ``{'disconnect_after': n}``
        (the connection drops after n events) and ``{'chunk_delay': seconds}``. ``{'rate_limits': {...}}``
        sets this answer's rate-limit figures over those of ``set_rate_limits`` (a 429 with
        ``{'requests': 0}``, say). ``{}`` answers normally.
        """
        with self._state.lock:
            self._state.faults.extend(dict(fault) for fault in faults)

    def add_billed_usage(self, api: str, model: str, key: str, usage: dict, day: date | None = None,
                         requests: int = 1) -> None:
        """Usage the organization's reports show besides the calls answered here (another key's, another
        day's: ``day``, else the billing day): ``api`` messages, completions or embeddings, ``usage`` in that
        API's own terms."""
        with self._state.lock:
            day = day or self._state.billing_day
            self._state.billed.append(_billed_entry(api, model, api_key_id(key), usage, day, requests))

    def set_billed_price(self, model: str, kind: str, usd_per_mtok: float) -> None:
        """Bill ``kind`` tokens (uncached_input, cache_read, cache_write: the 5-minute writes, cache_write_1h,
        output) of ``model`` at this rate instead of genai-prices'."""
        if kind not in BILLED_KINDS:
            raise ValueError(f"kind must be one of {', '.join(BILLED_KINDS)}")
        with self._state.lock:
            self._state.billed_prices.setdefault(model, {})[kind] = usd_per_mtok

    def set_model_snapshot(self, alias: str, snapshot: str) -> None:
        """Report the calls to the model ``alias`` under ``snapshot``, as providers resolve their aliases."""
        with self._state.lock:
            self._state.model_snapshots[alias] = snapshot

    def set_billing_day(self, day: date | None) -> None:
        """Bill the following answered calls, and the usage added without a day, on ``day`` (None: the day
        they come), as a call answered before midnight UTC is on the bill of the day before."""
        with self._state.lock:
            self._state.billing_day = day

    def set_reported_through(self, day: date | None) -> None:
        """The last day the reports cover (None: today); later days are not reported yet."""
        with self._state.lock:
            self._state.reported_through = day

    def reset(self) -> None:
        """Forget settings, scripted faults, recorded requests, cached prompt prefixes and the bill."""
        with self._state.lock:
            self._state.reset()
