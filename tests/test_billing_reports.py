"""The providers' usage and cost reports read from the fake provider over HTTP, and the verdicts of
``reconcile_day`` (DESIGN section 11)."""

import socket
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ai_cost_optimizer.core.billing import (
    BillDay,
    BillingReportError,
    LedgerDay,
    ReportSource,
    TokenCounts,
    Tolerance,
    billed_at_genai_prices,
    fetch_reports,
    reconcile_day,
)
from ai_cost_optimizer.core.clients import ChatRequest, chat
from ai_cost_optimizer.core.clients.base import RETRYABLE_KINDS, kind_for_status
from ai_cost_optimizer.core.pricing import call_cost, compute_cost, format_usd, lookup_price, token_rates
from ai_cost_optimizer.tests.fake_provider import api_key_id

ADMIN_KEY = "sk-test-admin-0123456789abcdef"
TODAY = datetime.now(timezone.utc).date()
MESSAGES = [{"role": "user", "content": "Which desk fits a small office?"}]


def source(server, kind, key=ADMIN_KEY):
    base = server.anthropic_base_url if kind == "anthropic" else server.openai_base_url
    return ReportSource(kind=kind, base_url=base, admin_key=key, timeout=5, backoff_base=0.001)


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_reports_hold_the_calls_answered_per_model_and_key_at_genai_prices(server, kind, anthropic_config,
                                                                        openai_config):
    config = anthropic_config if kind == "anthropic" else openai_config
    result = chat(config, ChatRequest(MESSAGES, max_tokens=100))

    reports = fetch_reports(source(server, kind), TODAY, TODAY)

    [line] = reports.usage
    assert (line.day, line.model, line.api_key_id) == (TODAY, config.model, api_key_id(config.api_key))
    assert (line.tokens.uncached_input, line.tokens.output) == (result.usage.input_tokens, result.usage.output_tokens)
    assert line.tokens.requests == (None if kind == "anthropic" else 1)  # Anthropic's report counts no requests
    [cost] = reports.costs
    price = lookup_price(config.model, "anthropic" if kind == "anthropic" else "openai")
    assert float(cost.total) == pytest.approx(compute_cost(result.usage, price), abs=1e-12)
    assert set(cost.usd) == {"uncached_input", "output"}
    assert reports.reported_days == {TODAY}


ONE_HOUR_WRITES = {
    "input_tokens": 40, "output_tokens": 500, "cache_read_input_tokens": 8_000, "cache_creation_input_tokens": 3_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 2_000},
}


def test_anthropic_one_hour_cache_writes_are_read_apart_and_billed_at_their_rate(server, anthropic_config):
    server.queue_responses([{"usage": ONE_HOUR_WRITES}])
    result = chat(anthropic_config, ChatRequest(MESSAGES, max_tokens=100))

    reports = fetch_reports(source(server, "anthropic"), TODAY, TODAY)

    [line] = reports.usage
    assert (line.tokens.cache_write, line.tokens.cache_write_1h) == (3_000, 2_000)
    assert line.tokens.as_usage() == result.usage
    [cost] = reports.costs
    price = lookup_price(anthropic_config.model, "anthropic")
    assert price.cache_write_1h_per_mtok > price.cache_write_per_mtok
    assert float(cost.usd["cache_write_1h"]) == pytest.approx(2_000 * price.cache_write_1h_per_mtok / 1e6, abs=1e-12)
    assert float(cost.usd["cache_write"]) == pytest.approx(1_000 * price.cache_write_per_mtok / 1e6, abs=1e-12)
    assert float(cost.total) == pytest.approx(compute_cost(result.usage, price), abs=1e-12)


def test_the_usage_report_of_cache_writes_without_a_1_hour_part(server):
    server.add_billed_usage("messages", "claude-haiku-4-5", "sk-test-other",
                            {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 700})
    [line] = fetch_reports(source(server, "anthropic"), TODAY, TODAY).usage
    assert (line.tokens.cache_write, line.tokens.cache_write_1h) == (700, 0)


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_pages_are_followed_to_the_last(server, kind):
    date_from = TODAY - timedelta(days=40)
    api = "messages" if kind == "anthropic" else "completions"
    usage = ({"input_tokens": 10, "output_tokens": 5} if kind == "anthropic"
             else {"prompt_tokens": 10, "completion_tokens": 5})
    server.add_billed_usage(api, "claude-haiku-4-5" if kind == "anthropic" else "gpt-4o-mini", "sk-test-other",
                            usage, day=date_from)
    server.add_billed_usage(api, "claude-haiku-4-5" if kind == "anthropic" else "gpt-4o-mini", "sk-test-other",
                            usage, day=TODAY)

    reports = fetch_reports(source(server, kind), date_from, TODAY)

    assert [line.day for line in reports.usage] == [date_from, TODAY]
    assert len(reports.reported_days) == 41
    # 41 days in pages of 31: the second page of each report was asked for with the first's next_page.
    assert sum("page=page_31" in request["path"] for request in server.requests) == (2 if kind == "anthropic" else 3)


