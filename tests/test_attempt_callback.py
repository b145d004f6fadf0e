"""The retry loop reports every failed attempt to its caller, so each request sent can be accounted for."""

import pytest

from ai_cost_optimizer.core.clients import ChatRequest, ProviderError, chat

REQUEST = ChatRequest([{"role": "user", "content": "Which desk fits a small office?"}])


@pytest.fixture(params=["anthropic", "openai"])
def config(request, anthropic_config, openai_config):
    """Each test runs against both wire protocols."""
    return anthropic_config if request.param == "anthropic" else openai_config


def test_each_failed_attempt_is_reported_before_the_retry(server, config, sleeps):
    server.queue_responses([{"status": 503}, {"status": 429, "retry_after": "0"}])
    failed = []

    def record(error):
        failed.append((error.kind, error.attempts, len(server.requests)))

    result = chat(config, REQUEST, sleep=sleeps, on_attempt_failed=record)
    assert result.attempts == 3
    assert failed == [("server", 1, 1), ("rate_limit", 2, 2)]


@pytest.mark.parametrize(("faults", "attempts"), [([{"status": 500}] * 3, 3), ([{"status": 401}], 1)])
def test_the_last_failed_attempt_is_reported_too(server, config, sleeps, faults, attempts):
    server.queue_responses(faults)
    failed = []
    with pytest.raises(ProviderError) as caught:
        chat(config, REQUEST, sleep=sleeps, on_attempt_failed=failed.append)
    assert [error.attempts for error in failed] == list(range(1, attempts + 1))
    assert failed[-1] is caught.value
