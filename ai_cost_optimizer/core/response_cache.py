"""Keys and eligibility of the exact-match response cache (the entries live in PostgreSQL)."""

from __future__ import annotations

import hashlib
import json


def is_cacheable(use_cache: bool, temperature: float | None) -> bool:
    """Only deterministic calls (temperature 0 or unset) are answered from the cache: a caller
    asking for a sampled answer expects a fresh one."""
    return bool(use_cache) and (temperature is None or temperature == 0)


def cache_key(model: str, messages: list[dict], max_tokens: int, temperature: float | None) -> str:
    """SHA-256 of the exact request: provider model, messages (roles and contents, surrounding
    whitespace trimmed, case kept: "Translate 'ABC'" and "translate 'abc'" differ) and parameters."""
    identity = {
        "model": model,
        "messages": [[message["role"], message["content"].strip()] for message in messages],
        "max_tokens": max_tokens,
        "temperature": temperature or 0,
    }
    payload = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
