"""Checks of the tool use and structured output parameters of a call, and the parsing of a structured reply.

One shape for every provider, turned into each wire format by the clients:
    tools=[{'name': 'get_weather', 'description': '...', 'parameters': {JSON schema of an object}}]
    tool_choice='auto' | 'none' | 'required' | {'name': 'get_weather'}
    response_format={JSON schema of an object}
    a tool call: {'id': 'call_...', 'name': 'get_weather', 'arguments': {...}}
"""

from __future__ import annotations

import json
from typing import Any

from .messages import check_tool_name, json_text, short_repr

# OpenAI's limit on the number of tools.
MAX_TOOLS = 128
MAX_DESCRIPTION_CHARS = 4096
MAX_SCHEMA_CHARS = 100_000
TOOL_KEYS = frozenset({"name", "description", "parameters"})
TOOL_CHOICES = ("auto", "none", "required")


def check_schema(schema: Any, what: str) -> dict:
    """A JSON schema of an object, as both providers want at the top of tool parameters and replies."""
    if not isinstance(schema, dict):
        raise ValueError(f"{what} must be a JSON schema (a dict), not {short_repr(schema)}.")
    if schema.get("type") != "object":
        kind = short_repr(schema.get("type"))
        raise ValueError(f"{what} must describe an object: its 'type' must be 'object', not {kind}.")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise ValueError(f"{what}'s 'properties' must be a dict, not {short_repr(properties)}.")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise ValueError(f"{what}'s 'required' must be a list of property names, not {short_repr(required)}.")
    if len(json_text(schema, what)) > MAX_SCHEMA_CHARS:
        raise ValueError(f"{what} is larger than {MAX_SCHEMA_CHARS} characters of JSON.")
    return schema


def check_tools(tools: Any) -> list[dict] | None:
    """The tool definitions of a call, or None. ValueError names the first problem."""
    if tools is None:
        return None
    if not isinstance(tools, list) or not tools:
        raise ValueError(f"tools must be a non-empty list of tool definitions, not {short_repr(tools)}.")
    if len(tools) > MAX_TOOLS:
        raise ValueError(f"tools holds {len(tools)} tools; at most {MAX_TOOLS} are allowed.")
    checked = []
    for index, tool in enumerate(tools):
        what = f"Tool {index}"
        if not isinstance(tool, dict):
            raise ValueError(f"{what} must be a dict with 'name' and 'parameters', not {short_repr(tool)}.")
        unknown = set(tool) - TOOL_KEYS
        if unknown:
            raise ValueError(f"{what} has unknown keys {sorted(map(str, unknown))}: use name, description, parameters.")
        check_tool_name(tool.get("name"), what)
        description = tool.get("description")
        if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS):
            raise ValueError(f"{what} description must be a text of at most {MAX_DESCRIPTION_CHARS} characters.")
        checked.append({**tool, "parameters": check_schema(tool.get("parameters"), f"{what} parameters")})
    names = [tool["name"] for tool in checked]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"tools defines {', '.join(duplicates)} more than once.")
    return checked


def check_tool_choice(choice: Any, tools: list[dict] | None) -> str | dict | None:
    """'auto', 'none', 'required', {'name': one of the tools}, or None; it needs tools."""
    if choice is None:
        return None
    if not tools:
        raise ValueError("tool_choice needs tools to choose from.")
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return choice
    if isinstance(choice, dict) and set(choice) == {"name"}:
        if choice["name"] not in [tool["name"] for tool in tools]:
            raise ValueError(f"tool_choice names {short_repr(choice['name'])}, which is not one of the tools.")
        return dict(choice)
    raise ValueError(f"tool_choice must be 'auto', 'none', 'required' or {{'name': tool}}, not {short_repr(choice)}.")


def check_response_format(schema: Any, tools: list[dict] | None) -> dict | None:
    """The JSON schema a structured reply must follow, or None; not with tools (Anthropic's structured
    output is itself a forced tool)."""
    if schema is None:
        return None
    if tools:
        raise ValueError("response_format cannot be combined with tools: ask for one or the other.")
    return check_schema(schema, "response_format")


def parse_structured(content: str, schema: dict) -> dict:
    """The object of a structured reply; ValueError when it is not JSON, not an object, or lacks a
    required property."""
    try:
        parsed = json.loads(content)
    except ValueError:
        raise ValueError(f"the reply is not JSON: {short_repr(content)}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"the reply is not a JSON object: {short_repr(content)}")
    missing = [name for name in schema.get("required", []) if name not in parsed]
    if missing:
        raise ValueError(f"the reply lacks the required {', '.join(missing)}: {short_repr(content)}")
    return parsed


def tools_text(tools: list[dict] | None, response_format: dict | None) -> str:
    """The text the tool definitions (or the reply's schema) add to the prompt, for token counts and the
    waste rules' cacheable prefix."""
    definitions = tools or ([{"parameters": response_format}] if response_format else [])
    return json.dumps(definitions, sort_keys=True) if definitions else ""
