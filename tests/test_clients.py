"""End to end: the real anthropic SDK and requests against the fake provider on loopback."""

import dataclasses
import socket
import traceback

import pytest

from ai_cost_optimizer.core.clients import (
    ChatRequest,
    ProviderConfig,
    ProviderError,
    anthropic_client,
    chat,
    open_stream,
    openai_client,
)
from ai_cost_optimizer.core.tokens import count_message_tokens, count_text_tokens
from ai_cost_optimizer.core.usage import Usage, from_anthropic, from_openai
from ai_cost_optimizer.tests.fake_provider import DEFAULT_REPLY

SYSTEM = "You are the sales assistant of a furniture company. " * 30
QUESTION = "Which desk fits a small office?"
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
REQUEST = ChatRequest(MESSAGES)
BAD_KEY = "sk-live-do-not-leak-123456"


def tokens(text: str) -> int:
    return count_text_tokens(text).tokens


@pytest.fixture(params=["anthropic", "openai"])
def config(request, anthropic_config, openai_config) -> ProviderConfig:
    """Each test using it runs against both wire protocols."""
    return anthropic_config if request.param == "anthropic" else openai_config


# -- successful calls ------------------------------------------------------------------------


def test_anthropic_prompt_caching_writes_then_reads(server, anthropic_config):
    config = dataclasses.replace(anthropic_config, prompt_caching=True)
    first = chat(config, ChatRequest(MESSAGES, max_tokens=200))
    second = chat(config, ChatRequest(MESSAGES, max_tokens=200))

    prompt = tokens(SYSTEM) + tokens(QUESTION)
    assert first.usage == Usage(prompt, tokens(DEFAULT_REPLY), cache_write_tokens=tokens(SYSTEM))
    assert second.usage == Usage(prompt, tokens(DEFAULT_REPLY), cache_read_tokens=tokens(SYSTEM))
    assert second.usage == from_anthropic(server.last_usage)  # the ledger equals what was reported
    assert (second.content, second.model, second.attempts, second.usage_reported) == (
        DEFAULT_REPLY,
        "claude-haiku-4-5",
        1,
        True,
    )

    sent = server.requests[-1]
    assert sent["path"] == "/v1/messages"
    assert sent["json"]["system"] == [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    assert sent["json"]["messages"] == [{"role": "user", "content": QUESTION}]
    assert sent["json"]["max_tokens"] == 200


def test_anthropic_request_shape_without_caching(server, anthropic_config):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello."},
        {"role": "user", "content": "Are you there?"},
    ]
    result = chat(anthropic_config, ChatRequest(messages, temperature=0.2))
    body = server.requests[-1]["json"]
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert body["messages"] == [{"role": "user", "content": "Hello.\n\nAre you there?"}]
    assert body["temperature"] == 0.2
    assert result.usage.cache_read_tokens == result.usage.cache_write_tokens == 0
    assert result.usage == from_anthropic(server.last_usage)


def test_anthropic_caching_blocks_mark_only_the_last(server, anthropic_config):
    config = dataclasses.replace(anthropic_config, prompt_caching=True)
    chat(config, ChatRequest([{"role": "system", "content": "A"}, {"role": "system", "content": "B"}, MESSAGES[1]]))
    assert server.requests[-1]["json"]["system"] == [
        {"type": "text", "text": "A"},
        {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}},
    ]


def test_anthropic_sdk_client_is_reused_and_cache_is_bounded(anthropic_config):
    client = anthropic_client._client(anthropic_config)
    assert anthropic_client._client(dataclasses.replace(anthropic_config)) is client
    for port in range(20):
        anthropic_client._client(dataclasses.replace(anthropic_config, base_url=f"http://127.0.0.1:{port + 1}"))
    assert len(anthropic_client._clients) <= anthropic_client._MAX_CLIENTS


def test_openai_compatible_with_cached_tokens(server, openai_config):
    server.set_cached_tokens(128)
    result = chat(openai_config, ChatRequest(MESSAGES, max_tokens=64, temperature=0))

    assert result.usage == Usage(tokens(SYSTEM) + tokens(QUESTION), tokens(DEFAULT_REPLY), cache_read_tokens=128)
    assert result.usage == from_openai(server.last_usage)
    assert (result.content, result.model, result.usage_reported) == (DEFAULT_REPLY, "gpt-4o-mini", True)

    sent = server.requests[-1]
    assert sent["path"] == "/v1/chat/completions"  # trailing slash of base_url stripped
    assert sent["headers"]["authorization"] == "***"  # a bearer key was sent (masked in the record)
    assert sent["json"] == {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 64, "temperature": 0}


def test_scripted_cached_tokens_and_usage_override(server, openai_config):
    server.queue_responses([{"cached_tokens": 7}, {"usage": {"prompt_tokens": 10, "completion_tokens": 2}}])
    assert chat(openai_config, REQUEST).usage.cache_read_tokens == 7
    assert chat(openai_config, REQUEST).usage == Usage(10, 2)


