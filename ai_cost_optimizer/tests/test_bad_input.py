"""Malformed input to every entry point (over 400 lines: a table of cases per entry point): a clear
UserError/ValidationError, and no change in the database but the usage row of the refused call.

One table of cases per entry point; a case is (label, arguments, fragment of the expected
message). Arguments may hold ``Ref('attr')``, resolved to ``self.attr`` (a record made in
setUpClass) or, with ``Ref('attr', 'id')``, to its id.
"""

from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import new_test_user, tagged
from odoo.tools import SQL

from ..core.messages import MAX_PROMPT_CHARS
from ..models.ai_token_usage import ROLLUP_MODELS
from .common import AiCostCase

OK = [{"role": "user", "content": "Qualify lead 42."}]
# A 2 MB prompt: far beyond the 128k-token context window of the providers under test.
HUGE_TEXT = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 36000


class Ref:
    """A record of the test class, or one of its attributes, named before the class exists."""

    def __init__(self, name, attribute=None):
        self.name, self.attribute = name, attribute

    def resolve(self, case):
        value = getattr(case, self.name)
        return getattr(value, self.attribute) if self.attribute else value


def user_message(content):
    return [{"role": "user", "content": content}]


SEND_MESSAGE_CASES = [
    # -- messages: wrong types, shapes, roles and contents
    ("messages None", {"messages": None}, "must be a list"),
    ("messages str", {"messages": "Qualify lead 42."}, "must be a list"),
    ("messages int", {"messages": 42}, "must be a list"),
    ("messages float", {"messages": 4.2}, "must be a list"),
    ("messages bool", {"messages": True}, "must be a list"),
    ("messages bytes", {"messages": b"hello"}, "must be a list"),
    ("messages dict", {"messages": OK[0]}, "must be a list"),
    ("messages tuple", {"messages": tuple(OK)}, "must be a list"),
    ("messages empty", {"messages": []}, "empty"),
    ("message None", {"messages": [None]}, "must be a dict"),
    ("message str", {"messages": ["hello"]}, "must be a dict"),
    ("message int", {"messages": [42]}, "must be a dict"),
    ("message list", {"messages": [[]]}, "must be a dict"),
    ("message nested lists", {"messages": [[[[["deep"]]]]]}, "must be a dict"),
    ("valid then junk", {"messages": [*OK, "junk"]}, "Message 1 must be a dict"),
    ("no role", {"messages": [{"content": "Hi"}]}, "role None"),
    ("role robot", {"messages": [{"role": "robot", "content": "Hi"}]}, "role 'robot'"),
    ("role None", {"messages": [{"role": None, "content": "Hi"}]}, "role None"),
    ("role uppercase", {"messages": [{"role": "USER", "content": "Hi"}]}, "role 'USER'"),
    ("role padded", {"messages": [{"role": "user ", "content": "Hi"}]}, "role 'user '"),
    ("role list", {"messages": [{"role": ["user"], "content": "Hi"}]}, "role ['user']"),
    ("role dict", {"messages": [{"role": {"user": 1}, "content": "Hi"}]}, "the role must be one of"),
    ("role huge", {"messages": [{"role": "r" * 100000, "content": "Hi"}]}, "the role must be one of"),
    ("no content", {"messages": [{"role": "user"}]}, "content must be a string"),
    ("content None", {"messages": [{"role": "user", "content": None}]}, "content must be a string"),
    ("content int", {"messages": [{"role": "user", "content": 42}]}, "content must be a string"),
    ("content bytes", {"messages": [{"role": "user", "content": b"Hi"}]}, "content must be a string"),
    ("content list", {"messages": [{"role": "user", "content": ["Hi"]}]}, "content must be a string"),
    ("content blocks", {"messages": user_message([{"type": "text", "text": [1]}])}, "content must be a string"),
    ("content dict", {"messages": [{"role": "user", "content": {"text": "Hi"}}]}, "content must be a string"),
    ("content empty", {"messages": user_message("")}, "empty content"),
    ("content blank", {"messages": user_message(" \n\t ")}, "empty content"),
    ("content NUL", {"messages": user_message("Qualify\x00lead")}, "NUL"),
    ("content surrogate", {"messages": user_message("Qualify \ud800 lead")}, "not valid Unicode"),
    ("content beyond any window", {"messages": user_message("x" * (MAX_PROMPT_CHARS + 1))}, "characters; at most"),
    ("content 2 MB", {"messages": user_message(HUGE_TEXT)}, "context window"),
    ("only system", {"messages": [{"role": "system", "content": "Be brief."}]}, "no user message"),
    ("only assistant", {"messages": [{"role": "assistant", "content": "Hello"}]}, "no user message"),
    # -- provider: wrong types, unknown ids, archived, keyless, another company's
    ("provider str", {"provider": "1"}, "provider must be"),
    ("provider float", {"provider": 1.5}, "provider must be"),
    ("provider True", {"provider": True}, "provider must be"),
    ("provider False", {"provider": False}, "provider must be"),
    ("provider list", {"provider": [1]}, "provider must be"),
    ("provider dict", {"provider": {"id": 1}}, "provider must be"),
    ("provider zero", {"provider": 0}, "Unknown AI provider"),
    ("provider negative", {"provider": -1}, "Unknown AI provider"),
    ("provider unknown id", {"provider": 987654}, "Unknown AI provider"),
    ("provider id beyond int4", {"provider": 2**31}, "Unknown AI provider"),
    ("provider id huge", {"provider": 10**30}, "Unknown AI provider"),
    ("provider of another model", {"provider": Ref("partner")}, "provider must be"),
    ("provider empty recordset", {"provider": Ref("no_provider")}, "Unknown AI provider"),
    ("provider two records", {"provider": Ref("two_providers")}, "Unknown AI provider"),
    ("provider archived", {"provider": Ref("archived", "id")}, "archived"),
    ("provider without key", {"provider": Ref("keyless", "id")}, "no API key"),
    ("provider of another company (id)", {"provider": Ref("foreign", "id")}, "another company"),
    ("provider of another company (record)", {"provider": Ref("foreign")}, "another company"),
    # -- task_type
    ("task_type None", {"task_type": None}, "task_type must be a code"),
    ("task_type empty", {"task_type": ""}, "task_type must be a code"),
    ("task_type blank", {"task_type": "   "}, "task_type must be a code"),
    ("task_type int", {"task_type": 42}, "task_type must be a code"),
    ("task_type list", {"task_type": ["chat"]}, "task_type must be a code"),
    ("task_type injection", {"task_type": "chat'; DROP TABLE ai_token_usage; --"}, "task_type must be a code"),
    ("task_type too long", {"task_type": "c" * 65}, "task_type must be a code"),
    ("task_type unicode", {"task_type": "résumé"}, "task_type must be a code"),
    ("task_type newline", {"task_type": "chat\n"}, "task_type must be a code"),
    ("task_type huge", {"task_type": "x" * 2_000_000}, "task_type must be a code"),
    # -- quality_required and mode
    ("quality ultra", {"quality_required": "ultra"}, "quality_required"),
    ("quality empty", {"quality_required": ""}, "quality_required"),
    ("quality uppercase", {"quality_required": "HIGH"}, "quality_required"),
    ("quality int", {"quality_required": 1}, "quality_required"),
    ("quality list", {"quality_required": ["high"]}, "quality_required"),
    ("quality dict", {"quality_required": {"level": "high"}}, "quality_required"),
    ("mode turbo", {"mode": "turbo"}, "Unknown mode"),
    ("mode empty", {"mode": ""}, "Unknown mode"),
    ("mode int", {"mode": 1}, "Unknown mode"),
    ("mode True", {"mode": True}, "Unknown mode"),
    ("mode list", {"mode": ["passthrough"]}, "Unknown mode"),
    ("mode dict", {"mode": {"smart_router": True}}, "Unknown mode"),
    # -- max_tokens
    ("max_tokens zero", {"max_tokens": 0}, "max_tokens"),
    ("max_tokens negative", {"max_tokens": -1}, "max_tokens"),
    ("max_tokens very negative", {"max_tokens": -(10**9)}, "max_tokens"),
    ("max_tokens above the provider's", {"max_tokens": 10**9}, "exceeds"),
    ("max_tokens huge", {"max_tokens": 10**30}, "exceeds"),
    ("max_tokens unprintable", {"max_tokens": 10**5000}, "exceeds"),
    ("max_tokens float", {"max_tokens": 100.0}, "max_tokens"),
    ("max_tokens str", {"max_tokens": "100"}, "max_tokens"),
    ("max_tokens None", {"max_tokens": None}, "max_tokens"),
    ("max_tokens True", {"max_tokens": True}, "max_tokens"),
    ("max_tokens nan", {"max_tokens": float("nan")}, "max_tokens"),
    ("max_tokens inf", {"max_tokens": float("inf")}, "max_tokens"),
    # -- temperature
    ("temperature negative", {"temperature": -0.1}, "temperature"),
    ("temperature above 2", {"temperature": 2.1}, "temperature"),
    ("temperature huge", {"temperature": 1e308}, "temperature"),
    ("temperature str", {"temperature": "0.5"}, "temperature"),
    ("temperature nan", {"temperature": float("nan")}, "temperature"),
    ("temperature inf", {"temperature": float("inf")}, "temperature"),
    ("temperature -inf", {"temperature": float("-inf")}, "temperature"),
    ("temperature True", {"temperature": True}, "temperature"),
    ("temperature list", {"temperature": [0.5]}, "temperature"),
    # -- max_budget_usd and use_cache
    ("budget negative", {"max_budget_usd": -1}, "max_budget_usd"),
    ("budget str", {"max_budget_usd": "10"}, "max_budget_usd"),
    ("budget nan", {"max_budget_usd": float("nan")}, "max_budget_usd"),
    ("budget inf", {"max_budget_usd": float("inf")}, "max_budget_usd"),
    ("budget True", {"max_budget_usd": True}, "max_budget_usd"),
    ("budget list", {"max_budget_usd": [1]}, "max_budget_usd"),
    ("use_cache str", {"use_cache": "yes"}, "use_cache"),
    ("use_cache int", {"use_cache": 1}, "use_cache"),
    ("use_cache None", {"use_cache": None}, "use_cache"),
    ("use_cache list", {"use_cache": []}, "use_cache"),
    # -- operation, session_id: optional one-line labels
    ("operation int", {"operation": 42}, "operation must be a string"),
    ("operation list", {"operation": ["lead"]}, "operation must be a string"),
    ("operation dict", {"operation": {"op": 1}}, "operation must be a string"),
    ("operation too long", {"operation": "o" * 257}, "at most 256"),
    ("operation huge", {"operation": "o" * 2_000_000}, "at most 256"),
    ("operation newline", {"operation": "lead\nqualification"}, "one line"),
    ("operation NUL", {"operation": "lead\x00"}, "one line"),
    ("operation surrogate", {"operation": "lead \udc80"}, "not valid Unicode"),
    ("session int", {"session_id": 42}, "session_id must be a string"),
    ("session bytes", {"session_id": b"abc"}, "session_id must be a string"),
    ("session too long", {"session_id": "s" * 300}, "at most 256"),
    ("session tab", {"session_id": "a\tb"}, "one line"),
    # -- res_model / res_id: the record the call is about
    ("res_model int", {"res_model": 42, "res_id": 1}, "res_model must be a string"),
    ("res_model uppercase", {"res_model": "Res.Partner", "res_id": 1}, "must be an Odoo model name"),
    ("res_model injection", {"res_model": "res.partner; DROP TABLE res_partner", "res_id": 1}, "model name"),
    ("res_model path", {"res_model": "../../etc/passwd", "res_id": 1}, "must be an Odoo model name"),
    ("res_model too long", {"res_model": "m" * 300, "res_id": 1}, "at most 128"),
    ("res_model list", {"res_model": ["res.partner"], "res_id": 1}, "res_model must be a string"),
    ("res_model NUL", {"res_model": "res.partner\x00", "res_id": 1}, "one line"),
    ("res_id negative", {"res_model": "res.partner", "res_id": -1}, "res_id must be"),
    ("res_id zero", {"res_model": "res.partner", "res_id": 0}, "res_id must be"),
    ("res_id beyond int4", {"res_model": "res.partner", "res_id": 2**31}, "res_id must be"),
    ("res_id huge", {"res_model": "res.partner", "res_id": 10**20}, "res_id must be"),
    ("res_id str", {"res_model": "res.partner", "res_id": "42"}, "res_id must be"),
    ("res_id float", {"res_model": "res.partner", "res_id": 4.2}, "res_id must be"),
    ("res_id list", {"res_model": "res.partner", "res_id": [42]}, "res_id must be"),
    ("res_id True", {"res_model": "res.partner", "res_id": True}, "res_id must be"),
    ("res_id without res_model", {"res_id": 42}, "needs res_model"),
]

