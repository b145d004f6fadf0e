"""Provider-neutral pieces of the wire clients: configuration, request, result, errors and retries."""

from __future__ import annotations

import email.utils
import json
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import datetime, timezone
from typing import Protocol, TypeVar

from ..tokens import count_message_tokens, count_text_tokens
from ..usage import Usage
from .rate_limits import RateLimits, refused

KINDS = ("anthropic", "openai_compatible", "demo")
RETRYABLE_KINDS = frozenset({"connection", "timeout", "rate_limit", "server", "overloaded"})
# Failures before any HTTP answer: their detail is a whole sentence naming the address and the cause.
TRANSPORT_KINDS = frozenset({"connection", "timeout"})
# A request the gateway did not send, as the provider reported no room left at its last answer (see
# ai.service.routing's _skip_rate_limited); its detail is a whole sentence too.
RATE_LIMITED_AHEAD = "rate_limited_ahead"
SENTENCE_KINDS = TRANSPORT_KINDS | {RATE_LIMITED_AHEAD}
# The cause of a failed connection, by the OS-level exception that HTTP libraries wrap several times.
_CONNECTION_CAUSES = (
    (ConnectionRefusedError, "connection refused"),
    (socket.gaierror, "host name not found"),
    (ssl.SSLError, "TLS handshake failed"),
    (ConnectionResetError, "connection closed by the server"),
    (TimeoutError, "timed out"),
    (OSError, "network error"),
)
_Result = TypeVar("_Result")


class CallConfig(Protocol):
    """What the shared error and retry functions read of a configuration: the key to mask out of error
    details, and the retry policy. ProviderConfig is one; billing's ReportSource (the providers' own usage
    and cost reports, read with an admin key) is another."""

    @property
    def api_key(self) -> str: ...

    @property
    def max_retries(self) -> int: ...

    @property
    def backoff_base(self) -> float: ...

    @property
    def max_backoff(self) -> float: ...


@dataclass
class ProviderConfig:
    """Where and how to call one provider model."""

    kind: str
    base_url: str
    api_key: str
    model: str
    timeout: float = 30.0
    max_retries: int = 2
    backoff_base: float = 0.5
    max_backoff: float = 20.0
    prompt_caching: bool = False

    def __repr__(self) -> str:
        # The dataclass repr would print the api key into logs and tracebacks.
        return f"ProviderConfig(kind={self.kind!r}, base_url={self.base_url!r}, model={self.model!r})"


@dataclass(frozen=True)
class ChatRequest:
    """What one chat call asks of a model, the same for every provider; ``ProviderConfig`` says where it goes.

    ``messages`` are validated gateway messages (``core.messages``: system, user, assistant with its
    ``tool_calls``, tool results). ``tools`` (``[{'name', 'description', 'parameters': JSON schema}]``),
    ``tool_choice`` ('auto', 'none', 'required' or ``{'name'}``) and ``response_format`` (the JSON schema
    of a structured reply) go out in each provider's format. Frozen: the retries of a call resend this
    very object, so no attempt can change what the next one sends.
    """

    messages: list[dict]
    max_tokens: int = 1024
    temperature: float | None = None
    _: KW_ONLY
    tools: list[dict] | None = None
    tool_choice: str | dict | None = None
    response_format: dict | None = None


@dataclass
class ChatResult:
    """One completed chat call.

    ``latency_ms`` is the provider's response time for the successful attempt; ``attempts``
    counts every attempt made. ``usage_reported`` is False when the provider sent no usage and
    ``usage`` is an offline estimate. ``tool_calls`` are the model's calls of the offered tools, in
    one shape for every provider: ``{'id', 'name', 'arguments': dict}``. ``rate_limits`` is what the
    provider's headers said was left of its rate limits (None when it sent none).
    """

    content: str
    usage: Usage
    model: str
    latency_ms: float
    attempts: int
    usage_reported: bool
    tool_calls: list[dict] = field(default_factory=list)
    rate_limits: RateLimits | None = None


def estimate_usage(messages: list[dict], content: str, model: str) -> Usage:
    """Offline usage estimate for a response that came without a usage block."""
    return Usage(
        input_tokens=count_message_tokens(messages, model).tokens,
        output_tokens=count_text_tokens(content, model).tokens,
    )


def tools_tokens(tools: list[dict] | None, model: str) -> int:
    """Tokens of tool definitions: the provider puts them in the prompt, so they are billed as input."""
    return count_text_tokens(json.dumps(tools, sort_keys=True), model).tokens if tools else 0