def test_missing_usage_is_estimated(server, config):
    server.queue_responses([{"no_usage": True}])
    result = chat(config, REQUEST)
    assert result.usage_reported is False
    assert server.last_usage is None
    assert result.usage == Usage(
        input_tokens=count_message_tokens(MESSAGES, config.model).tokens,
        output_tokens=count_text_tokens(DEFAULT_REPLY, config.model).tokens,
    )


# -- the environment's proxy settings ----------------------------------------------------------


@pytest.fixture
def proxy_environment(monkeypatch):
    """Sets the environment's proxy variables for one test, and forgets the settings read before it."""
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    openai_client._environment_settings.cache_clear()
    yield monkeypatch.setenv
    openai_client._environment_settings.cache_clear()


def test_openai_compatible_requests_go_through_the_environments_proxy(server, openai_config, proxy_environment):
    proxy_environment("HTTP_PROXY", server.url)  # the fake provider as the proxy: it receives the absolute URL
    config = dataclasses.replace(openai_config, base_url="http://provider.invalid/v1")

    result = chat(config, REQUEST)

    assert result.content == DEFAULT_REPLY
    assert server.requests[-1]["path"] == "http://provider.invalid/v1/chat/completions"


def test_no_proxy_bypasses_the_proxy(server, openai_config, proxy_environment):
    with socket.socket() as closed:  # a port nothing listens on: a proxied request would fail
        closed.bind(("127.0.0.1", 0))
        proxy_environment("HTTP_PROXY", f"http://127.0.0.1:{closed.getsockname()[1]}")
    proxy_environment("NO_PROXY", "127.0.0.1")

    assert chat(openai_config, REQUEST).content == DEFAULT_REPLY
    assert server.requests[-1]["path"] == "/v1/chat/completions"


# -- retries -----------------------------------------------------------------------------------


def test_rate_limit_honours_retry_after(server, config, sleeps):
    server.queue_responses([{"status": 429, "retry_after": "1"}])
    result = chat(config, REQUEST, sleep=sleeps)
    assert result.attempts == 2
    assert sleeps.calls == [1.0]
    assert len(server.requests) == 2


def test_retry_after_ms_and_cap(server, config, sleeps):
    config = dataclasses.replace(config, max_backoff=2.0)
    server.queue_responses([{"status": 529, "retry_after_ms": "250"}, {"status": 429, "retry_after": "100"}])
    assert chat(config, REQUEST, sleep=sleeps).attempts == 3
    assert sleeps.calls == [0.25, 2.0]


def test_server_error_then_success(server, config, sleeps):
    server.queue_responses([{"status": 500}])
    result = chat(config, REQUEST, sleep=sleeps)
    assert result.attempts == 2 and result.content == DEFAULT_REPLY
    assert len(sleeps.calls) == 1 and 0 < sleeps.calls[0] <= config.backoff_base


def test_gives_up_after_max_retries(server, config, sleeps):
    server.queue_responses([{"status": 503}] * 3 + [{}])
    with pytest.raises(ProviderError) as caught:
        chat(config, REQUEST, sleep=sleeps)
    error = caught.value
    assert (error.kind, error.status, error.attempts, error.retryable) == ("server", 503, 3, True)
    assert "after 3 attempts" in str(error)
    assert len(server.requests) == 3 and len(sleeps.calls) == 2


def test_bad_request_is_not_retried(server, config, sleeps):
    server.queue_responses([{"status": 400, "message": "max_tokens: too large"}, {}])
    with pytest.raises(ProviderError) as caught:
        chat(config, REQUEST, sleep=sleeps)
    assert (caught.value.kind, caught.value.status, caught.value.attempts) == ("invalid_request", 400, 1)
    assert "max_tokens: too large" in str(caught.value)
    assert len(server.requests) == 1 and sleeps.calls == []


def test_truncated_response_is_retried(server, config, sleeps):
    server.queue_responses([{"truncated": True}])
    assert chat(config, REQUEST, sleep=sleeps).attempts == 2


# -- failures ----------------------------------------------------------------------------------


def test_bad_key_is_auth_error_without_the_key(server, config, sleeps):
    config = dataclasses.replace(config, api_key=BAD_KEY)
    with pytest.raises(ProviderError) as caught:
        chat(config, REQUEST, sleep=sleeps)
    error = caught.value
    assert (error.kind, error.status, error.attempts) == ("auth", 401, 1)
    assert "invalid API key" in str(error)  # the server echoed the key in its message...
    assert BAD_KEY not in str(error) and BAD_KEY not in repr(error)  # ...and it was masked
    assert BAD_KEY not in "".join(traceback.format_exception(error))  # nor in chained exceptions


def test_connection_refused(config, sleeps):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}" + ("/v1" if config.kind == "openai_compatible" else "")
    config = dataclasses.replace(config, base_url=url, max_retries=1)
    with pytest.raises(ProviderError) as caught:
        chat(config, REQUEST, sleep=sleeps)
    assert (caught.value.kind, caught.value.attempts, caught.value.status) == ("connection", 2, None)
    assert config.api_key not in str(caught.value)
    # One sentence naming the address and the cause, without the HTTP library's internals.
    assert str(caught.value) == f"Could not connect to {url} (connection refused) after 2 attempts."
    assert_no_library_internals(str(caught.value))