# Valid provider values, each case overriding some.
PROVIDER_CASES = [
    ("input price negative", {"input_price": -1.0}, "Prices"),
    ("output price negative", {"output_price": -0.01}, "Prices"),
    ("cache read price negative", {"cache_read_price": -3.0}, "Prices"),
    ("cache write price negative", {"cache_write_price": -1e-6}, "Prices"),
    ("base_url empty", {"base_url": ""}, "base URL"),
    ("base_url no scheme", {"base_url": "api.openai.com/v1"}, "base URL"),
    ("base_url ftp", {"base_url": "ftp://api.example.com/v1"}, "base URL"),
    ("base_url file", {"base_url": "file:///etc/passwd"}, "base URL"),
    ("base_url javascript", {"base_url": "javascript:alert(1)"}, "base URL"),
    ("base_url no host", {"base_url": "http://"}, "base URL"),
    ("base_url space", {"base_url": "https://api.exa mple.com/v1"}, "base URL"),
    ("base_url newline", {"base_url": "https://api.example.com/v1\nX-Injected: 1"}, "base URL"),
    ("base_url prose", {"base_url": "not a url"}, "base URL"),
    ("quality negative", {"quality_score": -1}, "quality score"),
    ("quality above 100", {"quality_score": 101}, "quality score"),
    ("quality huge", {"quality_score": 10**6}, "quality score"),
    ("context window negative", {"context_window": -5}, "Context window"),
    ("context window absurd", {"context_window": 10**9}, "Context window"),
    ("max output negative", {"max_output_tokens": -1}, "max output"),
    ("timeout zero", {"timeout": 0}, "timeout"),
    ("timeout negative", {"timeout": -1}, "timeout"),
    ("timeout nan", {"timeout": float("nan")}, "timeout"),
    ("timeout a day", {"timeout": 86400}, "timeout"),
    ("retries negative", {"max_retries": -1}, "Retries"),
    ("retries absurd", {"max_retries": 1000}, "Retries"),
    ("backoff negative", {"retry_backoff": -0.5}, "backoff"),
    ("backoff nan", {"retry_backoff": float("nan")}, "backoff"),
    ("model blank", {"model": "   "}, "model id"),
    ("model too long", {"model": "m" * 300}, "model id"),
]

