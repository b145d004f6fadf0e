"""Model prices from the installed genai-prices database, and the cost of a call.

Prices are never typed by hand: they come from genai-prices, or from a manual override entered by
an administrator (``source='manual'``). A model genai-prices does not know has no price
(``lookup_price`` returns None), which the caller records as "cost unknown", never as $0.

A call is priced by genai-prices' own calculation (``call_cost``): long-context tiers, cache reads and
writes (1-hour writes at their own rate), per-request fees and time-of-day prices at the call's time.
The per-million rates of ``ModelPrice`` are the base tier, for display and for estimates before a call.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import ModelInfo, Provider, TieredPrices

from .usage import Usage

_PER = Decimal(1_000_000)
# Price sources applied at their own rates rather than by genai-prices: an administrator's manual price, and
# a provider declared free (self-hosted: no per-token price), whose rates are 0.
OWN_RATE_SOURCES = frozenset({"manual", "free"})


@dataclass(frozen=True)
class ModelPrice:
    """USD prices per million tokens of one model; cache prices are None when not published.

    ``model`` and ``price_provider`` are what genai-prices matched the prices with (the model id as the
    provider names it, and genai-prices' provider id or None), so that a call is priced by the same match.
    ``model_ref`` is genai-prices' own id of the model, shown to say where a price came from.
    ``cache_write_1h_per_mtok`` is the rate of the cache writes kept for an hour (Anthropic's), None when
    the model has no rate of its own for them: they are then billed as any cache write.
    """

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None
    cache_write_per_mtok: float | None
    source: str
    model_ref: str = ""
    model: str = ""
    price_provider: str | None = None
    cache_write_1h_per_mtok: float | None = None


def genai_prices_version() -> str:
    """Version of the installed genai-prices package, recorded with every synced price."""
    return genai_prices.__version__


def price_providers() -> list[tuple[str, str]]:
    """(id, name) of every provider genai-prices has a price list for, by name."""
    providers = data_snapshot.get_snapshot().providers
    return sorted(((provider.id, provider.name) for provider in providers), key=lambda item: item[1].lower())


def price_list_models(price_provider: str | None) -> list[str]:
    """The ids of the models in genai-prices' price list of ``price_provider`` (none for an unknown id)."""
    if not price_provider:
        return []
    provider = data_snapshot.find_provider_by_id(data_snapshot.get_snapshot().providers, price_provider)
    return [model.id for model in provider.models] if provider else []


@functools.lru_cache(maxsize=4096)
def _match(model: str, price_provider: str | None) -> tuple[Provider, ModelInfo] | None:
    """genai-prices' provider and model for ``model`` under the price list ``price_provider``, or None.

    A price provider is a hint, not a final word: a proxy or an Anthropic-format endpoint may serve
    another maker's model (DeepSeek, Kimi, MiniMax), so when its list lacks the model the model name alone
    decides, as it does for an id that is no genai-prices provider ('ollama'). Cached, misses included:
    genai-prices caches its hits but scans every list again for a miss, and every call asks.
    """
    snapshot = data_snapshot.get_snapshot()
    known = price_provider and data_snapshot.find_provider_by_id(snapshot.providers, price_provider)
    for provider_id in dict.fromkeys((known.id if known else None, None)):
        try:
            return snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            continue
    return None


def context_window(model: str, price_provider: str | None = None) -> int | None:
    """The model's context window (tokens) from genai-prices' model data, or None when unknown.

    genai-prices holds no output limit: a provider's output limit stays unknown unless typed.
    """
    match = _match(model, price_provider)
    return match[1].context_window if match else None


def _base_rate(price: Decimal | TieredPrices | None) -> float | None:
    """The rate below the first tier.

    Tiered prices (e.g. long-context surcharges above 200k prompt tokens) apply to a minority of
    calls; a provider record shows one rate per token kind, so it keeps the base tier.
    """
    if price is None:
        return None
    if isinstance(price, TieredPrices):
        price = price.base
    return float(price)


def lookup_price(model: str, provider_hint: str | None = None, at: datetime | None = None) -> ModelPrice | None:
    """Price of ``model`` at time ``at`` (default: now) from genai-prices, or None if unknown.

    ``provider_hint`` (genai-prices' provider id: 'anthropic', 'openai', 'google', 'azure', ...) names
    the price list to match in first (see ``_match``). Conditional prices are resolved for the time ``at``
    (start-date price changes, DeepSeek's off-peak hours); tiered prices contribute their base tier (see
    ``_base_rate``). A known model without token prices (a free one, or one billed per request) gets
    rates of 0: ``call_cost`` still prices its calls as genai-prices does. Request-context variants (batch
    processing, priority service tiers) are ignored: the gateway sends standard requests.
    """
    match = _match(model, provider_hint)
    if match is None:
        return None
    prices = match[1].get_prices(at or datetime.now(tz=timezone.utc))
    return ModelPrice(
        input_per_mtok=_base_rate(prices.input_mtok) or 0.0,
        # Embedding models lack an output price, and they produce no output tokens.
        output_per_mtok=_base_rate(prices.output_mtok) or 0.0,
        cache_read_per_mtok=_base_rate(prices.cache_read_mtok),
        cache_write_per_mtok=_base_rate(prices.cache_write_mtok),
        source=f"genai-prices {genai_prices_version()}",
        model_ref=match[1].id,
        model=model,
        price_provider=provider_hint or None,
        cache_write_1h_per_mtok=_base_rate(prices.cache_write_1h_mtok),
    )


def _genai_usage(usage: Usage) -> genai_prices.Usage:
    """``usage`` as genai-prices reads it: the cache parts inside the prompt tokens, as in Usage (a
    provider that reported more cached tokens than prompt tokens gets its prompt counted as their sum,
    rather than a negative uncached part that genai-prices refuses)."""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    return genai_prices.Usage(
        input_tokens=max(usage.input_tokens, cached),
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
    )


def call_cost(usage: Usage, price: ModelPrice, at: datetime) -> float:
    """USD cost of a call that used ``usage`` at time ``at`` (naive means UTC), under ``price``.

    A manual price is applied at its rates (``compute_cost``), a free one's too (0). A genai-prices price is
    genai-prices' own calculation for the model it matched: tiers by prompt size, cache reads and writes, 1-hour cache
    writes, per-request fees and the prices in force at ``at`` (start dates, off-peak hours). Should the
    installed genai-prices no longer know the model, the price version's rates apply.
    """
    match = None if price.source in OWN_RATE_SOURCES else _match(price.model, price.price_provider)
    if match is None:
        return compute_cost(usage, price)
    provider, info = match
    return float(info.calc_price(_genai_usage(usage), provider, genai_request_timestamp=at).total_price)


def _rate(per_mtok: float | None, fallback: float) -> Decimal:
    # str() keeps the decimal the price was written with (0.075, not 0.07499999...).
    return Decimal(str(fallback if per_mtok is None else per_mtok))


def token_rates(price: ModelPrice) -> dict[str, Decimal]:
    """USD per million tokens of each kind billed at a rate of its own: uncached input, cache reads, cache
    writes (those of no 1-hour lifetime), 1-hour cache writes and output. Cache rates fall back to the input
    rate when the model has none, the 1-hour cache writes' to the cache writes'."""
    cache_write = _rate(price.cache_write_per_mtok, price.input_per_mtok)
    return {
        "uncached_input": _rate(price.input_per_mtok, price.input_per_mtok),
        "cache_read": _rate(price.cache_read_per_mtok, price.input_per_mtok),
        "cache_write": cache_write,
        "cache_write_1h": cache_write if price.cache_write_1h_per_mtok is None else _rate(
            price.cache_write_1h_per_mtok, price.input_per_mtok),
        "output": _rate(price.output_per_mtok, price.output_per_mtok),
    }


def compute_cost(usage: Usage, price: ModelPrice) -> float:
    """USD cost of ``usage`` at the rates of ``price`` (``token_rates``): estimates before a call, calls at a
    manual price, and token counts summed over many calls (a day of a provider's bill), which genai-prices'
    tiers by prompt size would misprice."""
    rates = token_rates(price)
    parts = (
        (usage.uncached_input_tokens, rates["uncached_input"]),
        (usage.cache_read_tokens, rates["cache_read"]),
        (usage.cache_write_tokens - usage.cache_write_1h_tokens, rates["cache_write"]),
        (usage.cache_write_1h_tokens, rates["cache_write_1h"]),
        (usage.output_tokens, rates["output"]),
    )
    return float(sum((rate * tokens / _PER for tokens, rate in parts), Decimal(0)))


def cache_read_savings(cache_read_tokens: int, input_per_mtok: float, cache_read_per_mtok: float | None) -> float:
    """USD saved by reading `cache_read_tokens` prompt tokens from the provider's prompt cache rather than
    sending them as plain input: the difference of the two rates per million tokens (none when the model
    publishes no cache-read price, which is billed at the input rate)."""
    return cache_read_tokens * (input_per_mtok - (cache_read_per_mtok or input_per_mtok)) / 1e6


MAX_USD_DECIMALS = 6


def format_usd(amount: float) -> str:
    """A dollar amount readable at any size, since calls cost fractions of a cent, as the screens show it
    (formatUsd in static/src/fields/format_usd.js): cents with thousands separators from one dollar up
    ('$1,234.50'), below that three significant digits, at most six decimals, without trailing zeros but
    keeping two ('$0.0025', '$0.50'); '$0.00' for zero, '< $0.000001' for less than half a millionth."""
    sign, size = ("-" if amount < 0 else ""), abs(amount)
    if 0 < size < 0.5 * 10**-MAX_USD_DECIMALS:
        return f"{sign}< $0.000001"
    if size == 0 or size >= 1:
        return f"{sign}${size:,.2f}"
    decimals = min(MAX_USD_DECIMALS, max(2, math.ceil(-math.log10(size)) + 2))
    units, _, cents = f"{size:.{decimals}f}".partition(".")
    return f"{sign}${units}.{cents.rstrip('0').ljust(2, '0')}"