def test_a_day_not_reported_yet_is_left_out(server):
    server.set_reported_through(TODAY - timedelta(days=1))
    reports = fetch_reports(source(server, "anthropic"), TODAY - timedelta(days=2), TODAY)
    assert reports.reported_days == {TODAY - timedelta(days=2), TODAY - timedelta(days=1)}


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_a_refused_admin_key_says_so_without_the_key(server, kind):
    with pytest.raises(BillingReportError) as caught:
        fetch_reports(source(server, kind, key="sk-live-admin-do-not-leak"), TODAY, TODAY)
    assert "refused the admin key (HTTP 401)" in str(caught.value)
    assert "do-not-leak" not in str(caught.value)


def test_an_ordinary_key_is_no_admin_key(server, openai_config):
    with pytest.raises(BillingReportError, match="HTTP 401"):
        fetch_reports(source(server, "openai", key=openai_config.api_key), TODAY, TODAY)


def test_a_429_waits_as_asked_then_reads(server, sleeps):
    server.queue_responses([{"status": 429, "retry_after": "2"}])
    reports = fetch_reports(source(server, "anthropic"), TODAY, TODAY, sleep=sleeps)
    assert sleeps.calls == [2.0]
    assert reports.reported_days == {TODAY}


def test_a_429_asking_too_long_a_wait_gives_up_at_once(server, sleeps):
    server.queue_responses([{"status": 429, "retry_after": "3600"}])
    with pytest.raises(BillingReportError, match="rate limited .HTTP 429. for another 3600 s"):
        fetch_reports(source(server, "anthropic"), TODAY, TODAY, sleep=sleeps)
    assert sleeps.calls == []


def test_server_errors_are_retried_a_bounded_number_of_times(server, sleeps):
    server.queue_responses([{"status": 503}] * 3)
    with pytest.raises(BillingReportError, match=r"failed \(HTTP 503\) after 3 attempts"):
        fetch_reports(source(server, "openai"), TODAY, TODAY, sleep=sleeps)
    # Exponential backoff between the attempts, jittered in its upper half (core.clients.base.retry_delay).
    [first, second] = sleeps.calls
    assert 0.0005 <= first <= 0.001 and 0.001 <= second <= 0.002


@pytest.mark.parametrize("status", sorted({408, 429, 500, 502, 503, 529} | {400, 404, 409, 422}))
def test_the_report_fetch_retries_what_the_gateway_retries(server, sleeps, status):
    """One classification of HTTP statuses for the gateway's calls and the report fetch: a status the
    gateway retries is retried here, and one it does not is not."""
    server.queue_responses([{"status": status}] * 3)
    with pytest.raises(BillingReportError) as caught:
        fetch_reports(source(server, "anthropic"), TODAY, TODAY, sleep=sleeps)
    retried = kind_for_status(status) in RETRYABLE_KINDS
    assert retried == (status in (408, 429) or status >= 500)
    assert len(sleeps.calls) == (2 if retried else 0)
    message = str(caught.value)
    assert message.endswith(f"(HTTP {status}) after 3 attempts.") if retried else "attempts" not in message
    assert ("rejected the report request" in message) == (not retried)


def test_a_refused_connection_is_retried_then_named(sleeps):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with pytest.raises(BillingReportError) as caught:
        fetch_reports(ReportSource("anthropic", url, ADMIN_KEY, backoff_base=0.001), TODAY, TODAY, sleep=sleeps)
    assert str(caught.value) == f"Could not connect to {url} (connection refused) after 3 attempts."
    assert len(sleeps.calls) == 2


def test_no_answer_in_time_is_retried_then_named(server, sleeps):
    server.set_latency(0.5)
    slow = ReportSource("openai", server.openai_base_url, ADMIN_KEY, timeout=0.1, max_retries=1, backoff_base=0.001)
    with pytest.raises(BillingReportError) as caught:
        fetch_reports(slow, TODAY, TODAY, sleep=sleeps)
    assert str(caught.value) == f"No answer from {server.openai_base_url} within 0.1 s after 2 attempts."
    assert len(sleeps.calls) == 1


@pytest.mark.parametrize("fault", [{"malformed": True}, {"body": {"data": "no list"}},
                                   {"body": {"data": [], "has_more": True, "next_page": None}}])
def test_a_malformed_page_is_named(server, fault):
    server.queue_responses([fault])
    with pytest.raises(BillingReportError, match="malformed report page"):
        fetch_reports(source(server, "anthropic"), TODAY, TODAY)