SETTINGS_CASES = [
    ("retention days negative", {"ai_prompt_retention_days": -1}, "retention period"),
    ("retention days very negative", {"ai_prompt_retention_days": -(10**6)}, "retention period"),
    ("retention days beyond a century", {"ai_prompt_retention_days": 36501}, "retention period"),
    ("retention days int4 max", {"ai_prompt_retention_days": 2**31 - 1}, "retention period"),
    ("default provider of another company", {"ai_default_provider_id": Ref("foreign", "id")}, "must belong"),
]

RECOMMEND_CASES = [
    # -- task_type: wrong types, unknown codes, junk
    ("task_type None", {"task_type": None}, "Unknown task type"),
    ("task_type int", {"task_type": 42}, "Unknown task type"),
    ("task_type list", {"task_type": ["chat"]}, "Unknown task type"),
    ("task_type dict", {"task_type": {"code": "chat"}}, "Unknown task type"),
    ("task_type unknown", {"task_type": "poetry"}, "Unknown task type"),
    ("task_type empty", {"task_type": ""}, "Unknown task type"),
    ("task_type uppercase", {"task_type": "CHAT"}, "Unknown task type"),
    ("task_type injection", {"task_type": "chat' OR '1'='1"}, "Unknown task type"),
    ("task_type unicode", {"task_type": "résumé ✨ 总结"}, "Unknown task type"),
    ("task_type emoji", {"task_type": "🤖" * 50}, "Unknown task type"),
    ("task_type NUL", {"task_type": "chat\x00"}, "Unknown task type"),
    ("task_type surrogate", {"task_type": "chat\ud800"}, "Unknown task type"),
    ("task_type huge", {"task_type": "x" * 2_000_000}, "Unknown task type"),
    # -- context_size_tokens
    ("context None", {"context_size_tokens": None}, "context_size_tokens"),
    ("context negative", {"context_size_tokens": -1}, "context_size_tokens"),
    ("context very negative", {"context_size_tokens": -(10**12)}, "context_size_tokens"),
    ("context float", {"context_size_tokens": 100.5}, "context_size_tokens"),
    ("context str", {"context_size_tokens": "100"}, "context_size_tokens"),
    ("context True", {"context_size_tokens": True}, "context_size_tokens"),
    ("context nan", {"context_size_tokens": float("nan")}, "context_size_tokens"),
    ("context inf", {"context_size_tokens": float("inf")}, "context_size_tokens"),
    ("context list", {"context_size_tokens": [100]}, "context_size_tokens"),
    ("context beyond int4", {"context_size_tokens": 2**31}, "context_size_tokens"),
    ("context huge", {"context_size_tokens": 10**30}, "context_size_tokens"),
    ("context unprintable", {"context_size_tokens": 10**5000}, "context_size_tokens"),
    # -- quality_required
    ("quality ultra", {"quality_required": "ultra"}, "quality_required"),
    ("quality None", {"quality_required": None}, "quality_required"),
    ("quality uppercase", {"quality_required": "HIGH"}, "quality_required"),
    ("quality int", {"quality_required": 80}, "quality_required"),
    ("quality list", {"quality_required": ["high"]}, "quality_required"),
    ("quality dict", {"quality_required": {"high": 1}}, "quality_required"),
    ("quality unicode", {"quality_required": "hïgh"}, "quality_required"),
    # -- max_budget_usd
    ("budget negative", {"max_budget_usd": -0.01}, "max_budget_usd"),
    ("budget nan", {"max_budget_usd": float("nan")}, "max_budget_usd"),
    ("budget inf", {"max_budget_usd": float("inf")}, "max_budget_usd"),
    ("budget -inf", {"max_budget_usd": float("-inf")}, "max_budget_usd"),
    ("budget str", {"max_budget_usd": "1"}, "max_budget_usd"),
    ("budget True", {"max_budget_usd": True}, "max_budget_usd"),
    ("budget list", {"max_budget_usd": [1]}, "max_budget_usd"),
    ("budget huge int", {"max_budget_usd": 10**400}, "max_budget_usd"),
]

