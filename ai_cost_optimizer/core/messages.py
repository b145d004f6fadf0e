"""Validation and normalization of chat messages, the gateway's input format."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

ROLES = ("system", "user", "assistant", "tool")
# Beyond the largest context windows (about 2M tokens); bounds the work of counting tokens.
MAX_PROMPT_CHARS = 10_000_000
MAX_LABEL_CHARS = 256
_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_MODEL_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")
# Both providers' limits on a tool name.
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about arbitrary input."""
    try:
        text = repr(value)
    except ValueError:  # e.g. an int too large to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool) that fits a float, neither NaN nor infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _check_unicode(text: str, what: str) -> None:
    """PostgreSQL and JSON refuse NUL characters and lone surrogates: refuse them up front."""
    if "\x00" in text:
        raise ValueError(f"{what} contains a NUL character.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode text.") from None


def storable_text(text: str) -> str:
    """``text`` without what PostgreSQL cannot store (NUL characters, lone surrogates)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def check_label(value: Any, name: str, max_length: int = MAX_LABEL_CHARS) -> str | None:
    """An optional one-line text parameter (operation, session id, ...).

    None, False (Odoo's "no value") and "" mean absent and give None. Anything else must be a
    string of at most ``max_length`` characters without control characters; ValueError otherwise.
    """
    if value is None or value is False or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}.")
    if len(value) > max_length:
        raise ValueError(f"{name} has {len(value)} characters; at most {max_length} are allowed.")
    if _CONTROL.search(value):
        raise ValueError(f"{name} must be one line of text without control characters.")
    _check_unicode(value, name)
    return value


def check_model_name(value: Any, name: str) -> str | None:
    """An optional Odoo model name such as ``crm.lead`` (lowercase words joined by dots); the
    model need not be installed, the name must merely be one."""
    value = check_label(value, name, max_length=128)
    if value is not None and not _MODEL_NAME.fullmatch(value):
        raise ValueError(f"{name} must be an Odoo model name such as 'crm.lead', not {short_repr(value)}.")
    return value


def check_code(value: Any, name: str) -> str:
    """A technical code such as a task type: a letter, then letters, digits, '_', '.' or '-'."""
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        raise ValueError(
            f"{name} must be a code such as 'chat' or 'summarize' (a letter, then letters, digits, "
            f"'_', '.' or '-', at most 64), not {short_repr(value)}."
        )
    return value


def json_text(value: Any, what: str) -> str:
    """``value`` as strict JSON text (no NaN, only JSON types); ValueError otherwise."""
    try:
        return json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError) as error:
        raise ValueError(f"{what} must hold JSON values only: {error}.") from None


def check_tool_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        raise ValueError(
            f"{what} name must be 1 to 64 letters, digits, '_' or '-', not {short_repr(name)}."
        )
    return name


def check_tool_calls(calls: Any, what: str) -> list[dict]:
    """The tool calls of an assistant message, in the gateway's shape."""
    if not isinstance(calls, list) or not calls:
        raise ValueError(f"{what} tool_calls must be a non-empty list, not {short_repr(calls)}.")
    checked = []
    for index, call in enumerate(calls):
        where = f"{what} tool call {index}"
        if not isinstance(call, dict):
            raise ValueError(f"{where} must be a dict with 'id', 'name' and 'arguments', not {short_repr(call)}.")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id.strip() or len(call_id) > 256:
            raise ValueError(f"{where} needs an 'id' (a string), not {short_repr(call_id)}.")
        check_tool_name(call.get("name"), where)
        arguments = call.get("arguments")
        if not isinstance(arguments, dict):
            raise ValueError(f"{where} arguments must be a dict, not {short_repr(arguments)}.")
        json_text(arguments, f"{where} arguments")
        checked.append({"id": call_id, "name": call["name"], "arguments": arguments})
    return checked


def _check_message(index: int, message: Any) -> dict:
    if not isinstance(message, dict):
        raise ValueError(f"Message {index} must be a dict with 'role' and 'content', got {type(message).__name__}.")
    role = message.get("role")
    if role not in ROLES:
        raise ValueError(f"Message {index} has role {short_repr(role)}; the role must be one of {', '.join(ROLES)}.")
    content = message.get("content")
    if not isinstance(content, str):
        raise ValueError(f"Message {index} content must be a string, got {type(content).__name__}.")
    checked = dict(message)
    if "tool_calls" in message:
        if role != "assistant":
            raise ValueError(f"Message {index} ({role}) has tool_calls; only assistant messages call tools.")
        checked["tool_calls"] = check_tool_calls(message["tool_calls"], f"Message {index}")
    if "tool_call_id" in message or role == "tool":
        if role != "tool":
            raise ValueError(f"Message {index} ({role}) has a tool_call_id; only tool messages answer a tool call.")
        checked["tool_call_id"] = check_label(message.get("tool_call_id"), f"Message {index} tool_call_id")
        if not checked["tool_call_id"]:
            raise ValueError(f"Message {index} (tool) needs the tool_call_id of the call it answers.")
    # An assistant message that calls tools may say nothing.
    if not content.strip() and not checked.get("tool_calls"):
        raise ValueError(f"Message {index} ({role}) has empty content.")
    _check_unicode(content, f"Message {index} content")
    return checked


def _check_tool_results(messages: list[dict]) -> None:
    """Each tool message answers a call an earlier assistant message made."""
    called: set[str] = set()
    for index, message in enumerate(messages):
        called.update(call["id"] for call in message.get("tool_calls") or [])
        if message["role"] == "tool" and message["tool_call_id"] not in called:
            raise ValueError(
                f"Message {index} (tool) answers tool call {short_repr(message['tool_call_id'])}, "
                "which no earlier assistant message made."
            )


def validate_messages(messages: Any) -> list[dict]:
    """Check chat messages and return shallow copies of them.

    Raises ValueError, with a message naming the problem, when ``messages`` is not a non-empty
    list of dicts with a role among system/user/assistant/tool and a non-empty string content, or
    when no message comes from the user, when a content holds a NUL character or invalid
    Unicode, or when the contents together exceed MAX_PROMPT_CHARS characters. An assistant
    message may carry ``tool_calls`` (``[{'id', 'name', 'arguments': dict}]``, its content then may
    be empty); a ``tool`` message gives the result of one of them, named by ``tool_call_id``.
    """
    if not isinstance(messages, list):
        raise ValueError(f"Messages must be a list of dicts, got {type(messages).__name__}.")
    if not messages:
        raise ValueError("Messages are empty: send at least one user message.")
    checked = [_check_message(index, message) for index, message in enumerate(messages)]
    if not any(message["role"] == "user" for message in checked):
        raise ValueError("Messages contain no user message.")
    _check_tool_results(checked)
    size = sum(len(message["content"]) for message in checked)
    if size > MAX_PROMPT_CHARS:
        raise ValueError(f"Messages hold {size} characters; at most {MAX_PROMPT_CHARS} are accepted.")
    return checked


def validate_texts(texts: Any, max_texts: int) -> list[str]:
    """Check the texts of an embedding call: a non-empty list of at most ``max_texts`` non-blank strings,
    without NUL characters or invalid Unicode, together at most MAX_PROMPT_CHARS characters."""
    if not isinstance(texts, list):
        raise ValueError(f"texts must be a list of strings, got {type(texts).__name__}.")
    if not texts:
        raise ValueError("texts is empty: give at least one text to embed.")
    if len(texts) > max_texts:
        raise ValueError(f"texts holds {len(texts)} texts; at most {max_texts} are embedded in one call.")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"Text {index} must be a string, got {type(text).__name__}.")
        if not text.strip():
            raise ValueError(f"Text {index} is empty.")
        _check_unicode(text, f"Text {index}")
    size = sum(len(text) for text in texts)
    if size > MAX_PROMPT_CHARS:
        raise ValueError(f"texts hold {size} characters; at most {MAX_PROMPT_CHARS} are accepted.")
    return list(texts)


