"""Prices come from genai-prices, and our cost equals genai-prices' own calculation."""

from datetime import datetime, timezone

import genai_prices
import pytest

from ai_cost_optimizer.core.pricing import (
    ModelPrice,
    cache_read_savings,
    call_cost,
    compute_cost,
    context_window,
    format_usd,
    genai_prices_version,
    lookup_price,
    price_list_models,
    price_providers,
)
from ai_cost_optimizer.core.usage import Usage, from_anthropic, from_openai

AT = datetime(2025, 11, 3, 12, 0, tzinfo=timezone.utc)
OFF_PEAK = datetime(2025, 11, 3, 20, 0, tzinfo=timezone.utc)


def genai_total(usage: Usage, model: str, provider: str | None, at: datetime) -> float:
    reference = genai_prices.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
    )
    calculation = genai_prices.calc_price(reference, model, provider_id=provider, genai_request_timestamp=at)
    return float(calculation.total_price)


def priced_call(model: str, price_provider: str | None, usage: Usage, at: datetime = AT) -> float:
    """What the gateway records for a call: genai-prices' price of the model, applied by call_cost."""
    price = lookup_price(model, price_provider, at=at)
    assert price is not None
    return call_cost(usage, price, at)


@pytest.mark.parametrize(
    ("model", "provider", "usage", "at"),
    [
        ("claude-sonnet-4-5", "anthropic", Usage(12_000, 800, cache_read_tokens=9_000, cache_write_tokens=2_500), AT),
        ("claude-haiku-4-5", "anthropic", Usage(5_000, 300, cache_read_tokens=1_000, cache_write_tokens=3_000), AT),
        ("claude-3-5-haiku-latest", "anthropic", Usage(4_000, 250, cache_read_tokens=3_000), AT),
        ("gpt-4o-mini", "openai", Usage(2_000, 100, cache_read_tokens=1_536), AT),
        ("deepseek-chat", "deepseek", Usage(900, 10, cache_read_tokens=640), AT),
        ("deepseek-chat", "deepseek", Usage(900, 10, cache_read_tokens=640), OFF_PEAK),
    ],
)
def test_compute_cost_matches_genai_prices(model, provider, usage, at):
    price = lookup_price(model, provider, at=at)
    assert price is not None
    expected = genai_total(usage, model, provider, at)
    assert expected > 0
    assert compute_cost(usage, price) == pytest.approx(expected, rel=1e-12, abs=0)


def test_raw_provider_payloads_priced_like_genai_prices_reads_them():
    """Normalizing then pricing gives what genai-prices computes from the raw responses."""
    anthropic_response = {
        "model": "claude-sonnet-4-5",
        "usage": {
            "input_tokens": 40,
            "output_tokens": 500,
            "cache_read_input_tokens": 8_000,
            "cache_creation_input_tokens": 1_200,
        },
    }
    openai_response = {
        "model": "gpt-4o-mini",
        "usage": {"prompt_tokens": 3_000, "completion_tokens": 90, "prompt_tokens_details": {"cached_tokens": 2_048}},
    }
    for response, provider, flavor, normalize in (
        (anthropic_response, "anthropic", "default", from_anthropic),
        (openai_response, "openai", "chat", from_openai),
    ):
        extracted = genai_prices.extract_usage(response, provider_id=provider, api_flavor=flavor)
        expected = float(extracted.calc_price(genai_request_timestamp=AT).total_price)
        price = lookup_price(response["model"], provider, at=AT)
        assert compute_cost(normalize(response["usage"]), price) == pytest.approx(expected, rel=1e-12, abs=0)


def test_lookup_reads_genai_prices_fields_and_base_tier():
    price = lookup_price("claude-sonnet-4-5", "anthropic", at=AT)
    # claude-sonnet-4-5 has long-context tiers above 200k tokens; the base tier is kept.
    assert (price.input_per_mtok, price.output_per_mtok) == (3.0, 15.0)
    assert (price.cache_read_per_mtok, price.cache_write_per_mtok) == (0.3, 3.75)
    assert price.model_ref == "claude-sonnet-4-5"
    assert price.source == f"genai-prices {genai_prices.__version__}" == f"genai-prices {genai_prices_version()}"

    mini = lookup_price("gpt-4o-mini", "openai", at=AT)
    assert mini.cache_write_per_mtok is None


def test_dated_model_name_and_unpriced_hint_match_by_model():
    assert lookup_price("claude-sonnet-4-20250514", "anthropic", at=AT).model_ref == "claude-sonnet-4-0"
    # 'ollama' is not a genai-prices provider: the model name alone decides.
    assert lookup_price("gpt-4o-mini", "ollama", at=AT).model_ref == "gpt-4o-mini"