TOOL = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
SCHEMA = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
CALL = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}


def with_tool(**changes):
    return {"tools": [{**TOOL, **changes}]}


def assistant_calls(calls, content=""):
    return {"messages": [*OK, {"role": "assistant", "content": content, "tool_calls": calls}]}


def tool_answer(message):
    return {"messages": [*OK, {"role": "assistant", "content": "", "tool_calls": [CALL]}, message]}


# The parameters of tool use and structured output, refused alike by send_message and stream_message.
TOOL_CASES = [
    # -- tools
    ("tools str", {"tools": "get_weather"}, "tools must be a non-empty list"),
    ("tools dict", {"tools": TOOL}, "tools must be a non-empty list"),
    ("tools empty", {"tools": []}, "tools must be a non-empty list"),
    ("tools tuple", {"tools": (TOOL,)}, "tools must be a non-empty list"),
    ("tools int", {"tools": 1}, "tools must be a non-empty list"),
    ("tools too many", {"tools": [{**TOOL, "name": f"tool_{i}"} for i in range(129)]}, "at most 128"),
    ("tool None", {"tools": [None]}, "Tool 0 must be a dict"),
    ("tool str", {"tools": ["get_weather"]}, "Tool 0 must be a dict"),
    ("tool list", {"tools": [[TOOL]]}, "Tool 0 must be a dict"),
    ("second tool junk", {"tools": [TOOL, 42]}, "Tool 1 must be a dict"),
    ("tool unknown key", with_tool(function={"name": "x"}), "unknown keys"),
    ("tool OpenAI wrapper", {"tools": [{"type": "function", "function": TOOL}]}, "unknown keys"),
    ("tool no name", {"tools": [{"parameters": TOOL["parameters"]}]}, "name must be 1 to 64"),
    ("tool name None", with_tool(name=None), "name must be 1 to 64"),
    ("tool name empty", with_tool(name=""), "name must be 1 to 64"),
    ("tool name spaces", with_tool(name="get weather"), "name must be 1 to 64"),
    ("tool name dot", with_tool(name="weather.get"), "name must be 1 to 64"),
    ("tool name too long", with_tool(name="t" * 65), "name must be 1 to 64"),
    ("tool name unicode", with_tool(name="météo"), "name must be 1 to 64"),
    ("tool name int", with_tool(name=42), "name must be 1 to 64"),
    ("tool name injection", with_tool(name="x'; DROP TABLE ai_token_usage; --"), "name must be 1 to 64"),
    ("tool name NUL", with_tool(name="get\x00weather"), "name must be 1 to 64"),
    ("tool duplicate", {"tools": [TOOL, TOOL]}, "more than once"),
    ("tool description int", with_tool(description=42), "description must be a text"),
    ("tool description huge", with_tool(description="d" * 5000), "description must be a text"),
    ("tool no parameters", {"tools": [{"name": "get_weather"}]}, "must be a JSON schema"),
    ("tool parameters None", with_tool(parameters=None), "must be a JSON schema"),
    ("tool parameters str", with_tool(parameters='{"type": "object"}'), "must be a JSON schema"),
    ("tool parameters list", with_tool(parameters=[]), "must be a JSON schema"),
    ("tool parameters no type", with_tool(parameters={"properties": {}}), "must describe an object"),
    ("tool parameters string type", with_tool(parameters={"type": "string"}), "must describe an object"),
    ("tool parameters array type", with_tool(parameters={"type": "array"}), "must describe an object"),
    ("tool properties list", with_tool(parameters={"type": "object", "properties": []}), "'properties' must be"),
    ("tool required str", with_tool(parameters={"type": "object", "required": "city"}), "'required' must be"),
    ("tool required ints", with_tool(parameters={"type": "object", "required": [1]}), "'required' must be"),
    ("tool parameters nan", with_tool(parameters={"type": "object", "default": float("nan")}), "JSON values only"),
    ("tool parameters set", with_tool(parameters={"type": "object", "enum": {1, 2}}), "JSON values only"),
    ("tool parameters bytes", with_tool(parameters={"type": "object", "x": b"1"}), "JSON values only"),
    ("tool parameters huge", with_tool(parameters={"type": "object", "description": "x" * 100_001}), "larger than"),
    # -- tool_choice
    ("tool_choice without tools", {"tool_choice": "auto"}, "needs tools"),
    ("tool_choice unknown", {**with_tool(), "tool_choice": "any"}, "tool_choice must be"),
    ("tool_choice uppercase", {**with_tool(), "tool_choice": "AUTO"}, "tool_choice must be"),
    ("tool_choice True", {**with_tool(), "tool_choice": True}, "tool_choice must be"),
    ("tool_choice int", {**with_tool(), "tool_choice": 1}, "tool_choice must be"),
    ("tool_choice list", {**with_tool(), "tool_choice": ["auto"]}, "tool_choice must be"),
    ("tool_choice empty dict", {**with_tool(), "tool_choice": {}}, "tool_choice must be"),
    ("tool_choice extra key", {**with_tool(), "tool_choice": {"name": "get_weather", "type": "tool"}},
     "tool_choice must be"),
    ("tool_choice other tool", {**with_tool(), "tool_choice": {"name": "send_email"}}, "not one of the tools"),
    ("tool_choice name None", {**with_tool(), "tool_choice": {"name": None}}, "not one of the tools"),
    # -- response_format
    ("response_format str", {"response_format": "json"}, "must be a JSON schema"),
    ("response_format list", {"response_format": [SCHEMA]}, "must be a JSON schema"),
    ("response_format True", {"response_format": True}, "must be a JSON schema"),
    ("response_format OpenAI wrapper", {"response_format": {"type": "json_schema", "json_schema": SCHEMA}},
     "must describe an object"),
    ("response_format array", {"response_format": {"type": "array", "items": {}}}, "must describe an object"),
    ("response_format no type", {"response_format": {"properties": {}}}, "must describe an object"),
    ("response_format required str", {"response_format": {**SCHEMA, "required": "score"}}, "'required' must be"),
    ("response_format nan", {"response_format": {**SCHEMA, "minimum": float("inf")}}, "JSON values only"),
    ("response_format with tools", {**with_tool(), "response_format": SCHEMA}, "cannot be combined with tools"),
    # -- tool calls and tool results in the messages
    ("tool calls str", assistant_calls("get_weather"), "tool_calls must be a non-empty list"),
    ("tool calls empty", assistant_calls([]), "tool_calls must be a non-empty list"),
    ("tool call None", assistant_calls([None]), "tool call 0 must be a dict"),
    ("tool call no id", assistant_calls([{"name": "get_weather", "arguments": {}}]), "needs an 'id'"),
    ("tool call blank id", assistant_calls([{**CALL, "id": " "}]), "needs an 'id'"),
    ("tool call int id", assistant_calls([{**CALL, "id": 7}]), "needs an 'id'"),
    ("tool call bad name", assistant_calls([{**CALL, "name": "get weather"}]), "name must be 1 to 64"),
    ("tool call arguments str", assistant_calls([{**CALL, "arguments": '{"city": "Paris"}'}]),
     "arguments must be a dict"),
    ("tool call arguments nan", assistant_calls([{**CALL, "arguments": {"x": float("nan")}}]), "JSON values only"),
    ("tool calls on a user message", {"messages": [{"role": "user", "content": "Hi", "tool_calls": [CALL]}]},
     "only assistant messages call tools"),
    ("assistant without content or calls", assistant_calls([CALL], content=None), "content must be a string"),
    ("tool result without id", tool_answer({"role": "tool", "content": "Sunny"}), "needs the tool_call_id"),
    ("tool result int id", tool_answer({"role": "tool", "tool_call_id": 1, "content": "Sunny"}),
     "tool_call_id must be a string"),
    ("tool result unknown id", tool_answer({"role": "tool", "tool_call_id": "call_9", "content": "Sunny"}),
     "which no earlier assistant message made"),
    ("tool result before the call", {"messages": [*OK, {"role": "tool", "tool_call_id": "call_1", "content": "x"}]},
     "which no earlier assistant message made"),
    ("tool result empty", tool_answer({"role": "tool", "tool_call_id": "call_1", "content": ""}), "empty content"),
    ("tool result dict content", tool_answer({"role": "tool", "tool_call_id": "call_1", "content": {"t": 21}}),
     "content must be a string"),
    ("tool_call_id on a user message", {"messages": [{"role": "user", "content": "Hi", "tool_call_id": "call_1"}]},
     "only tool messages answer a tool call"),
]

