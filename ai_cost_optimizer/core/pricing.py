"""Model prices from the installed genai-prices database, and the cost of a call.

Prices are never typed by hand: they come from genai-prices, or from a manual override entered by
an administrator (``source='manual'``). A model genai-prices does not know has no price
(``lookup_price`` returns None), which the caller records as "cost unknown", never as $0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import TieredPrices

from .usage import Usage

_PER = Decimal(1_000_000)


@dataclass(frozen=True)
class ModelPrice:
    """USD prices per million tokens of one model; cache prices are None when not published."""

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None
    cache_write_per_mtok: float | None
    source: str
    model_ref: str = ""


def genai_prices_version() -> str:
    """Version of the installed genai-prices package, recorded with every synced price."""
    return genai_prices.__version__


def _base_rate(price: Decimal | TieredPrices | None) -> float | None:
    """The rate below the first tier.

    Tiered prices (e.g. long-context surcharges above 200k prompt tokens) apply to a minority of
    calls; a provider record holds one rate per token kind, so it keeps the base tier.
    """
    if price is None:
        return None
    if isinstance(price, TieredPrices):
        price = price.base
    return float(price)


def _provider_id(snapshot: data_snapshot.DataSnapshot, provider_hint: str | None) -> str | None:
    """The genai-prices provider id for a hint, or None when genai-prices has no such provider.

    Hints such as 'ollama' or 'openai_compatible' are not priced providers: the model name alone
    then decides, so a known hosted model served through a proxy still gets its price.
    """
    if not provider_hint:
        return None
    provider = data_snapshot.find_provider_by_id(snapshot.providers, provider_hint)
    return provider.id if provider else None


def lookup_price(model: str, provider_hint: str | None = None, at: datetime | None = None) -> ModelPrice | None:
    """Price of ``model`` at time ``at`` (default: now) from genai-prices, or None if unknown.

    ``provider_hint`` ('anthropic', 'openai', 'deepseek', 'google', 'groq', 'mistral', ...)
    restricts the match to that provider's price list (genai-prices itself falls back to the
    model's origin provider where a reseller has no own price). Conditional prices are resolved
    by genai-prices for the time ``at`` (start-date price changes, DeepSeek's off-peak hours);
    tiered prices contribute their base tier (see ``_base_rate``). Request-context variants
    (batch processing, priority service tiers) are ignored: the gateway sends standard requests.
    """
    snapshot = data_snapshot.get_snapshot()
    try:
        _provider, info = snapshot.find_provider_model(model, None, _provider_id(snapshot, provider_hint), None)
    except LookupError:
        return None
    prices = info.get_prices(at or datetime.now(tz=timezone.utc))
    input_rate = _base_rate(prices.input_mtok)
    if input_rate is None:
        # Image, audio or per-request models: no token price to apply.
        return None
    return ModelPrice(
        input_per_mtok=input_rate,
        # Only embedding models lack an output price, and they produce no output tokens.
        output_per_mtok=_base_rate(prices.output_mtok) or 0.0,
        cache_read_per_mtok=_base_rate(prices.cache_read_mtok),
        cache_write_per_mtok=_base_rate(prices.cache_write_mtok),
        source=f"genai-prices {genai_prices_version()}",
        model_ref=info.id,
    )


def _rate(per_mtok: float | None, fallback: float) -> Decimal:
    # str() keeps the decimal the price was written with (0.075, not 0.07499999...).
    return Decimal(str(fallback if per_mtok is None else per_mtok))


def compute_cost(usage: Usage, price: ModelPrice) -> float:
    """USD cost of ``usage``: each token part priced once, at its own rate.

    Uncached input at the input rate, cache reads at the cache-read rate, cache writes at the
    cache-write rate (both falling back to the input rate when the model has none), output at the
    output rate.
    """
    parts = (
        (usage.uncached_input_tokens, _rate(price.input_per_mtok, price.input_per_mtok)),
        (usage.cache_read_tokens, _rate(price.cache_read_per_mtok, price.input_per_mtok)),
        (usage.cache_write_tokens, _rate(price.cache_write_per_mtok, price.input_per_mtok)),
        (usage.output_tokens, _rate(price.output_per_mtok, price.output_per_mtok)),
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