@pytest.mark.parametrize(("model", "hint"), [("my-private-finetune", None), ("llama3.1:8b", "ollama")])
def test_unknown_model_has_no_price(model, hint):
    assert lookup_price(model, hint) is None
    assert context_window(model, hint) is None


@pytest.mark.parametrize(
    ("model", "hint", "owner"),
    [
        # An Anthropic-format endpoint serving other makers' models (DeepSeek, Kimi, MiniMax).
        ("deepseek-chat", "anthropic", "deepseek"),
        ("kimi-k2-0905-preview", "anthropic", "moonshotai"),
        ("MiniMax-M2", "anthropic", "minimax"),
        # A price list that lacks the model (Groq serves no Claude): the model name decides.
        ("claude-sonnet-4-5", "groq", "anthropic"),
    ],
)
def test_hint_lacking_the_model_falls_back_to_the_model_name(model, hint, owner):
    with pytest.raises(LookupError):
        genai_prices.calc_price(genai_prices.Usage(input_tokens=1), model, provider_id=hint)
    usage = Usage(20_000, 900, cache_read_tokens=4_000)
    expected = genai_total(usage, model, owner, AT)
    assert expected > 0
    assert priced_call(model, hint, usage) == pytest.approx(expected, rel=1e-12, abs=0)


def test_embedding_model_priced_under_its_price_list():
    # An OpenAI-compatible gateway on 127.0.0.1 guesses no price list; 'openai' set by hand prices it.
    assert lookup_price("text-embedding-3-small") is None
    usage = Usage(input_tokens=12_345)
    assert priced_call("text-embedding-3-small", "openai", usage) == pytest.approx(
        genai_total(usage, "text-embedding-3-small", "openai", AT), rel=1e-12, abs=0
    )


@pytest.mark.parametrize(
    ("model", "provider", "expected"),
    [("claude-sonnet-4-5", "anthropic", 1.845), ("gemini-2.5-pro", "google", 0.78)],
)
def test_long_context_tier_priced_by_genai_prices(model, provider, expected):
    """Above 200k prompt tokens both families charge a higher rate on every token of the call."""
    usage = Usage(300_000, 2_000)
    cost = priced_call(model, provider, usage)
    assert cost == pytest.approx(genai_total(usage, model, provider, AT), rel=1e-12, abs=0)
    assert cost == pytest.approx(expected, rel=1e-12)
    # The provider's rates (the base tier) would have said less.
    assert compute_cost(usage, lookup_price(model, provider, at=AT)) < cost
    # With cache reads and writes in a long prompt, still genai-prices' figure.
    cached = Usage(260_000, 1_500, cache_read_tokens=150_000, cache_write_tokens=40_000)
    assert priced_call(model, provider, cached) == pytest.approx(
        genai_total(cached, model, provider, AT), rel=1e-12, abs=0
    )


def test_one_hour_cache_writes_at_their_own_rate():
    response = {
        "model": "claude-sonnet-4-5",
        "usage": {
            "input_tokens": 40,
            "output_tokens": 500,
            "cache_read_input_tokens": 8_000,
            "cache_creation_input_tokens": 3_000,
            "cache_creation": {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 2_000},
        },
    }
    usage = from_anthropic(response["usage"])
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens) == (3_000, 2_000)
    expected = float(
        genai_prices.extract_usage(response, provider_id="anthropic").calc_price(genai_request_timestamp=AT).total_price
    )
    cost = priced_call("claude-sonnet-4-5", "anthropic", usage)
    assert cost == pytest.approx(expected, rel=1e-12, abs=0)
    five_minutes = priced_call("claude-sonnet-4-5", "anthropic", Usage(11_040, 500, 8_000, 3_000))
    assert cost > five_minutes


def test_request_fee_is_charged():
    usage = Usage(1_000, 100)
    cost = priced_call("sonar", "perplexity", usage)
    assert cost == pytest.approx(genai_total(usage, "sonar", "perplexity", AT), rel=1e-12, abs=0)
    # The fee per request comes on top of the token rates.
    assert cost > compute_cost(usage, lookup_price("sonar", "perplexity", at=AT))


def test_off_peak_price_at_the_call_time():
    usage = Usage(90_000, 1_000, cache_read_tokens=60_000)
    price = lookup_price("deepseek-chat", "deepseek", at=AT)
    # One price version, two calls at different hours: each priced at its own time.
    peak, off_peak = call_cost(usage, price, AT), call_cost(usage, price, OFF_PEAK)
    assert peak == pytest.approx(genai_total(usage, "deepseek-chat", "deepseek", AT), rel=1e-12, abs=0)
    assert off_peak == pytest.approx(genai_total(usage, "deepseek-chat", "deepseek", OFF_PEAK), rel=1e-12, abs=0)
    assert off_peak < peak
    # Odoo's datetimes are naive UTC.
    assert call_cost(usage, price, OFF_PEAK.replace(tzinfo=None)) == off_peak