def batches(texts: list[str], tokens: list[int], max_texts: int, max_tokens: int) -> list[list[str]]:
    """``texts`` in order, cut into batches of at most ``max_texts`` texts and ``max_tokens`` tokens
    (``tokens``: each text's count); a text longer than ``max_tokens`` goes alone."""
    result: list[list[str]] = []
    size = 0
    for text, count in zip(texts, tokens, strict=True):
        if not result or len(result[-1]) >= max_texts or size + count > max_tokens:
            result.append([])
            size = 0
        result[-1].append(text)
        size += count
    return result


def normalize_prompt(messages: list[dict]) -> str:
    """The prompt as one comparable text: roles kept, whitespace collapsed, lowercased; the tool calls of a
    message and the call a tool result answers kept too."""
    text = "\n".join(f"{message['role']}: {message['content']}{_tool_parts(message)}" for message in messages)
    return _WHITESPACE.sub(" ", text).strip().lower()


def _tool_parts(message: dict) -> str:
    parts = {name: message[name] for name in ("tool_calls", "tool_call_id") if name in message}
    return " " + json.dumps(parts, sort_keys=True, default=str) if parts else ""


def prompt_hash(messages: list[dict], model: str, params: dict | None = None) -> str:
    """SHA-256 hex digest identifying a prompt for duplicate detection and the response cache.

    Prompts differing only in case or whitespace hash alike; the model and the generation
    parameters (max_tokens, temperature, ...) are part of the identity.
    """
    identity = {"model": model, "prompt": normalize_prompt(messages), "params": params or {}}
    payload = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