TEXTS = ["ACME Corp, 500 seats.", "Globex renewal."]
# embed(): texts, provider and labels.
EMBED_CASES = [
    ("texts None", {"texts": None}, "texts must be a list"),
    ("texts str", {"texts": "ACME"}, "texts must be a list"),
    ("texts tuple", {"texts": tuple(TEXTS)}, "texts must be a list"),
    ("texts dict", {"texts": {"a": "ACME"}}, "texts must be a list"),
    ("texts bytes", {"texts": b"ACME"}, "texts must be a list"),
    ("texts empty", {"texts": []}, "texts is empty"),
    ("texts too many", {"texts": ["x"] * 10_001}, "at most 10000"),
    ("text None", {"texts": [None]}, "Text 0 must be a string"),
    ("text int", {"texts": ["ok", 42]}, "Text 1 must be a string"),
    ("text list", {"texts": [["ACME"]]}, "Text 0 must be a string"),
    ("text dict", {"texts": [{"text": "ACME"}]}, "Text 0 must be a string"),
    ("text empty", {"texts": [""]}, "Text 0 is empty"),
    ("text blank", {"texts": ["ok", " \n\t "]}, "Text 1 is empty"),
    ("text NUL", {"texts": ["AC\x00ME"]}, "NUL"),
    ("text surrogate", {"texts": ["AC\ud800ME"]}, "not valid Unicode"),
    ("texts beyond the limit", {"texts": ["x" * 5_000_001, "y" * 5_000_000]}, "characters; at most"),
    ("provider anthropic", {"provider": Ref("claude")}, "serves no embeddings"),
    ("provider str", {"provider": "gpt"}, "provider must be"),
    ("provider unknown", {"provider": 987654}, "Unknown AI provider"),
    ("provider archived", {"provider": Ref("archived", "id")}, "archived"),
    ("provider without key", {"provider": Ref("keyless", "id")}, "no API key"),
    ("provider of another company", {"provider": Ref("foreign")}, "another company"),
    ("operation int", {"operation": 42}, "operation must be a string"),
    ("operation multiline", {"operation": "a\nb"}, "operation must be one line"),
    ("operation huge", {"operation": "o" * 300}, "at most 256"),
    ("session_id list", {"session_id": ["run"]}, "session_id must be a string"),
    ("session_id NUL", {"session_id": "run\x00"}, "session_id must be one line"),
    ("res_model bad", {"res_model": "Res Partner"}, "res_model must be an Odoo model name"),
    ("res_id without model", {"res_id": 7}, "needs res_model"),
    ("res_id negative", {"res_model": "res.partner", "res_id": -1}, "res_id must be the id"),
    ("res_id str", {"res_model": "res.partner", "res_id": "7"}, "res_id must be the id"),
]

