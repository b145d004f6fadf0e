"""Checks of the gateway's optional text parameters and of text that reaches PostgreSQL."""

import pytest

from ai_cost_optimizer.core.messages import (
    MAX_PROMPT_CHARS,
    batches,
    check_code,
    check_label,
    check_model_name,
    prompt_hash,
    short_repr,
    storable_text,
    validate_messages,
    validate_texts,
)
from ai_cost_optimizer.core.tools import (
    check_response_format,
    check_tool_choice,
    check_tools,
    parse_structured,
    tools_text,
)


@pytest.mark.parametrize("value", [None, False, ""])
def test_absent_labels(value):
    assert check_label(value, "operation") is None


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (42, "must be a string, got int"),
        (["x"], "must be a string, got list"),
        ("x" * 257, "257 characters; at most 256"),
        ("two\nlines", "one line"),
        ("nul\x00", "one line"),
        ("bad \ud800 surrogate", "not valid Unicode"),
    ],
)
def test_bad_labels(value, error):
    with pytest.raises(ValueError, match=error):
        check_label(value, "operation")


def test_unicode_labels_are_fine():
    assert check_label("résumé · 見積もり 🚀", "operation") == "résumé · 見積もり 🚀"


@pytest.mark.parametrize("value", ["chat", "code.review", "lead-qualif_2"])
def test_codes(value):
    assert check_code(value, "task_type") == value


@pytest.mark.parametrize("value", ["crm.lead", "res.partner", "x_custom.model_2", "board"])
def test_model_names(value):
    assert check_model_name(value, "res_model") == value


@pytest.mark.parametrize("value", ["Res.Partner", "res..partner", "res.partner;", ".res", "res partner", "m" * 129])
def test_bad_model_names(value):
    with pytest.raises(ValueError, match="res_model"):
        check_model_name(value, "res_model")


@pytest.mark.parametrize("value", [None, "", " chat", "2fast", "chat; DROP TABLE x", "x" * 65, 7])
def test_bad_codes(value):
    with pytest.raises(ValueError, match="task_type must be a code"):
        check_code(value, "task_type")


@pytest.mark.parametrize(
    ("content", "error"),
    [("a\x00b", "NUL"), ("\udfff", "not valid Unicode"), ("x" * (MAX_PROMPT_CHARS + 1), "at most")],
)
def test_message_contents_postgresql_cannot_store(content, error):
    with pytest.raises(ValueError, match=error):
        validate_messages([{"role": "user", "content": content}])


def test_storable_text_and_short_repr():
    assert storable_text("a\x00b\ud800c") == "ab?c"
    assert short_repr("x" * 1000).endswith("...") and len(short_repr("x" * 1000)) == 60
    assert short_repr(10**5000) == "<int>"


# -- tool use, structured output and embedding inputs (core.tools, core.messages) --------------

TOOL = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
CALL = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
ASK = {"role": "user", "content": "Weather in Paris?"}


@pytest.mark.parametrize(
    ("tools", "error"),
    [
        ("get_weather", "non-empty list"),
        ([], "non-empty list"),
        ([TOOL] * 129, "at most 128"),
        ([None], "Tool 0 must be a dict"),
        ([{**TOOL, "strict": True}], "unknown keys"),
        ([{**TOOL, "name": "a b"}], "name must be 1 to 64"),
        ([{**TOOL, "name": "x" * 65}], "name must be 1 to 64"),
        ([{**TOOL, "description": 1}], "description must be a text"),
        ([{"name": "t"}], "must be a JSON schema"),
        ([{**TOOL, "parameters": {"type": "string"}}], "must describe an object"),
        ([{**TOOL, "parameters": {"type": "object", "properties": 1}}], "'properties' must be"),
        ([{**TOOL, "parameters": {"type": "object", "required": [1]}}], "'required' must be"),
        ([{**TOOL, "parameters": {"type": "object", "default": float("nan")}}], "JSON values only"),
        ([{**TOOL, "parameters": {"type": "object", "x": "y" * 100_001}}], "larger than"),
        ([TOOL, TOOL], "more than once"),
    ],
)
def test_bad_tools(tools, error):
    with pytest.raises(ValueError, match=error):
        check_tools(tools)