@pytest.mark.parametrize("period", [(TODAY, TODAY - timedelta(days=1)), (TODAY - timedelta(days=200), TODAY)])
def test_a_bad_period_is_refused(server, period):
    with pytest.raises(ValueError, match="period starts|at most"):
        fetch_reports(source(server, "anthropic"), *period)


# -- reconcile_day ----------------------------------------------------------------------------------

PRICE = lookup_price("gpt-4o-mini", "openai")
TOLERANCE = Tolerance(percent=2.0, usd=0.01)
OURS = TokenCounts(uncached_input=100_000, output=50_000, requests=10)


def billed(tokens, price=PRICE, **rates):
    """The dollars of each kind of token at genai-prices' rates, or at ``rates`` (USD per million)."""
    prices = {"uncached_input": price.input_per_mtok, "output": price.output_per_mtok} | rates
    return {kind: Decimal(str(getattr(tokens, kind) * prices[kind] / 1e6)) for kind in ("uncached_input", "output")}


def ledger(tokens=OURS, **values):
    return LedgerDay(calls=tokens.requests, tokens=tokens, cost_usd=compute_cost(tokens.as_usage(), PRICE), **values)


def test_same_tokens_and_dollars_match():
    outcome = reconcile_day(ledger(), BillDay(True, True, OURS, usd=billed(OURS)), PRICE, TOLERANCE)
    assert (outcome.status, outcome.diff_tokens) == ("matched", 0)
    assert outcome.diff_usd == pytest.approx(0, abs=1e-9)


def test_other_keys_usage_is_explained_and_priced():
    others = TokenCounts(uncached_input=1_000_000, output=0, requests=3)
    bill = BillDay(True, True, OURS, others, usd=billed(OURS + others), other_key_ids={"apikey_b", "apikey_a"})
    outcome = reconcile_day(ledger(), bill, PRICE, TOLERANCE)
    assert outcome.status == "explained"
    assert (f"1,000,000 tokens came from other API keys of the organization (apikey_a, apikey_b; "
            f"about {format_usd(PRICE.input_per_mtok)} at genai-prices)") in outcome.explanation


def test_without_key_ids_extra_usage_is_possibly_from_outside_odoo():
    extra = TokenCounts(uncached_input=1_000_000, output=0, requests=3)
    bill = BillDay(True, False, OURS + extra, usd=billed(OURS + extra))
    outcome = reconcile_day(ledger(), bill, PRICE, TOLERANCE)
    assert outcome.status == "explained"
    assert "possibly usage from outside Odoo" in outcome.explanation


def test_a_different_billed_price_is_unexplained_with_the_implied_price():
    bill = BillDay(True, True, OURS, usd=billed(OURS, output=PRICE.output_per_mtok * 2))
    outcome = reconcile_day(ledger(), bill, PRICE, TOLERANCE)
    assert outcome.status == "unexplained"
    assert f"output tokens billed {format_usd(OURS.output * PRICE.output_per_mtok / 1e6)} more" in outcome.explanation
    assert f"${PRICE.output_per_mtok * 2:.4g} per million where genai-prices says ${PRICE.output_per_mtok:.4g}" \
        in outcome.explanation


def test_a_price_difference_within_tolerance_matches():
    bill = BillDay(True, True, OURS, usd=billed(OURS, output=PRICE.output_per_mtok * 1.01))
    assert reconcile_day(ledger(), bill, PRICE, TOLERANCE).status == "matched"


def test_cost_unknown_calls_are_named():
    held = ledger(cost_unknown_calls=4)
    held.cost_usd = 0.0
    outcome = reconcile_day(held, BillDay(True, True, OURS, usd=billed(OURS)), None, TOLERANCE)
    assert outcome.status == "explained"
    assert "4 calls are held as cost unknown" in outcome.explanation


def test_failed_attempts_billed_there_are_named():
    failed = TokenCounts(uncached_input=20_000, output=10_000, requests=2)
    bill = BillDay(True, True, OURS + failed, usd=billed(OURS + failed))
    outcome = reconcile_day(ledger(failed_attempts=2), bill, PRICE, TOLERANCE)
    assert outcome.status == "explained"
    assert "2 attempts failed here but were billed there (30,000 tokens" in outcome.explanation


def test_a_day_not_reported_is_pending():
    outcome = reconcile_day(ledger(), BillDay(False), PRICE, TOLERANCE)
    assert outcome.status == "pending"


def test_less_on_the_bill_than_in_the_ledger_is_unexplained():
    half = TokenCounts(uncached_input=50_000, output=25_000, requests=5)
    outcome = reconcile_day(ledger(), BillDay(True, True, half, usd=billed(half)), PRICE, TOLERANCE)
    assert outcome.status == "unexplained"
    assert "the ledger holds 75,000 tokens more than the bill" in outcome.explanation
    assert outcome.diff_tokens == -75_000


