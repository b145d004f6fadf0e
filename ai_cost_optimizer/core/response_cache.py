"""Keys and eligibility of the exact-match response cache (the entries live in PostgreSQL)."""

from __future__ import annotations

import hashlib
import json


def is_cacheable(use_cache: bool, temperature: float | None) -> bool:
    """Only deterministic calls (temperature 0 or unset) are answered from the cache: a caller
    asking for a sampled answer expects a fresh one."""
    return bool(use_cache) and (temperature is None or temperature == 0)


def cache_key(
    model: str, messages: list[dict], max_tokens: int, temperature: float | None, response_format: dict | None = None
) -> str:
    """SHA-256 of the exact request: provider model, messages (roles and contents, surrounding
    whitespace trimmed, case kept: "Translate 'ABC'" and "translate 'abc'" differ; tool calls and
    the calls a tool message answers) and parameters (the reply's schema among them)."""
    identity = {
        "model": model,
        "messages": [_message_identity(message) for message in messages],
        "max_tokens": max_tokens,
        "temperature": temperature or 0,
    }
    if response_format is not None:
        identity["response_format"] = response_format
    payload = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _message_identity(message: dict) -> list:
    """What identifies a message; a plain one keeps the key it always had."""
    identity = [message["role"], message["content"].strip()]
    for name in ("tool_calls", "tool_call_id"):
        if name in message:
            identity.append({name: message[name]})
    return identity