def test_good_tools_and_choices():
    assert check_tools(None) is None
    assert check_tools([TOOL]) == [TOOL]
    for choice in ("auto", "none", "required", {"name": "get_weather"}, None):
        assert check_tool_choice(choice, [TOOL]) == choice
    assert tools_text([TOOL], None) and tools_text(None, TOOL["parameters"]) and not tools_text(None, None)


@pytest.mark.parametrize(
    ("choice", "tools", "error"),
    [
        ("auto", None, "needs tools"),
        ("any", [TOOL], "tool_choice must be"),
        (True, [TOOL], "tool_choice must be"),
        ({"type": "tool", "name": "get_weather"}, [TOOL], "tool_choice must be"),
        ({"name": "other"}, [TOOL], "not one of the tools"),
    ],
)
def test_bad_tool_choice(choice, tools, error):
    with pytest.raises(ValueError, match=error):
        check_tool_choice(choice, tools)


@pytest.mark.parametrize(
    ("schema", "tools", "error"),
    [
        ("json", None, "must be a JSON schema"),
        ({"type": "json_schema"}, None, "must describe an object"),
        ({"type": "object", "required": "a"}, None, "'required' must be"),
        ({"type": "object"}, [TOOL], "cannot be combined with tools"),
    ],
)
def test_bad_response_format(schema, tools, error):
    with pytest.raises(ValueError, match=error):
        check_response_format(schema, tools)


@pytest.mark.parametrize(
    ("content", "error"),
    [("Sorry.", "not JSON"), ("[1, 2]", "not a JSON object"), ('{"other": 1}', "lacks the required score")],
)
def test_structured_replies_that_do_not_parse(content, error):
    with pytest.raises(ValueError, match=error):
        parse_structured(content, {"type": "object", "required": ["score"]})


def test_structured_reply_parses():
    assert parse_structured('{"score": 3}', {"type": "object", "required": ["score"]}) == {"score": 3}


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([ASK, {"role": "assistant", "content": "", "tool_calls": []}], "non-empty list"),
        ([ASK, {"role": "assistant", "content": "", "tool_calls": [{**CALL, "id": ""}]}], "needs an 'id'"),
        ([ASK, {"role": "assistant", "content": "", "tool_calls": [{**CALL, "arguments": "{}"}]}], "must be a dict"),
        ([{**ASK, "tool_calls": [CALL]}], "only assistant messages call tools"),
        ([ASK, {"role": "tool", "content": "Sunny"}], "needs the tool_call_id"),
        ([ASK, {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}], "no earlier assistant message"),
        ([{**ASK, "tool_call_id": "call_1"}], "only tool messages answer"),
    ],
)
def test_bad_tool_messages(messages, error):
    with pytest.raises(ValueError, match=error):
        validate_messages(messages)


def test_a_tool_conversation_is_valid():
    messages = [
        ASK,
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
    ]
    assert validate_messages(messages) == messages


@pytest.mark.parametrize(
    ("texts", "error"),
    [
        ("text", "must be a list"),
        ([], "is empty"),
        (["a"] * 11, "at most 10"),
        (["a", 1], "Text 1 must be a string"),
        (["a", " "], "Text 1 is empty"),
        (["a\x00"], "NUL"),
    ],
)
def test_bad_texts(texts, error):
    with pytest.raises(ValueError, match=error):
        validate_texts(texts, 10)


def test_batches_keep_the_order_and_the_limits():
    texts = list("abcdefg")
    assert batches(texts, [1] * 7, 3, 100) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert batches(texts, [40, 40, 40, 200, 1, 1, 1], 10, 100) == [["a", "b"], ["c"], ["d"], ["e", "f", "g"]]


def test_prompt_hash_tells_tool_calls_apart_and_keeps_plain_prompts():
    plain = [ASK]
    assert prompt_hash(plain, "gpt-4o-mini") == prompt_hash([dict(ASK)], "gpt-4o-mini", None)
    paris = [ASK, {"role": "assistant", "content": "", "tool_calls": [CALL]}]
    lyon = [ASK, {"role": "assistant", "content": "", "tool_calls": [{**CALL, "arguments": {"city": "Lyon"}}]}]
    assert prompt_hash(paris, "gpt-4o-mini") != prompt_hash(lyon, "gpt-4o-mini")
    assert prompt_hash(plain, "gpt-4o-mini") != prompt_hash(plain, "gpt-4o-mini", {"tools": [TOOL]})
