"""Retry-After parsing and backoff bounds of the shared retry policy."""

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from requests.structures import CaseInsensitiveDict

from ai_cost_optimizer.core.clients.base import ProviderConfig, ProviderError, parse_retry_after, retry_delay

NOW = datetime(2025, 11, 3, 12, 0, tzinfo=timezone.utc)
CONFIG = ProviderConfig(kind="anthropic", base_url="http://x", api_key="sk-test-secret", model="m", max_backoff=20.0)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"Retry-After": format_datetime(NOW + timedelta(seconds=30), usegmt=True)}, 30.0),
        ({"Retry-After": format_datetime(NOW - timedelta(seconds=30), usegmt=True)}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers, seconds):
    assert parse_retry_after(CaseInsensitiveDict(headers), now=NOW) == seconds


def test_retry_after_is_capped_and_backoff_grows_within_bounds():
    assert retry_delay(ProviderError("rate_limit", retry_after=100.0), 1, CONFIG) == 20.0
    assert retry_delay(ProviderError("rate_limit", retry_after=2.0), 1, CONFIG) == 2.0
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (10, 20.0)):
        delay = retry_delay(ProviderError("server"), attempt, CONFIG)
        assert ceiling / 2 <= delay <= ceiling


def test_error_message_masks_the_key():
    error = ProviderError("auth", "bad key sk-test-secret", status=401, secret=CONFIG.api_key)
    assert "sk-test-secret" not in str(error) and "sk-test-secret" not in repr(error)
    assert str(error) == "Provider auth error (HTTP 401): bad key ***"
    assert error.retryable is False
    assert "sk-test-secret" not in repr(CONFIG)