# -- 1-hour cache writes (Anthropic bills them higher than the 5-minute ones) ---------------------------

HAIKU = lookup_price("claude-haiku-4-5", "anthropic")
CACHED = TokenCounts(uncached_input=20_000, cache_read=300_000, cache_write=100_000, output=10_000, requests=None,
                     cache_write_1h=60_000)


def anthropic_bill(tokens, price=HAIKU, **rates):
    """Anthropic's dollars of each kind of token: genai-prices' rates, or ``rates`` (USD per million)."""
    prices = {kind: float(rate) for kind, rate in token_rates(price).items()} | rates
    return {kind: Decimal(str(count * prices[kind] / 1e6)) for kind, count in tokens.priced().items() if count}


def test_one_hour_cache_writes_are_priced_at_their_own_rate():
    assert CACHED.priced()["cache_write"] == 40_000 and CACHED.priced()["cache_write_1h"] == 60_000
    expected = (20_000 * HAIKU.input_per_mtok + 300_000 * HAIKU.cache_read_per_mtok
                + 40_000 * HAIKU.cache_write_per_mtok + 60_000 * HAIKU.cache_write_1h_per_mtok
                + 10_000 * HAIKU.output_per_mtok) / 1e6
    assert compute_cost(CACHED.as_usage(), HAIKU) == pytest.approx(expected, rel=1e-12)
    assert (CACHED + CACHED).cache_write_1h == 120_000 and (CACHED - CACHED).cache_write_1h == 0


def test_a_bill_at_genai_prices_is_genai_prices_own_price_of_the_tokens():
    """billed_at_genai_prices (the demo's and the benchmark's bills): each kind with tokens at its own rate, the
    1-hour cache writes apart, in all what genai-prices' own calculation gives for those tokens."""
    usd = billed_at_genai_prices(CACHED, HAIKU)
    assert list(usd) == ["uncached_input", "cache_read", "cache_write", "cache_write_1h", "output"]
    assert usd["cache_write_1h"] == Decimal(60_000) * Decimal(str(HAIKU.cache_write_1h_per_mtok)) / 1_000_000
    assert usd["cache_write"] == Decimal(40_000) * Decimal(str(HAIKU.cache_write_per_mtok)) / 1_000_000
    assert float(sum(usd.values())) == pytest.approx(call_cost(CACHED.as_usage(), HAIKU, datetime.now()), rel=1e-9)
    assert list(billed_at_genai_prices(TokenCounts(output=5), HAIKU)) == ["output"]


def test_a_bill_with_one_hour_cache_writes_matches_the_ledger():
    held = LedgerDay(calls=4, tokens=CACHED, cost_usd=compute_cost(CACHED.as_usage(), HAIKU))
    outcome = reconcile_day(held, BillDay(True, True, CACHED, usd=anthropic_bill(CACHED)), HAIKU, Tolerance(0, 0))
    assert (outcome.status, outcome.explanation) == ("matched", "The bill matches the ledger within tolerance.")


def test_other_keys_one_hour_cache_writes_are_estimated_at_the_one_hour_rate():
    others = TokenCounts(cache_write=500_000, cache_write_1h=500_000, requests=None)
    held = LedgerDay(calls=4, tokens=CACHED, cost_usd=compute_cost(CACHED.as_usage(), HAIKU))
    bill = BillDay(True, True, CACHED, others, usd=anthropic_bill(CACHED + others), other_key_ids={"apikey_b"})
    outcome = reconcile_day(held, bill, HAIKU, Tolerance(0, 0.000001))
    estimate = 500_000 * HAIKU.cache_write_1h_per_mtok / 1e6
    assert outcome.status == "explained"
    assert f"(apikey_b; about {format_usd(estimate)} at genai-prices)" in outcome.explanation


def test_one_hour_cache_writes_billed_at_another_rate_are_named():
    rate = HAIKU.cache_write_1h_per_mtok * 1.5
    bill = BillDay(True, True, CACHED, usd=anthropic_bill(CACHED, cache_write_1h=rate))
    held = LedgerDay(calls=4, tokens=CACHED, cost_usd=compute_cost(CACHED.as_usage(), HAIKU))
    outcome = reconcile_day(held, bill, HAIKU, Tolerance(0, 0))
    assert outcome.status == "unexplained"
    assert (f"1-hour cache write tokens billed {format_usd(60_000 * (rate - HAIKU.cache_write_1h_per_mtok) / 1e6)} "
            f"more than at genai-prices: ${rate:.4g} per million where genai-prices says "
            f"${HAIKU.cache_write_1h_per_mtok:.4g}") in outcome.explanation
    assert "cache write tokens billed" not in outcome.explanation.replace("1-hour cache write tokens billed", "")