# Valid budget values, each case overriding some, on create and on write.
BUDGET_CASES = [
    ("amount zero", {"budget_amount": 0}, "must be positive"),
    ("amount negative", {"budget_amount": -10}, "must be positive"),
    ("amount tiny negative", {"budget_amount": -1e-9}, "must be positive"),
    ("amount nan", {"budget_amount": float("nan")}, "amount"),
    ("amount inf", {"budget_amount": float("inf")}, "amount"),
    ("amount str", {"budget_amount": "ten"}, "amount"),
    ("thresholds junk", {"alert_thresholds": "fifty, eighty"}, "Invalid alert thresholds"),
    ("thresholds not increasing", {"alert_thresholds": "80, 50"}, "strictly increasing"),
    ("thresholds repeated", {"alert_thresholds": "50, 50"}, "strictly increasing"),
    ("thresholds zero", {"alert_thresholds": "0, 50"}, "outside 1-1000"),
    ("thresholds negative", {"alert_thresholds": "-10"}, "outside 1-1000"),
    ("thresholds above 1000", {"alert_thresholds": "50, 1001"}, "outside 1-1000"),
    ("thresholds nan", {"alert_thresholds": "nan"}, "Invalid alert thresholds"),
    ("thresholds inf", {"alert_thresholds": "inf"}, "outside 1-1000"),
    ("thresholds empty item", {"alert_thresholds": "50,,80"}, "is not a percentage"),
    ("thresholds injection", {"alert_thresholds": "50); DROP TABLE ai_cost_budget; --"}, "Invalid alert thresholds"),
    ("thresholds unicode", {"alert_thresholds": "٥٠, ٨٠, ∞"}, "Invalid alert thresholds"),
    ("thresholds huge", {"alert_thresholds": "5" * 100000}, "outside 1-1000"),
    ("thresholds list junk", {"alert_thresholds": [50, "x"]}, "Invalid alert thresholds"),
    ("thresholds int", {"alert_thresholds": 50}, "Invalid alert thresholds"),
    ("auto-switch negative", {"auto_switch_at_threshold": -5}, "auto-switch threshold"),
    ("auto-switch above 1000", {"auto_switch_at_threshold": 1001}, "auto-switch threshold"),
    ("auto-switch nan", {"auto_switch_at_threshold": float("nan")}, "auto-switch threshold"),
    ("block negative", {"block_at_threshold": -1}, "block threshold"),
    ("block above 1000", {"block_at_threshold": 5000}, "block threshold"),
    ("block inf", {"block_at_threshold": float("inf")}, "block threshold"),
    ("block below auto-switch", {"auto_switch_at_threshold": 90, "block_at_threshold": 80}, "cannot be below"),
    ("period unknown", {"period_type": "yearly"}, "Unknown period type"),
    ("period empty", {"period_type": ""}, "Unknown period type"),
    ("period int", {"period_type": 7}, "Unknown period type"),
    ("period list", {"period_type": ["daily"]}, "Unknown period type"),
    ("users of another company", {"user_ids": Ref("foreign_user_set")}, "these users do not"),
    ("provider of another company", {"provider_ids": Ref("foreign_set")}, "own company"),
    ("name huge", {"name": "B" * 2_000_000}, "name"),
    ("name blank", {"name": "   "}, "name"),
    ("name NUL", {"name": "Budget\x00"}, "name"),
]


