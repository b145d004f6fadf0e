"""The demo model: answers on this machine, without any network, for demos and first steps.

Its answer says what it is; its usage is counted with tiktoken like a real model's prompt and answer,
so the call is priced (as the model id of its provider, e.g. gpt-4o-mini) and tracked like any other.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from ..tokens import count_message_tokens, count_text_tokens
from ..usage import Usage
from .base import ChatRequest, ChatResult, ChatStream, ProviderConfig, ProviderError, StreamProgress

_QUOTE_CHARS = 80


def _question(messages: list[dict]) -> str:
    """The last user message, shortened to a quotable length."""
    text = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "").strip()
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3].rstrip() + "..."


def _fit(text: str, model: str, max_tokens: int) -> str:
    """`text` cut at a word boundary to at most `max_tokens` tokens, as a real model stops at max_tokens."""
    words = text.split(" ")
    while len(words) > 1 and count_text_tokens(" ".join(words), model).tokens > max_tokens:
        words.pop()
    return " ".join(words)


def demo_answer(messages: list[dict], model: str, max_tokens: int) -> str:
    """The demo model's answer to `messages`: what it received and what it is."""
    prompt_tokens = count_message_tokens(messages, model).tokens
    # What it is comes first: an answer cut short by max_tokens (a connection test) still says it.
    text = (
        "Demo answer, computed on the Odoo server: nothing was sent to an AI provider "
        f"({prompt_tokens} prompt tokens, priced as {model}). "
        "Add a provider with its API key in Configuration > Providers to get real answers. "
        f'You asked: "{_question(messages)}"'
    )
    return _fit(text, model, max_tokens)


def chat_demo(config: ProviderConfig, request: ChatRequest) -> ChatResult:
    """One demo call: an answer built locally, with its tokens counted as the provider's usage. It answers
    text only: a request with tools or a reply schema is refused as a provider would refuse it."""
    if request.tools or request.response_format:
        raise ProviderError("invalid_request", "the demo model answers text only, without tools or a reply schema")
    started = time.perf_counter()
    content = demo_answer(request.messages, config.model, request.max_tokens)
    usage = Usage(
        input_tokens=count_message_tokens(request.messages, config.model).tokens,
        output_tokens=count_text_tokens(content, config.model).tokens,
    )
    return ChatResult(
        content=content,
        usage=usage,
        model=config.model,
        latency_ms=(time.perf_counter() - started) * 1000,
        attempts=1,
        usage_reported=True,
    )


def stream_demo(config: ProviderConfig, request: ChatRequest) -> ChatStream:
    """The demo answer streamed a word at a time, so that the Playground's Stream works without a provider.
    Its usage comes as a provider's does: the prompt's at once, the answer's once the last word is out (a
    stream closed before is counted from the words received)."""
    result = chat_demo(config, request)
    progress = StreamProgress(model=config.model, reported_input=Usage(input_tokens=result.usage.input_tokens))
    return ChatStream(_words(result, progress), progress, request, close=lambda: None)


def _words(result: ChatResult, progress: StreamProgress) -> Iterator[str]:
    yield from re.findall(r"\S+\s*", result.content)
    progress.reported_output = result.usage.output_tokens