def test_unknown_host(config, sleeps):
    config = dataclasses.replace(config, base_url="http://no-such-host.invalid/v1", max_retries=0)
    with pytest.raises(ProviderError) as caught:
        chat(config, REQUEST, sleep=sleeps)
    assert str(caught.value) == "Could not connect to http://no-such-host.invalid/v1 (host name not found)."


def test_timeout(server, config, sleeps):
    server.set_latency(1.0)
    config = dataclasses.replace(config, timeout=0.2, max_retries=0)
    with pytest.raises(ProviderError) as caught:
        chat(config, REQUEST, sleep=sleeps)
    assert (caught.value.kind, caught.value.attempts) == ("timeout", 1)
    assert str(caught.value) == f"No answer from {config.base_url} within 0.2 s."
    assert_no_library_internals(str(caught.value))


def assert_no_library_internals(message: str) -> None:
    for internal in ("0x", "urllib3", "HTTPConnectionPool", "httpx", "httpcore", "Error("):
        assert internal not in message, message


# -- providers without a key, and the demo model -----------------------------------------------


def test_openai_compatible_without_key_sends_no_authorization(server, openai_config):
    server.set_key_required(False)  # as Ollama or a local vLLM
    result = chat(dataclasses.replace(openai_config, api_key=""), REQUEST)
    assert result.content == DEFAULT_REPLY
    assert "authorization" not in server.requests[-1]["headers"]


def test_openai_compatible_with_key_sends_it(server, openai_config):
    chat(openai_config, REQUEST)
    assert server.requests[-1]["headers"]["authorization"] == "***"  # masked by the fake's record


def test_demo_model_answers_locally_with_counted_usage():
    config = ProviderConfig(kind="demo", base_url="", api_key="", model="gpt-4o-mini")
    result = chat(config, ChatRequest(MESSAGES, max_tokens=200))
    assert result.content.startswith("Demo answer") and QUESTION in result.content
    assert result.usage == Usage(
        count_message_tokens(MESSAGES, "gpt-4o-mini").tokens, count_text_tokens(result.content, "gpt-4o-mini").tokens
    )
    assert (result.model, result.attempts, result.usage_reported) == ("gpt-4o-mini", 1, True)


def test_demo_model_streams_its_answer_word_by_word():
    config = ProviderConfig(kind="demo", base_url="", api_key="", model="gpt-4o-mini")
    whole = chat(config, ChatRequest(MESSAGES, 200))
    stream = open_stream(config, ChatRequest(MESSAGES, 200))
    chunks = list(stream)
    assert len(chunks) > 5 and "".join(chunks) == whole.content
    result = stream.result()
    assert (result.usage, result.usage_reported) == (whole.usage, True)
    closed = open_stream(config, ChatRequest(MESSAGES, 200))
    first = next(closed)
    closed.close()
    assert closed.result().usage.output_tokens == count_text_tokens(first, "gpt-4o-mini").tokens


def test_demo_model_refuses_tools_and_reply_schemas():
    config = ProviderConfig(kind="demo", base_url="", api_key="", model="gpt-4o-mini")
    tool = {"name": "lookup", "description": "", "parameters": {"type": "object"}}
    with pytest.raises(ProviderError) as caught:
        chat(config, ChatRequest(MESSAGES, tools=[tool]))
    assert (caught.value.kind, caught.value.attempts) == ("invalid_request", 1)


def test_demo_model_stops_at_max_tokens():
    config = ProviderConfig(kind="demo", base_url="", api_key="", model="gpt-4o-mini")
    result = chat(config, ChatRequest(MESSAGES, max_tokens=8))
    assert 0 < result.usage.output_tokens <= 8
    assert result.content.startswith("Demo answer")


def test_malformed_json(server, config, sleeps):
    server.queue_responses([{"malformed": True}, {}])
    with pytest.raises(ProviderError) as caught:
        chat(config, REQUEST, sleep=sleeps)
    # Not retried: a provider that answered 200 may have billed the call.
    assert (caught.value.kind, caught.value.attempts, caught.value.retryable) == ("malformed", 1, False)


def test_openai_missing_choices(server, openai_config):
    server.queue_responses([{"body": {"id": "x", "object": "chat.completion", "choices": []}}])
    with pytest.raises(ProviderError, match="no choices") as caught:
        chat(openai_config, REQUEST)
    assert caught.value.kind == "malformed"


def test_anthropic_missing_content(server, anthropic_config):
    server.queue_responses([{"body": {"id": "x", "type": "message", "role": "assistant"}}])
    with pytest.raises(ProviderError) as caught:
        chat(anthropic_config, REQUEST)
    assert caught.value.kind == "malformed"


def test_unknown_kind(anthropic_config):
    with pytest.raises(ValueError, match="Unknown provider kind 'palm'"):
        chat(dataclasses.replace(anthropic_config, kind="palm"), REQUEST)
