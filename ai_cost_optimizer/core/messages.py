"""Validation and normalization of chat messages, the gateway's input format."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

ROLES = ("system", "user", "assistant")
_WHITESPACE = re.compile(r"\s+")


def _check_message(index: int, message: Any) -> dict:
    if not isinstance(message, dict):
        raise ValueError(f"Message {index} must be a dict with 'role' and 'content', got {type(message).__name__}.")
    role = message.get("role")
    if role not in ROLES:
        raise ValueError(f"Message {index} has role {role!r}; the role must be one of {', '.join(ROLES)}.")
    content = message.get("content")
    if not isinstance(content, str):
        raise ValueError(f"Message {index} content must be a string, got {type(content).__name__}.")
    if not content.strip():
        raise ValueError(f"Message {index} ({role}) has empty content.")
    return dict(message)


def validate_messages(messages: Any) -> list[dict]:
    """Check chat messages and return shallow copies of them.

    Raises ValueError, with a message naming the problem, when ``messages`` is not a non-empty
    list of dicts with a role among system/user/assistant and a non-empty string content, or
    when no message comes from the user.
    """
    if not isinstance(messages, list):
        raise ValueError(f"Messages must be a list of dicts, got {type(messages).__name__}.")
    if not messages:
        raise ValueError("Messages are empty: send at least one user message.")
    checked = [_check_message(index, message) for index, message in enumerate(messages)]
    if not any(message["role"] == "user" for message in checked):
        raise ValueError("Messages contain no user message.")
    return checked


def normalize_prompt(messages: list[dict]) -> str:
    """The prompt as one comparable text: roles kept, whitespace collapsed, lowercased."""
    text = "\n".join(f"{message['role']}: {message['content']}" for message in messages)
    return _WHITESPACE.sub(" ", text).strip().lower()


def prompt_hash(messages: list[dict], model: str, params: dict | None = None) -> str:
    """SHA-256 hex digest identifying a prompt for duplicate detection and the response cache.

    Prompts differing only in case or whitespace hash alike; the model and the generation
    parameters (max_tokens, temperature, ...) are part of the identity.
    """
    identity = {"model": model, "prompt": normalize_prompt(messages), "params": params or {}}
    payload = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
