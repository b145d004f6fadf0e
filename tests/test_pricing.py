"""Prices come from genai-prices, and our cost equals genai-prices' own calculation."""

from datetime import datetime, timezone

import genai_prices
import pytest

from ai_cost_optimizer.core.pricing import (
    ModelPrice,
    cache_read_savings,
    compute_cost,
    format_usd,
    genai_prices_version,
    lookup_price,
)
from ai_cost_optimizer.core.usage import Usage, from_anthropic, from_openai

AT = datetime(2025, 11, 3, 12, 0, tzinfo=timezone.utc)
OFF_PEAK = datetime(2025, 11, 3, 20, 0, tzinfo=timezone.utc)


def genai_total(usage: Usage, model: str, provider: str, at: datetime) -> float:
    reference = genai_prices.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    calculation = genai_prices.calc_price(reference, model, provider_id=provider, genai_request_timestamp=at)
    return float(calculation.total_price)


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


@pytest.mark.parametrize(
    ("model", "hint"),
    [("my-private-finetune", None), ("llama3.1:8b", "ollama"), ("claude-sonnet-4-5", "groq")],
)
def test_unknown_model_has_no_price(model, hint):
    assert lookup_price(model, hint) is None


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