@tagged("post_install", "-at_install")
class TestBadInput(AiCostCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Provider = cls.env["ai.service.provider"]
        cls.caller = new_test_user(
            cls.env, "bad_input_ai", groups="base.group_user,ai_cost_optimizer.group_ai_cost_user"
        )
        cls.archived = Provider.create(cls._provider_vals(cls.fake, "openai_compatible", name="Old", active=False))
        cls.keyless = Provider.create(cls._provider_vals(cls.fake, "openai_compatible", name="No key", api_key=False))
        cls.other_company = cls.env["res.company"].create({"name": "Other AI Co"})
        cls.foreign = Provider.create(
            cls._provider_vals(cls.fake, "openai_compatible", name="Foreign", company_id=cls.other_company.id)
        )
        cls.foreign_user = new_test_user(
            cls.env, "bad_input_foreign", groups="base.group_user", company_id=cls.other_company.id,
            company_ids=[Command.set(cls.other_company.ids)],
        )
        cls.foreign_user_set = [Command.set(cls.foreign_user.ids)]
        cls.foreign_set = [Command.set(cls.foreign.ids)]
        cls.partner = cls.env["res.partner"].create({"name": "Lead 42"})
        cls.no_provider = Provider
        cls.two_providers = cls.claude | cls.gpt

    # -- helpers -------------------------------------------------------------------------------

    def resolve(self, values):
        return {key: value.resolve(self) if isinstance(value, Ref) else value for key, value in values.items()}

    def row_counts(self):
        """Rows of every table of the addon's models; the rollups follow the usage ledger."""
        names = [
            name
            for name, model in self.env.registry.items()
            if name.startswith("ai.") and model._auto and not model._abstract and name not in ROLLUP_MODELS
        ]
        self.env.flush_all()
        counts = {}
        for name in names:
            self.env.cr.execute(SQL("SELECT count(*) FROM %s", SQL.identifier(self.env[name]._table)))
            counts[name] = self.env.cr.fetchone()[0]
        return counts

    def assertClearMessage(self, error, fragment):
        message = str(error.args[0] if error.args else error)
        self.assertIn(fragment, message)
        self.assertLess(len(message), 600, "the message must stay readable, whatever the input")
        self.assertNotIn("Traceback", message)

    # -- tables --------------------------------------------------------------------------------

    def assertRefused(self, label, call, fragment, kind="chat"):
        """`call()` raises a clear UserError containing `fragment`, and writes nothing but the usage row of
        the refused call."""
        before = self.row_counts()
        try:
            call()
        except UserError as error:
            self.assertClearMessage(error, fragment)
        else:
            self.fail(f"{label}: the call accepted it")
        after = self.row_counts()
        self.assertEqual(after.pop("ai.token.usage"), before.pop("ai.token.usage") + 1)
        self.assertEqual(after, before, "only the usage row of the refused call may be written")
        row = self.usage_rows()[-1]
        self.assertEqual((row.status, row.cost_usd, row.user_id, row.kind), ("error", 0.0, self.caller, kind))
        self.assertEqual((row.input_tokens, row.output_tokens), (0, 0))
        self.assertIn(fragment, row.error_message)
        self.assertEqual(row.company_id, self.env.company, "recorded in the caller's company")

    def test_send_message_refuses_bad_input(self):
        self.assertGreaterEqual(len(SEND_MESSAGE_CASES), 100)
        Service = self.env["ai.service"].with_user(self.caller)
        for label, arguments, fragment in SEND_MESSAGE_CASES:
            with self.subTest(label):
                kwargs = {"messages": OK, "provider": self.gpt.id, **self.resolve(arguments)}
                self.assertRefused(label, lambda kwargs=kwargs: Service.send_message(**kwargs), fragment)
        self.assertFalse(self.fake.requests, "no refused call may reach a provider")

    def test_tools_and_structured_output_refuse_bad_input(self):
        """The new parameters, through send_message and stream_message alike."""
        self.assertGreaterEqual(len(TOOL_CASES) + len(EMBED_CASES), 100)
        Service = self.env["ai.service"].with_user(self.caller)
        for label, arguments, fragment in TOOL_CASES:
            for entry in (Service.send_message, Service.stream_message):
                with self.subTest(label, entry=entry.__name__):
                    kwargs = {"messages": OK, "provider": self.gpt.id, **self.resolve(arguments)}
                    self.assertRefused(label, lambda entry=entry, kwargs=kwargs: entry(**kwargs), fragment)
        self.assertFalse(self.fake.requests, "no refused call may reach a provider")

    def test_embed_refuses_bad_input(self):
        embedder = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "openai_compatible", name="Embedder", model="mistral-embed")
        )
        Service = self.env["ai.service"].with_user(self.caller)
        for label, arguments, fragment in EMBED_CASES:
            with self.subTest(label):
                kwargs = {"texts": TEXTS, "provider": embedder.id, **self.resolve(arguments)}
                self.assertRefused(label, lambda kwargs=kwargs: Service.embed(**kwargs), fragment, kind="embedding")
        self.assertFalse(self.fake.requests, "no refused call may reach a provider")

    def test_stream_message_refuses_unknown_parameters(self):
        with self.assertRaisesRegex(UserError, "unknown: stream, temprature"):
            self.env["ai.service"].stream_message(OK, provider=self.gpt, temprature=0, stream=True)

    def test_provider_create_and_write_refuse_bad_values(self):
        Provider = self.env["ai.service.provider"]
        snapshot = self.gpt.read(list(PROVIDER_CASES_FIELDS))[0]
        for label, values, fragment in PROVIDER_CASES:
            with self.subTest(label):
                before = self.row_counts()
                with self.assertRaises(ValidationError) as create:
                    Provider.create(self._provider_vals(self.fake, "openai_compatible", **values))
                self.assertClearMessage(create.exception, fragment)
                with self.assertRaises(ValidationError) as write:
                    self.gpt.write(values)
                self.assertClearMessage(write.exception, fragment)
                self.assertEqual(self.row_counts(), before)
                self.gpt.invalidate_recordset()
                self.assertEqual(self.gpt.read(list(PROVIDER_CASES_FIELDS))[0], snapshot)

    def test_settings_refuse_bad_values(self):
        company = self.env.company
        kept = company.read(["ai_prompt_retention_days", "ai_default_provider_id"])[0]
        for label, values, fragment in SETTINGS_CASES:
            with self.subTest(label):
                before = self.row_counts()
                with self.assertRaises(ValidationError) as caught:
                    self.env["res.config.settings"].create(self.resolve(values)).execute()
                self.assertClearMessage(caught.exception, fragment)
                self.assertEqual(self.row_counts(), before)
                company.invalidate_recordset()
                self.assertEqual(company.read(["ai_prompt_retention_days", "ai_default_provider_id"])[0], kept)

    def test_recommend_provider_refuses_bad_input(self):
        Optimizer = self.env["ai.cost.optimizer"].with_user(self.caller)
        for label, arguments, fragment in RECOMMEND_CASES:
            with self.subTest(label):
                kwargs = {"task_type": "chat", "context_size_tokens": 1000, **self.resolve(arguments)}
                before = self.row_counts()
                with self.assertRaises(UserError) as caught:
                    Optimizer.recommend_provider(**kwargs)
                self.assertClearMessage(caught.exception, fragment)
                self.assertEqual(self.row_counts(), before, "a refused question stores no recommendation")

    def test_budget_create_and_write_refuse_bad_values(self):
        Budget = self.env["ai.cost.budget"]
        budget = Budget.create({"name": "Kept", "budget_amount": 10.0})
        fields_ = sorted({name for _label, values, _fragment in BUDGET_CASES for name in values})
        snapshot = budget.read(fields_)[0]
        for label, values, fragment in BUDGET_CASES:
            with self.subTest(label):
                values = self.resolve(values)
                before = self.row_counts()
                with self.assertRaises(UserError) as create:
                    Budget.create({"name": "New", "budget_amount": 5.0, **values})
                self.assertClearMessage(create.exception, fragment)
                with self.assertRaises(UserError) as write:
                    budget.write(values)
                self.assertClearMessage(write.exception, fragment)
                self.assertEqual(self.row_counts(), before)
                budget.invalidate_recordset()
                self.assertEqual(budget.read(fields_)[0], snapshot)


PROVIDER_CASES_FIELDS = sorted({name for _label, values, _fragment in PROVIDER_CASES for name in values})