def tool_call(call_id: str | None, name: str | None, arguments: str | dict | None) -> dict:
    """One tool call in the gateway's shape, ``arguments`` parsed from the JSON text the wire carries.

    Raises ProviderError (malformed) when the arguments are not a JSON object: the answer is unusable."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise ProviderError("malformed", f"the arguments of the call of tool {name!r} are not JSON") from None
    if not isinstance(arguments, dict) or not name:
        raise ProviderError("malformed", f"the call of tool {name!r} has no name or no JSON object as arguments")
    return {"id": call_id or "", "name": name, "arguments": arguments}


@dataclass
class StreamProgress:
    """What a streamed answer has delivered so far, updated as its events are read.

    The provider's usage is kept as it comes: the prompt side (Anthropic's message_start, with its cache
    tokens) and the output tokens (Anthropic's message_delta), or both at once (OpenAI's last chunk).
    Tool calls are assembled from their fragments, by position."""

    model: str
    chunks: list[str] = field(default_factory=list)
    reported_input: Usage | None = None
    reported_output: int | None = None
    tool_parts: dict[int, dict] = field(default_factory=dict)
    complete: bool = False

    def add_tool_fragment(self, index: int, call_id: str | None, name: str | None, arguments: str | None) -> None:
        part = self.tool_parts.setdefault(index, {"id": None, "name": None, "arguments": ""})
        part["id"] = part["id"] or call_id
        part["name"] = part["name"] or name
        part["arguments"] += arguments or ""


class ChatStream:
    """A streamed answer: iterate it for its text chunks, then ask ``result()`` for the ChatResult.

    ``chunks`` is the provider's event reader, a generator that yields text and fills ``progress``; it
    raises ProviderError when the stream breaks. ``close()`` stops reading (the connection is dropped).
    The result of a stream that ended early, broken or closed, holds what came: the provider's usage
    where it was reported, the rest counted with tiktoken from the request and the text received
    (``usage_reported`` False). ``rate_limits``: what the headers of the answer said was left of the
    provider's rate limits, known as soon as the stream opens."""

    def __init__(
        self,
        chunks: Iterator[str],
        progress: StreamProgress,
        request: ChatRequest,
        close: Callable[[], None],
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.progress = progress
        self._chunks = chunks
        self._request = request
        self._close = close
        self.rate_limits = rate_limits
        self._started = time.perf_counter()
        self.first_chunk_ms: float | None = None
        self.latency_ms = 0.0
        self.attempts = 1

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> str:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self.progress.complete = True
            self._stop_clock()
            raise
        except ProviderError:
            self._stop_clock()
            raise
        if self.first_chunk_ms is None:
            self.first_chunk_ms = (time.perf_counter() - self._started) * 1000
        self.progress.chunks.append(chunk)
        return chunk

    def _stop_clock(self) -> None:
        self.latency_ms = (time.perf_counter() - self._started) * 1000

    def close(self) -> None:
        """Stop reading and drop the connection; the result keeps what came."""
        if not self.latency_ms:
            self._stop_clock()
        self._close()

    def result(self, parse_tools: bool = True) -> ChatResult:
        """The answer as it came. ``parse_tools`` False skips the tool calls (a broken stream's may be cut)."""
        progress = self.progress
        content = "".join(progress.chunks)
        tool_calls = [
            tool_call(part["id"], part["name"], part["arguments"])
            for _index, part in sorted(progress.tool_parts.items())
        ] if parse_tools else []
        model = progress.model
        received = content + "".join(str(part["name"]) + part["arguments"] for part in progress.tool_parts.values())
        request = self._request
        usage = progress.reported_input or Usage(
            input_tokens=count_message_tokens(request.messages, model).tokens + tools_tokens(request.tools, model)
        )
        output = progress.reported_output
        if output is None:
            output = count_text_tokens(received, model).tokens
        return ChatResult(
            content=content,
            usage=replace(usage, output_tokens=output),
            model=model,
            latency_ms=self.latency_ms,
            attempts=self.attempts,
            usage_reported=progress.reported_input is not None and progress.reported_output is not None,
            tool_calls=tool_calls,
            rate_limits=self.rate_limits,
        )


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` masked."""
    return text.replace(secret, "***") if secret else text


class ProviderError(Exception):
    """A failed provider call, classified so the gateway can retry, fall back or report.

    ``kind`` is one of connection, timeout, rate_limit, server, overloaded, invalid_request,
    auth, malformed (and rate_limited_ahead, a request the gateway did not send). The message never
    contains the API key: pass it as ``secret`` and it is masked out of ``detail``. ``rate_limits`` is
    what the headers of an HTTP error answer said was left of the provider's rate limits.
    """

    def __init__(
        self,
        kind: str,
        detail: str = "",
        *,
        status: int | None = None,
        retryable: bool | None = None,
        attempts: int = 1,
        retry_after: float | None = None,
        secret: str | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.kind = kind
        self.detail = redact(detail, secret)
        self.status = status
        self.retryable = kind in RETRYABLE_KINDS if retryable is None else retryable
        self.attempts = attempts
        self.retry_after = retry_after
        self.rate_limits = rate_limits
        super().__init__(self.detail)

    def __str__(self) -> str:
        # Built on demand: ``attempts`` is only final once the retry loop gives up.
        attempts = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        if self.kind in SENTENCE_KINDS and self.detail:
            return f"{self.detail}{attempts}."
        status = f" (HTTP {self.status})" if self.status is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"Provider {self.kind.replace('_', ' ')} error{status}{attempts}{detail}"


def connection_reason(error: BaseException) -> str:
    """The cause of a failed connection in a few words ("connection refused"), found in the chain of
    exceptions ``requests``/urllib3 and httpx wrap it in, so that no library internals are shown."""
    seen: set[int] = set()
    pending = [error]
    causes: list[BaseException] = []
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        causes.append(current)
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        pending.extend(item for item in linked if isinstance(item, BaseException))
    for exception_type, reason in _CONNECTION_CAUSES:
        if any(isinstance(cause, exception_type) for cause in causes):
            return reason
    return "connection failed"


def connection_error(base_url: str, error: BaseException) -> ProviderError:
    """The ProviderError of a connection that could not be made, in one sentence."""
    return ProviderError("connection", f"Could not connect to {base_url} ({connection_reason(error)})")


def stream_broken_error(base_url: str, error: BaseException) -> ProviderError:
    """The ProviderError of a stream cut off while it was read, in one sentence."""
    return ProviderError("connection", f"The stream from {base_url} broke off ({connection_reason(error)})")


def timeout_error(base_url: str, timeout: float) -> ProviderError:
    """The ProviderError of a provider that did not answer in time, in one sentence."""
    return ProviderError("timeout", f"No answer from {base_url} within {timeout:g} s")


def kind_for_status(status: int) -> str:
    """The ProviderError kind of an HTTP error status."""
    if status == 429:
        return "rate_limit"
    if status == 529:
        return "overloaded"
    if status in (401, 403):
        return "auth"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server"
    return "invalid_request"


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait as asked by ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date).

    ``headers`` must look keys up case-insensitively, as requests' and httpx's headers do.
    Returns None when the headers ask nothing usable.
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def status_error(
    status: int,
    detail: str,
    headers: Mapping[str, str],
    config: CallConfig,
    rate_limits: Callable[[Mapping[str, str], datetime], RateLimits | None] | None = None,
) -> ProviderError:
    """The ProviderError for an HTTP error response; ``rate_limits`` reads the provider's rate-limit headers
    (its protocol's parser), to which a 429 adds the wait its Retry-After asks for."""
    retry_after = parse_retry_after(headers)
    limits = None
    if rate_limits is not None:
        now = datetime.now(timezone.utc)
        limits = rate_limits(headers, now)
        if status == 429:
            limits = refused(limits, retry_after, now)
    return ProviderError(
        kind_for_status(status),
        detail,
        status=status,
        retry_after=retry_after,
        secret=config.api_key,
        rate_limits=limits,
    )


def retry_delay(error: ProviderError, attempt: int, config: CallConfig) -> float:
    """Seconds to sleep after failed ``attempt`` (1-based), never more than max_backoff.

    The provider's Retry-After wins when given. Otherwise exponential backoff with jitter in
    the upper half, so that workers failing together do not retry in lockstep.
    """
    if error.retry_after is not None:
        return min(error.retry_after, config.max_backoff)
    backoff = min(config.max_backoff, config.backoff_base * 2 ** (attempt - 1))
    return backoff / 2 + random.uniform(0, backoff / 2)


def retry(
    fn: Callable[[], _Result],
    config: CallConfig,
    sleep: Callable[[float], None] = time.sleep,
    on_attempt_failed: Callable[[ProviderError], None] | None = None,
) -> tuple[_Result, int]:
    """Call ``fn`` until it succeeds, at most ``config.max_retries`` + 1 times: its result and the number of
    attempts it took.

    Only retryable ProviderErrors (connection, timeout, 429, 5xx, 529) are retried, after ``retry_delay``;
    others, and any other exception, propagate at once. Every error carries its attempt number, and
    ``on_attempt_failed`` is told of each failed attempt (the last one included) before the retry or the
    raise, so a caller can account for every request sent.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(), attempt
        except ProviderError as error:
            error.attempts = attempt
            if on_attempt_failed is not None:
                on_attempt_failed(error)
            if not error.retryable or attempt > max(0, config.max_retries):
                raise
            sleep(retry_delay(error, attempt, config))


def call_with_retries(
    fn: Callable[[], ChatResult | ChatStream],
    config: ProviderConfig,
    sleep: Callable[[float], None] = time.sleep,
    on_attempt_failed: Callable[[ProviderError], None] | None = None,
) -> ChatResult:
    """A provider call made with ``retry``: the returned result carries its attempt number too."""
    result, attempts = retry(fn, config, sleep, on_attempt_failed)
    result.attempts = attempts
    return result
