"""The providers' own rate limits: each protocol's headers parsed into one RateLimits (missing and malformed ones
included), what makes a provider exhausted and until when, what a report changes in what is stored, and the
limits the clients carry on their answers, streams and errors against the fake provider."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from ai_cost_optimizer.core.clients import ChatRequest, ProviderError, chat, open_stream
from ai_cost_optimizer.core.clients.base import RATE_LIMITED_AHEAD
from ai_cost_optimizer.core.clients.openai_client import embed_openai_compatible
from ai_cost_optimizer.core.clients.rate_limits import (
    EXHAUSTION_CHANGED,
    FIGURES_STALE,
    REFRESH_AFTER,
    UNKNOWN_RESET,
    RateLimits,
    StoredRateLimits,
    anthropic_rate_limits,
    ceil_second,
    openai_rate_limits,
    parse_count,
    parse_duration,
    parse_time,
    refused,
    tightest,
)

NOW = datetime(2026, 12, 6, 10, 0, 0, tzinfo=timezone.utc)
REQUEST = ChatRequest([{"role": "user", "content": "Which desk fits a small office?"}])


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


class Headers(dict):
    """Headers looked up case-insensitively, as requests' and httpx's are."""

    def __init__(self, pairs: dict) -> None:
        super().__init__({name.lower(): value for name, value in pairs.items()})

    def get(self, name, default=None):
        return super().get(name.lower(), default)


# -- Anthropic ---------------------------------------------------------------------------------


def test_anthropic_headers():
    headers = Headers({
        "anthropic-ratelimit-requests-limit": "1000",
        "anthropic-ratelimit-requests-remaining": "999",
        "anthropic-ratelimit-requests-reset": "2026-12-06T10:00:01Z",
        "anthropic-ratelimit-tokens-limit": "96000",
        "Anthropic-RateLimit-Tokens-Remaining": "95000",
        "anthropic-ratelimit-tokens-reset": "2026-12-06T10:00:06Z",
    })
    assert anthropic_rate_limits(headers, NOW) == RateLimits(NOW, 999, 95000, at(1), at(6))


def test_anthropic_tokens_left_are_the_tightest_of_its_token_limits():
    headers = Headers({
        "anthropic-ratelimit-tokens-remaining": "95000", "anthropic-ratelimit-tokens-reset": "2026-12-06T10:00:06Z",
        "anthropic-ratelimit-input-tokens-remaining": "79000",
        "anthropic-ratelimit-input-tokens-reset": "2026-12-06T10:00:05Z",
        "anthropic-ratelimit-output-tokens-remaining": "0",
        "anthropic-ratelimit-output-tokens-reset": "2026-12-06T10:00:30+00:00",
    })
    limits = anthropic_rate_limits(headers, NOW)
    assert (limits.requests_remaining, limits.tokens_remaining, limits.tokens_reset_at) == (None, 0, at(30))
    assert limits.exhausted_until() == at(30)
    headers["anthropic-ratelimit-output-tokens-remaining"] = "16000"
    assert anthropic_rate_limits(headers, NOW).tokens_remaining == 16000
    assert anthropic_rate_limits(headers, NOW).tokens_reset_at == at(30)


def test_anthropic_without_headers_reports_nothing():
    assert anthropic_rate_limits(Headers({"content-type": "application/json"}), NOW) is None
    # The other protocol's headers are not this one's.
    assert anthropic_rate_limits(Headers({"x-ratelimit-remaining-requests": "0"}), NOW) is None


def test_anthropic_malformed_headers_are_unknown():
    headers = Headers({
        "anthropic-ratelimit-requests-remaining": "lots",
        "anthropic-ratelimit-requests-reset": "in a minute",
        "anthropic-ratelimit-tokens-remaining": "-5",
        "anthropic-ratelimit-tokens-reset": "2026-13-45T99:00:00Z",
        "anthropic-ratelimit-input-tokens-remaining": "12.5",
    })
    assert anthropic_rate_limits(headers, NOW) is None
    headers["anthropic-ratelimit-requests-remaining"] = " 0 "
    limits = anthropic_rate_limits(headers, NOW)
    assert limits == RateLimits(NOW, 0, None, None, None)
    # Nothing left and no time given: left alone for a while, not forever.
    assert limits.exhausted_until() == NOW + UNKNOWN_RESET


# -- OpenAI ------------------------------------------------------------------------------------


def test_openai_headers():
    headers = Headers({
        "x-ratelimit-limit-requests": "5000",
        "x-ratelimit-remaining-requests": "4999",
        "x-ratelimit-reset-requests": "12ms",
        "X-RateLimit-Remaining-Tokens": "159976",
        "x-ratelimit-reset-tokens": "6m0s",
    })
    limits = openai_rate_limits(headers, NOW)
    assert limits == RateLimits(NOW, 4999, 159976, at(0.012), at(360))
    assert limits.exhausted_until() is None


@pytest.mark.parametrize(("text", "seconds"), [
    ("6m0s", 360), ("1s", 1), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0s", 0), ("2m59.56s", 179.56), ("7.66s", 7.66),
    ("1.5", 1.5), ("500us", 0.0005), (" 3s ", 3),
])
def test_openai_durations(text, seconds):
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "6m0", "1x", "-1s", "s", "1s garbage", "nan", "inf", None, "1d"])
def test_malformed_durations_are_unknown(text):
    assert parse_duration(text) is None


def test_openai_exhausted_until_its_reset():
    headers = Headers({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s",
                       "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m0s"})
    assert openai_rate_limits(headers, NOW).exhausted_until() == at(60)
    headers["x-ratelimit-remaining-tokens"] = "10"
    assert openai_rate_limits(headers, NOW).exhausted_until() == at(20)


def test_openai_missing_and_malformed_headers():
    assert openai_rate_limits(Headers({}), NOW) is None
    limits = openai_rate_limits(Headers({"x-ratelimit-remaining-requests": "many", "x-ratelimit-reset-requests": "1s",
                                         "x-ratelimit-remaining-tokens": "", "x-ratelimit-reset-tokens": "later"}), NOW)
    assert limits == RateLimits(NOW, None, None, at(1), None)
    assert limits.exhausted_until() is None


# -- the pieces --------------------------------------------------------------------------------


def test_counts_and_times():
    assert [parse_count(text) for text in ("0", "42", " 7", "-1", "1e3", "", None, "3.0")] == [
        0, 42, 7, None, None, None, None, None]
    assert parse_time("2026-12-06T11:00:00+01:00") == NOW
    assert parse_time("2026-12-06T10:00:00") == NOW  # no offset: UTC
    assert parse_time("2026-12-06T10:00:00.250Z") == at(0.25)
    assert [parse_time(text) for text in ("", "   ", "yesterday", None, "1733479200")] == [None] * 5


def test_tightest_limit():
    assert tightest([(None, None), (None, at(1))]) == (None, None)
    assert tightest([(5, at(1)), (3, at(9)), (None, None)]) == (3, at(9))
    assert tightest([(0, at(4)), (0, at(9)), (10, at(1))]) == (0, at(9))
    assert tightest([(0, None), (5, at(1))]) == (0, None)


def test_a_429_is_exhausted_until_its_retry_after():
    assert refused(None, None, NOW) is None
    limits = refused(None, 30, NOW)
    assert (limits.retry_at, limits.exhausted_until()) == (at(30), at(30))
    # Headers that say 0 with a later reset keep the later time.
    headers = RateLimits(NOW, 0, 100, at(45), at(1))
    assert refused(headers, 2, NOW).exhausted_until() == at(45)
    assert refused(RateLimits(NOW, 5, 100, at(1), at(1)), 2, NOW).exhausted_until() == at(2)


def test_ceil_second():
    assert ceil_second(None) is None
    assert ceil_second(NOW) == NOW
    assert ceil_second(at(0.001)) == at(1)
    assert ceil_second(at(59.5)) == at(60)


# -- what a report changes in what is stored ----------------------------------------------------


def test_a_first_report_is_stored():
    assert StoredRateLimits().change(RateLimits(NOW, 999, 1000, at(1), at(1))) == FIGURES_STALE


def test_a_report_with_room_is_stored_only_when_the_stored_one_is_old():
    stored = StoredRateLimits(until=None, reported_at=NOW)
    assert stored.change(RateLimits(NOW + REFRESH_AFTER - timedelta(seconds=1), 998)) is None
    assert stored.change(RateLimits(NOW + REFRESH_AFTER, 997)) == FIGURES_STALE


def test_running_out_and_recovering_change_where_calls_go():
    stored = StoredRateLimits(until=None, reported_at=NOW)
    exhausted = RateLimits(at(1), 0, 5000, at(30.2), at(2))
    assert stored.change(exhausted) == EXHAUSTION_CHANGED
    stored.keep(exhausted)
    assert (stored.until, stored.reported_at) == (at(31), at(1))
    assert stored.exhausted_at(at(30)) == at(31)
    assert stored.exhausted_at(at(31)) is None
    # The same end, give or take a second: nothing new.
    assert stored.change(RateLimits(at(2), 0, 5000, at(31.5), at(2))) is None
    assert stored.change(RateLimits(at(2), 0, 5000, at(45), at(2))) == EXHAUSTION_CHANGED
    # Room again, even before the time it named.
    assert stored.change(RateLimits(at(3), 10, 5000, at(30), at(2))) == EXHAUSTION_CHANGED


def test_only_running_out_or_having_room_again_is_signaled_to_the_other_processes():
    stored = StoredRateLimits(until=None, reported_at=NOW)
    exhausted = RateLimits(at(1), 0, 5000, at(30.2), at(2))
    assert stored.room_flips(exhausted)
    stored.keep(exhausted)
    # A 429's Retry-After moves the end on each answer: stored, not signaled.
    assert not stored.room_flips(RateLimits(at(2), 0, 5000, at(45), at(2)))
    assert stored.room_flips(RateLimits(at(3), 10, 5000, at(30), at(2)))


# -- the clients against the fake provider ------------------------------------------------------


@pytest.fixture(params=["anthropic", "openai"])
def config(request, anthropic_config, openai_config):
    return anthropic_config if request.param == "anthropic" else openai_config


def test_answers_carry_the_rate_limits(server, config):
    server.set_rate_limits(requests=41, tokens=7000, requests_reset=20, tokens_reset=360)
    before = datetime.now(timezone.utc)
    result = chat(config, REQUEST)
    limits = result.rate_limits
    assert (limits.requests_remaining, limits.tokens_remaining) == (41, 7000)
    assert before <= limits.reported_at <= datetime.now(timezone.utc)
    # Anthropic's times are whole seconds (and the answer takes its time on a busy machine), OpenAI's durations
    # count from the answer.
    assert abs((limits.requests_reset_at - limits.reported_at).total_seconds() - 20) <= 2
    assert abs((limits.tokens_reset_at - limits.reported_at).total_seconds() - 360) <= 2
    assert limits.exhausted_until() is None


def test_streams_carry_the_rate_limits_from_their_opening(server, config):
    server.set_rate_limits(requests=0, requests_reset=30)
    stream = open_stream(config, REQUEST)
    assert stream.rate_limits.requests_remaining == 0
    assert "".join(stream)
    assert stream.result().rate_limits == stream.rate_limits
    assert 27 <= (stream.rate_limits.exhausted_until() - stream.rate_limits.reported_at).total_seconds() <= 31


def test_a_429_carries_its_rate_limits(server, config):
    server.queue_responses([{"status": 429, "retry_after": "2", "rate_limits": {"tokens": 0, "tokens_reset": 60}}])
    with pytest.raises(ProviderError) as raised:
        chat(replace(config, max_retries=0), REQUEST)
    limits = raised.value.rate_limits
    assert (raised.value.kind, limits.requests_remaining, limits.tokens_remaining) == ("rate_limit", 999, 0)
    assert 57 <= (limits.exhausted_until() - limits.reported_at).total_seconds() <= 61
    assert abs((limits.retry_at - limits.reported_at).total_seconds() - 2) < 0.01


def test_a_server_error_carries_the_headers_but_no_wait(server, config):
    server.queue_responses([{"status": 500, "retry_after": "2"}])
    with pytest.raises(ProviderError) as raised:
        chat(replace(config, max_retries=0), REQUEST)
    assert raised.value.rate_limits.retry_at is None
    assert raised.value.rate_limits.exhausted_until() is None


def test_answers_without_or_with_malformed_headers(server, config):
    server.set_rate_limits(None)
    assert chat(config, REQUEST).rate_limits is None
    server.set_rate_limits({"requests": "plenty", "requests_reset": "whenever", "tokens": 12, "tokens_reset": "?"})
    limits = chat(config, REQUEST).rate_limits
    assert (limits.requests_remaining, limits.requests_reset_at, limits.tokens_remaining, limits.tokens_reset_at) == (
        None, None, 12, None)


def test_embeddings_carry_the_rate_limits(server, openai_config):
    server.set_rate_limits(requests=3)
    result = embed_openai_compatible(openai_config, ["a desk", "a chair"])
    assert result.rate_limits.requests_remaining == 3


def test_a_request_not_sent_reads_as_a_sentence():
    error = ProviderError(RATE_LIMITED_AHEAD, "Not sent: the provider reported no requests left until 10:00:30 UTC")
    assert str(error) == "Not sent: the provider reported no requests left until 10:00:30 UTC."
    assert not error.retryable