def test_free_model_is_priced_at_zero_not_unknown():
    price = lookup_price("gemma-3-27b-it", "google", at=AT)
    assert price is not None
    usage = Usage(5_000, 700)
    assert genai_total(usage, "gemma-3-27b-it", "google", AT) == 0.0
    assert call_cost(usage, price, AT) == 0.0


def test_manual_price_wins_over_genai_prices():
    manual = ModelPrice(
        input_per_mtok=1.0, output_per_mtok=2.0, cache_read_per_mtok=None, cache_write_per_mtok=None, source="manual",
        model="claude-sonnet-4-5", price_provider="anthropic",
    )
    usage = Usage(300_000, 2_000)
    assert call_cost(usage, manual, AT) == compute_cost(usage, manual) == pytest.approx(0.304, rel=1e-12)


def test_free_provider_costs_nothing_even_for_a_model_genai_prices_prices():
    # A self-hosted copy of a hosted model: declared free, its calls cost nothing, not the hosted price.
    free = ModelPrice(
        input_per_mtok=0.0, output_per_mtok=0.0, cache_read_per_mtok=None, cache_write_per_mtok=None, source="free",
        model="gpt-4o-mini", price_provider="openai",
    )
    assert priced_call("gpt-4o-mini", "openai", Usage(5_000, 700)) > 0
    assert call_cost(Usage(5_000, 700), free, AT) == 0.0


def test_more_cached_than_prompt_tokens_is_priced_not_refused():
    """A provider reporting more cached tokens than prompt tokens: the prompt counts as the cached sum."""
    usage = Usage(input_tokens=100, output_tokens=10, cache_read_tokens=300)
    assert priced_call("gpt-4o-mini", "openai", usage) == pytest.approx(
        genai_total(Usage(300, 10, cache_read_tokens=300), "gpt-4o-mini", "openai", AT), rel=1e-12, abs=0
    )


def test_model_limits_and_price_lists_from_genai_prices():
    _provider, model = genai_prices.data_snapshot.get_snapshot().find_provider_model(
        "claude-sonnet-4-5", None, "anthropic", None
    )
    assert context_window("claude-sonnet-4-5", "anthropic") == model.context_window == 200_000
    ids = [provider_id for provider_id, _name in price_providers()]
    assert {"anthropic", "openai", "google", "deepseek", "perplexity", "x-ai", "together", "azure"} <= set(ids)
    assert "text-embedding-3-small" in price_list_models("openai")
    assert price_list_models("ollama") == price_list_models(None) == []


def test_missing_cache_prices_fall_back_to_input_price():
    price = ModelPrice(
        input_per_mtok=2.0, output_per_mtok=8.0, cache_read_per_mtok=None, cache_write_per_mtok=None, source="manual"
    )
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000, cache_read_tokens=250_000, cache_write_tokens=250_000)
    assert compute_cost(usage, price) == 2.0 + 4.0


def test_each_part_priced_once_at_its_own_rate():
    price = ModelPrice(
        input_per_mtok=3.0, output_per_mtok=15.0, cache_read_per_mtok=0.3, cache_write_per_mtok=3.75, source="manual"
    )
    usage = Usage(input_tokens=1_000_000, output_tokens=0, cache_read_tokens=600_000, cache_write_tokens=100_000)
    assert compute_cost(usage, price) == pytest.approx(0.3 * 3.0 + 0.6 * 0.3 + 0.1 * 3.75, rel=1e-15)


def test_cache_read_savings_is_the_rate_difference_on_the_cached_tokens():
    # 90,000 tokens read from the cache at $0.30 instead of $3.00 per million.
    assert cache_read_savings(90_000, 3.0, 0.3) == pytest.approx(0.243, rel=1e-12)
    # A model with no cache-read price bills cache reads as input: nothing saved.
    assert cache_read_savings(90_000, 3.0, None) == 0.0
    assert cache_read_savings(90_000, 3.0, 0.0) == 0.0
    assert cache_read_savings(0, 3.0, 0.3) == 0.0


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (1234.5, "$1,234.50"),
        (1.0, "$1.00"),
        (-2.5, "-$2.50"),
        (0.5, "$0.50"),
        (0.9328896, "$0.933"),
        (0.999999, "$1.00"),
        (0.07, "$0.07"),
        (0.0025, "$0.0025"),
        (0.00021634, "$0.000216"),
        (0.00000149, "$0.000001"),
        (0.0000004, "< $0.000001"),
        (0.0, "$0.00"),
    ],
)
def test_format_usd_reads_at_any_size(amount, text):
    assert format_usd(amount) == text
