"""Streams, tool calls, structured output and embeddings through the wire clients, against the fake
provider's real HTTP (the anthropic SDK for Anthropic)."""

import json

import pytest

from ai_cost_optimizer.core.clients import ChatRequest, ProviderError, chat, embed, open_stream
from ai_cost_optimizer.core.clients.anthropic_client import RESPONSE_TOOL
from ai_cost_optimizer.core.tokens import count_message_tokens, count_text_tokens
from ai_cost_optimizer.core.usage import from_anthropic, from_openai
from ai_cost_optimizer.tests.fake_provider import DEFAULT_REPLY

QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {
    "name": "get_weather",
    "description": "The weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(params=["anthropic", "openai"])
def config(request, anthropic_config, openai_config):
    return anthropic_config if request.param == "anthropic" else openai_config


def reported_usage(server, config):
    normalize = from_anthropic if config.kind == "anthropic" else from_openai
    return normalize(server.last_usage)


def test_stream_delivers_the_reply_in_chunks_with_the_providers_usage(server, config):
    stream = open_stream(config, ChatRequest(QUESTION, 100))
    chunks = list(stream)
    assert len(chunks) > 1
    assert "".join(chunks) == DEFAULT_REPLY
    result = stream.result()
    assert result.usage_reported
    assert result.usage == reported_usage(server, config)
    assert result.content == DEFAULT_REPLY
    assert stream.first_chunk_ms <= result.latency_ms
    sent = server.requests[-1]["json"]
    assert sent["stream"] is True
    if config.kind == "openai_compatible":
        assert sent["stream_options"] == {"include_usage": True}


def test_anthropic_stream_reports_cache_tokens(server, anthropic_config):
    anthropic_config.prompt_caching = True
    messages = [{"role": "system", "content": "You are a CRM assistant. " * 80}, *QUESTION]
    list(open_stream(anthropic_config, ChatRequest(messages, 100)))
    second = open_stream(anthropic_config, ChatRequest(messages, 100))
    list(second)
    usage = second.result().usage
    assert usage.cache_read_tokens > 0
    assert usage == from_anthropic(server.last_usage)


def test_broken_stream_raises_and_keeps_what_came(server, config):
    # After the first text chunk: Anthropic's message_start, ping and content_block_start come before it.
    server.queue_responses([{"disconnect_after": 4 if config.kind == "anthropic" else 2}])
    stream = open_stream(config, ChatRequest(QUESTION, 100))
    received = []
    with pytest.raises(ProviderError) as raised:
        for chunk in stream:
            received.append(chunk)
    assert raised.value.kind == "connection"
    assert str(raised.value).startswith(f"The stream from {config.base_url} broke off (")
    assert not any(internal in str(raised.value) for internal in ("0x", "urllib3", "httpx", "Pool"))
    assert received and "".join(received) != DEFAULT_REPLY
    result = stream.result(parse_tools=False)
    assert not result.usage_reported
    assert result.usage.output_tokens == count_text_tokens("".join(received), config.model).tokens
    if config.kind == "anthropic":
        # message_start came: the prompt side is the provider's, only the output is counted.
        assert result.usage.input_tokens == from_anthropic(server.last_usage).input_tokens
    else:
        assert result.usage.input_tokens == count_message_tokens(QUESTION, config.model).tokens


def test_closed_stream_keeps_what_came(server, config):
    stream = open_stream(config, ChatRequest(QUESTION, 100))
    first = next(stream)
    stream.close()
    result = stream.result()
    assert result.content == first
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0


def test_tool_calls_in_one_shape(server, config):
    server.set_tool_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}])
    result = chat(config, ChatRequest(QUESTION, 100, tools=[WEATHER], tool_choice="auto"))
    assert [(call["name"], call["arguments"]) for call in result.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert result.tool_calls[0]["id"]
    sent = server.requests[-1]["json"]
    if config.kind == "anthropic":
        assert sent["tools"][0]["input_schema"] == WEATHER["parameters"]
        assert sent["tool_choice"] == {"type": "auto"}
    else:
        assert sent["tools"][0] == {"type": "function", "function": WEATHER}
        assert sent["tool_choice"] == "auto"
    # The conversation goes on with the call and its result, in the provider's format.
    follow_up = [
        *QUESTION,
        {"role": "assistant", "content": "", "tool_calls": result.tool_calls},
        {"role": "tool", "tool_call_id": result.tool_calls[0]["id"], "content": "Sunny, 21 C"},
    ]
    server.set_tool_calls([])
    answer = chat(config, ChatRequest(follow_up, 100, tools=[WEATHER]))
    assert answer.content == DEFAULT_REPLY
    sent = server.requests[-1]["json"]["messages"]
    if config.kind == "anthropic":
        assert sent[1]["content"][0]["type"] == "tool_use"
        assert sent[2]["content"][0] == {
            "type": "tool_result", "tool_use_id": result.tool_calls[0]["id"], "content": "Sunny, 21 C"
        }
    else:
        assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
        assert sent[2]["tool_call_id"] == result.tool_calls[0]["id"]


def test_streamed_tool_calls_are_assembled(server, config):
    server.set_tool_calls([{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}])
    stream = open_stream(config, ChatRequest(QUESTION, 100, tools=[WEATHER], tool_choice={"name": "get_weather"}))
    list(stream)
    calls = stream.result().tool_calls
    assert [(call["name"], call["arguments"]) for call in calls] == [
        ("get_weather", {"city": "Paris", "unit": "celsius"})
    ]


def test_tool_definitions_are_billed_as_input(server, config):
    plain = chat(config, ChatRequest(QUESTION, 100)).usage.input_tokens
    with_tools = chat(config, ChatRequest(QUESTION, 100, tools=[WEATHER])).usage.input_tokens
    assert with_tools > plain


def test_structured_output(server, config):
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
    server.set_reply('{"score": 87}')
    result = chat(config, ChatRequest(QUESTION, 100, response_format=schema))
    assert json.loads(result.content) == {"score": 87}
    assert result.tool_calls == []
    sent = server.requests[-1]["json"]
    if config.kind == "anthropic":
        assert sent["tool_choice"] == {"type": "tool", "name": RESPONSE_TOOL}
        assert sent["tools"][0]["input_schema"] == schema
    else:
        assert sent["response_format"]["json_schema"]["schema"] == schema


def test_embeddings_in_order_with_usage(server, openai_config):
    openai_config.model = "text-embedding-3-small"
    result = embed(openai_config, ["first text", "second, longer text"])
    assert len(result.vectors) == 2 and result.vectors[0] != result.vectors[1]
    assert result.usage.input_tokens == server.last_usage["prompt_tokens"] > 0
    assert result.usage_reported
    assert server.requests[-1]["path"] == "/v1/embeddings"


def test_embeddings_only_on_openai_compatible(anthropic_config):
    with pytest.raises(ValueError, match="Unknown provider kind"):
        embed(anthropic_config, ["text"])


def test_anthropic_caches_the_tool_list_with_prompt_caching(server, anthropic_config):
    anthropic_config.prompt_caching = True
    chat(anthropic_config, ChatRequest(QUESTION, 100, tools=[WEATHER, {**WEATHER, "name": "get_forecast"}]))
    tools = server.requests[-1]["json"]["tools"]
    assert [tool.get("cache_control") for tool in tools] == [None, {"type": "ephemeral"}]
    anthropic_config.prompt_caching = False
    chat(anthropic_config, ChatRequest(QUESTION, 100, tools=[WEATHER]))
    assert "cache_control" not in server.requests[-1]["json"]["tools"][0]
