"""The providers' own usage and cost reports, and the reconciliation of the ledger with them.

Anthropic's Admin API (``/v1/organizations/usage_report/messages`` and ``/v1/organizations/cost_report``,
an admin key in ``x-api-key``) and OpenAI's organization API (``/v1/organization/usage/completions``,
``/v1/organization/usage/embeddings`` and ``/v1/organization/costs``, an admin key as bearer token) are
read page by page (``has_more``/``next_page``) in daily buckets (``bucket_width=1d``) into
``UsageLine`` (tokens per day, model and API key id) and ``CostLine`` (billed dollars per day and model,
by kind of token). What the reports cannot tell: the cost reports have no API key dimension (the dollars
of other keys are estimated from their tokens at genai-prices), Anthropic's usage report counts no
requests, and a day is only as complete as the provider's last report of it.

``reconcile_day`` compares one day and model of the ledger with the bill: a status and one sentence.
Plain Python, no Odoo: the models store and show what these functions return.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from .clients.base import ProviderError, connection_error, redact, retry, status_error, timeout_error
from .pricing import ModelPrice, compute_cost, format_usd, token_rates
from .usage import Usage

KINDS = ("anthropic", "openai")
# The kinds of token billed at a rate of their own, as core.pricing.token_rates names them: there
# "cache_write" is the cache writes other than the 1-hour ones, which Anthropic bills higher.
PRICED_KINDS = ("uncached_input", "cache_read", "cache_write", "cache_write_1h", "output")
TOKEN_KIND_LABELS = {
    "uncached_input": "uncached input", "cache_read": "cache read", "cache_write": "cache write",
    "cache_write_1h": "1-hour cache write", "output": "output",
}
ANTHROPIC_VERSION = "2023-06-01"
# Bounds of one fetch: pages of one report (a loop on a provider that always says has_more stops), days.
MAX_PAGES = 200
MAX_DAYS = 92
# Anthropic's cost report names the kind of token of each line (group_by description).
_ANTHROPIC_TOKEN_TYPES = {
    "uncached_input_tokens": "uncached_input",
    "cache_read_input_tokens": "cache_read",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write_1h",
    "output_tokens": "output",
}
# OpenAI's cost line items read "<model>, <part>" (group_by line_item).
_OPENAI_LINE_PARTS = {"input": "uncached_input", "cached input": "cache_read", "output": "output"}


class BillingReportError(Exception):
    """A fetch that failed: one sentence for the account's "last error", never holding the admin key."""


@dataclass
class ReportSource:
    """Where and how to read one organization's reports."""

    kind: str
    base_url: str
    admin_key: str
    timeout: float = 30.0
    max_retries: int = 2
    backoff_base: float = 0.5
    max_wait: float = 30.0

    def __repr__(self) -> str:
        # The dataclass repr would print the admin key into logs and tracebacks.
        return f"ReportSource(kind={self.kind!r}, base_url={self.base_url!r})"

    # The names the shared retry policy reads (core.clients.base.CallConfig).

    @property
    def api_key(self) -> str:
        return self.admin_key

    @property
    def max_backoff(self) -> float:
        return self.max_wait


@dataclass
class TokenCounts:
    """Tokens of each kind billed separately; ``requests`` None when the report counts none.
    ``cache_write_1h``, the cache writes kept for an hour, is a part of ``cache_write``."""

    uncached_input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    requests: int | None = 0
    cache_write_1h: int = 0

    @property
    def total(self) -> int:
        """Every token, prompt and completion."""
        return self.uncached_input + self.cache_read + self.cache_write + self.output

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return self._combine(other, operator.add)

    def __sub__(self, other: TokenCounts) -> TokenCounts:
        return self._combine(other, operator.sub)

    def _combine(self, other: TokenCounts, op: Callable[[int, int], int]) -> TokenCounts:
        requests_ = None if self.requests is None or other.requests is None else op(self.requests, other.requests)
        return TokenCounts(**{kind: op(getattr(self, kind), getattr(other, kind)) for kind in COUNTED_KINDS},
                           requests=requests_)

    def priced(self) -> dict[str, int]:
        """The tokens of each of PRICED_KINDS: the 1-hour cache writes apart from the other cache writes."""
        return {"uncached_input": self.uncached_input, "cache_read": self.cache_read,
                "cache_write": self.cache_write - self.cache_write_1h, "cache_write_1h": self.cache_write_1h,
                "output": self.output}

    def as_usage(self) -> Usage:
        """The tokens as the ledger's Usage (cache parts inside the prompt tokens), to price them."""
        prompt = self.uncached_input + self.cache_read + self.cache_write
        return Usage(input_tokens=prompt, output_tokens=self.output, cache_read_tokens=self.cache_read,
                     cache_write_tokens=self.cache_write, cache_write_1h_tokens=self.cache_write_1h)


# Every count of a TokenCounts but its requests (the 1-hour cache writes are a part of the cache writes, as in
# core.usage.Usage).
COUNTED_KINDS = tuple(count.name for count in fields(TokenCounts) if count.name != "requests")


@dataclass
class UsageLine:
    """The provider's tokens of one day, model and API key id."""

    day: date
    model: str
    api_key_id: str
    tokens: TokenCounts


@dataclass
class CostLine:
    """The provider's billed dollars of one day and model, by kind of token of PRICED_KINDS (``other``: what
    no kind names, such as web searches, or a report without a breakdown)."""

    day: date
    model: str
    usd: dict[str, Decimal] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return sum(self.usd.values(), Decimal(0))


@dataclass
class Reports:
    """What one fetch read: usage and cost lines, and the days that both reports covered."""

    usage: list[UsageLine]
    costs: list[CostLine]
    reported_days: set[date]


# -- fetching ---------------------------------------------------------------------------------


def check_period(date_from: date, date_to: date) -> None:
    """Refuse a period the providers cannot be asked for, in a sentence (ValueError)."""
    if not isinstance(date_from, date) or not isinstance(date_to, date):
        raise ValueError("The period needs a start date and an end date.")
    if date_from > date_to:
        raise ValueError(f"The period starts on {date_from} after it ends on {date_to}.")
    if (date_to - date_from).days >= MAX_DAYS:
        raise ValueError(f"Fetch at most {MAX_DAYS} days at a time ({date_from} to {date_to} is longer).")


def fetch_reports(
    source: ReportSource, date_from: date, date_to: date, sleep: Callable[[float], None] = time.sleep
) -> Reports:
    """Read the usage and cost reports of ``date_from`` to ``date_to`` (inclusive, UTC days).

    Raises BillingReportError with one sentence on a refused key, a rate limit or a server error that
    outlasts the bounded retries, an unreachable host or a malformed page; nothing is returned half-read.
    """
    check_period(date_from, date_to)
    if source.kind not in KINDS:
        raise BillingReportError(f"Unknown billing account kind {source.kind!r}; expected one of {', '.join(KINDS)}.")
    if not source.admin_key:
        raise BillingReportError("The billing account has no admin key.")
    with requests.Session() as session:
        reader = _Reader(source, session, sleep)
        if source.kind == "anthropic":
            return reader.anthropic(date_from, date_to)
        return reader.openai(date_from, date_to)


class _Reader:
    """One fetch: the HTTP session, the retries and the parsing of each report."""

    def __init__(self, source: ReportSource, session: requests.Session, sleep: Callable[[float], None]) -> None:
        self.source = source
        self.session = session
        self.sleep = sleep
        self.base_url = source.base_url.rstrip("/")

    # Anthropic

    def anthropic(self, date_from: date, date_to: date) -> Reports:
        period = {
            "starting_at": f"{date_from.isoformat()}T00:00:00Z",
            "ending_at": f"{(date_to + timedelta(days=1)).isoformat()}T00:00:00Z",
            "bucket_width": "1d",
            "limit": 31,
        }
        headers = {"x-api-key": self.source.admin_key, "anthropic-version": ANTHROPIC_VERSION}
        usage_buckets = self.pages("/v1/organizations/usage_report/messages",
                                   {**period, "group_by[]": ["model", "api_key_id"]}, headers)
        cost_buckets = self.pages("/v1/organizations/cost_report", {**period, "group_by[]": ["description"]}, headers)
        usage = [
            UsageLine(day, _text(result, "model"), _text(result, "api_key_id"), _anthropic_tokens(result))
            for day, result in _results(usage_buckets, "starting_at")
        ]
        costs: dict[tuple[date, str], CostLine] = {}
        for day, result in _results(cost_buckets, "starting_at"):
            if result.get("currency") != "USD":
                raise _malformed(f"a cost in {result.get('currency')!r} where USD was expected")
            try:
                usd = Decimal(str(result["amount"])) / 100  # a decimal string in cents
            except (KeyError, InvalidOperation):
                raise _malformed("a cost amount that is not a decimal string") from None
            kind = _ANTHROPIC_TOKEN_TYPES.get(result.get("token_type") or "", "other")
            _add_cost(costs, day, _text(result, "model"), kind, usd)
        return Reports(usage, list(costs.values()), _days(usage_buckets, "starting_at") & _days(cost_buckets,
                                                                                                 "starting_at"))

    # OpenAI

    def openai(self, date_from: date, date_to: date) -> Reports:
        start = datetime.combine(date_from, datetime.min.time(), tzinfo=timezone.utc)
        end = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
        period = {"start_time": int(start.timestamp()), "end_time": int(end.timestamp()), "bucket_width": "1d",
                  "limit": 31}
        headers = {"Authorization": f"Bearer {self.source.admin_key}"}
        grouped = {**period, "group_by": ["model", "api_key_id"]}
        completions = self.pages("/organization/usage/completions", grouped, headers)
        embeddings = self.pages("/organization/usage/embeddings", grouped, headers)
        cost_buckets = self.pages("/organization/costs", {**period, "group_by": ["line_item"]}, headers)
        usage = []
        for day, result in _results(completions + embeddings, "start_time"):
            cached = _count(result, "input_cached_tokens")
            usage.append(UsageLine(day, _text(result, "model"), _text(result, "api_key_id"), TokenCounts(
                uncached_input=_count(result, "input_tokens") - cached, cache_read=cached,
                output=_count(result, "output_tokens"), requests=_count(result, "num_model_requests"),
            )))
        costs: dict[tuple[date, str], CostLine] = {}
        for day, result in _results(cost_buckets, "start_time"):
            amount = result.get("amount")
            if not isinstance(amount, dict) or not isinstance(amount.get("value"), int | float):
                raise _malformed("a cost amount without a numeric value")
            if str(amount.get("currency", "")).lower() != "usd":
                raise _malformed(f"a cost in {amount.get('currency')!r} where usd was expected")
            model, _sep, part = (result.get("line_item") or "").rpartition(", ")
            kind = _OPENAI_LINE_PARTS.get(part, "other") if model else "other"
            _add_cost(costs, day, model or (result.get("line_item") or ""), kind, Decimal(str(amount["value"])))
        days = _days(completions, "start_time") & _days(embeddings, "start_time") & _days(cost_buckets, "start_time")
        return Reports(usage, list(costs.values()), days)

    # Pages and retries

    def pages(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> list[dict]:
        """Every bucket of a paged report, following ``next_page`` while ``has_more``."""
        buckets: list[dict] = []
        page_token = None
        for _page in range(MAX_PAGES):
            page = self.get(path, {**params, **({"page": page_token} if page_token else {})}, headers)
            if not isinstance(page, dict) or not isinstance(page.get("data"), list) or not all(
                isinstance(bucket, dict) and isinstance(bucket.get("results"), list) for bucket in page["data"]
            ):
                raise _malformed(f"a page of {path} without its list of buckets")
            buckets += page["data"]
            if not page.get("has_more"):
                return buckets
            page_token = page.get("next_page")
            if not isinstance(page_token, str) or not page_token:
                raise _malformed(f"a page of {path} with more to come but no next_page")
        raise _malformed(f"{path} kept announcing more pages after {MAX_PAGES}")

    def get(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> Any:
        """One page, retried as the gateway's calls are (core.clients.base.retry: a connection or a timeout,
        a 429, a 5xx) at most ``max_retries`` times with jittered exponential backoff; a 429 only while its
        Retry-After stays within ``max_wait``."""
        try:
            page, _attempts = retry(lambda: self._get_once(path, params, headers), self.source, self.sleep)
        except ProviderError as error:
            raise BillingReportError(redact(_report_error_sentence(error), self.source.admin_key)) from None
        return page

    def _get_once(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> Any:
        """The page, or the ProviderError of the failed request, classified as the gateway's are."""
        source = self.source
        try:
            response = self.session.get(self.base_url + path, params=params, headers=headers, timeout=source.timeout)
        except requests.Timeout:
            raise timeout_error(self.base_url, source.timeout) from None
        except requests.RequestException as error:
            raise connection_error(self.base_url, error) from None
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                raise _malformed(f"a page of {path} that is not JSON") from None
        error = status_error(response.status_code, _error_detail(response), response.headers, source)
        if error.kind == "rate_limit" and error.retry_after is not None and error.retry_after > source.max_wait:
            # A wait that long is the next fetch's to make, not this one's.
            error.retryable = False
        raise error


def _report_error_sentence(error: ProviderError) -> str:
    """The sentence an administrator reads on the account for a fetch that failed with ``error``."""
    if error.status is None:
        sentence = error.detail  # no HTTP answer: the transport's sentence names the address and the cause
    elif error.kind == "auth":
        sentence = (f"The provider refused the admin key (HTTP {error.status}): check that it is an admin key of "
                    "this organization and that it was not revoked")
    elif error.kind == "rate_limit":
        sentence = "The provider's report API is rate limited (HTTP 429)"
        if error.retry_after is not None:
            sentence += (f", it asked to wait {error.retry_after:g} s" if error.retryable
                         else f" for another {error.retry_after:g} s")
    elif error.retryable:
        sentence = f"The provider's report API failed (HTTP {error.status})"
    else:
        sentence = f"The provider rejected the report request (HTTP {error.status}): {error.detail}"
    return sentence + (f" after {error.attempts} attempts." if error.attempts > 1 else ".")


def _results(buckets: list[dict], start_key: str) -> Iterable[tuple[date, dict]]:
    """(day, result) of every result of ``buckets``."""
    for bucket in buckets:
        day = _bucket_day(bucket, start_key)
        for result in bucket["results"]:
            if not isinstance(result, dict):
                raise _malformed("a bucket result that is not an object")
            yield day, result


def _anthropic_tokens(result: dict) -> TokenCounts:
    """The tokens of one result of Anthropic's usage report, its 1-hour cache writes apart."""
    cache_creation = result.get("cache_creation") or {}
    if not isinstance(cache_creation, dict):
        raise _malformed("cache_creation is not an object")
    one_hour = _count(cache_creation, "ephemeral_1h_input_tokens")
    return TokenCounts(
        uncached_input=_count(result, "uncached_input_tokens"),
        cache_read=_count(result, "cache_read_input_tokens"),
        cache_write=_count(cache_creation, "ephemeral_5m_input_tokens") + one_hour,
        cache_write_1h=one_hour,
        output=_count(result, "output_tokens"),
        requests=None,  # the messages usage report counts tokens, not requests
    )


def _malformed(what: str) -> BillingReportError:
    return BillingReportError(f"The provider sent a malformed report page: {what}.")


def _bucket_day(bucket: dict, start_key: str) -> date:
    """The UTC day a bucket starts on: an RFC 3339 time (Anthropic) or Unix seconds (OpenAI)."""
    value = bucket.get(start_key)
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, tz=timezone.utc).date()
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc).date()
    except (TypeError, ValueError, OverflowError):
        raise _malformed(f"a bucket whose {start_key} is not a time") from None


def _count(result: dict, name: str) -> int:
    value = result.get(name) or 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _malformed(f"{name} is not a token count")
    return value


def _text(result: dict, name: str) -> str:
    return str(result.get(name) or "")


def _add_cost(costs: dict[tuple[date, str], CostLine], day: date, model: str, kind: str, usd: Decimal) -> None:
    line = costs.setdefault((day, model), CostLine(day, model))
    line.usd[kind] = line.usd.get(kind, Decimal(0)) + usd


def _days(buckets: list[dict], start_key: str) -> set[date]:
    return {_bucket_day(bucket, start_key) for bucket in buckets}


def _error_detail(response: requests.Response) -> str:
    """The provider's own error message, short."""
    try:
        body = response.json()
        message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    return str(message or response.reason or "no detail")[:300]


# -- reconciling ------------------------------------------------------------------------------


@dataclass
class LedgerDay:
    """What the ledger holds for one day and model: the attempts that reached the provider."""

    calls: int = 0
    tokens: TokenCounts = field(default_factory=TokenCounts)
    cost_usd: float = 0.0
    cost_unknown_calls: int = 0
    failed_attempts: int = 0


@dataclass
class BillDay:
    """What the provider reported for one day and model. ``ours``: the tokens of the providers' own API
    keys, or of every key when ``keys_known`` is False; ``others``: the other keys' tokens."""

    reported: bool
    keys_known: bool = False
    ours: TokenCounts = field(default_factory=TokenCounts)
    others: TokenCounts = field(default_factory=TokenCounts)
    usd: dict[str, Decimal] = field(default_factory=dict)
    other_key_ids: set[str] = field(default_factory=set)

    @property
    def billed_usd(self) -> float:
        return float(sum(self.usd.values(), Decimal(0)))


@dataclass
class Tolerance:
    """A difference within ``percent`` of the bill or within ``usd`` dollars (the larger) is a match."""

    percent: float = 2.0
    usd: float = 0.01

    def allows(self, difference: float, reference: float) -> bool:
        return abs(difference) <= max(self.usd, abs(reference) * self.percent / 100) + 1e-9


@dataclass
class Outcome:
    """The verdict on one day and model."""

    status: str  # matched | explained | unexplained | pending
    explanation: str
    diff_tokens: int = 0
    diff_usd: float = 0.0


def billed_at_genai_prices(tokens: TokenCounts, price: ModelPrice) -> dict[str, Decimal]:
    """What a provider billing at genai-prices' rates (``price``) bills for ``tokens``: the dollars of each kind
    of PRICED_KINDS that has tokens, as a cost report gives them."""
    rates = token_rates(price)
    return {kind: count * rates[kind] / 1_000_000 for kind, count in tokens.priced().items() if count}


def price_differences(bill: BillDay, price: ModelPrice | None, tolerance: Tolerance) -> list[str]:
    """Sentences naming each kind of token billed at a price other than genai-prices', beyond tolerance:
    the dollars it makes and the implied price per million tokens. The bill and the tokens both cover every
    key of the organization, so other keys' usage leaves the implied price intact."""
    if price is None:
        return []
    tokens = bill.ours + bill.others
    counts = tokens.priced()
    rates = token_rates(price)
    at_genai_prices = billed_at_genai_prices(tokens, price)
    found = []
    for kind in PRICED_KINDS:
        count = counts[kind]
        if count <= 0 or kind not in bill.usd:
            continue
        billed = float(bill.usd[kind])
        rate = float(rates[kind])
        expected = float(at_genai_prices[kind])
        if tolerance.allows(billed - expected, expected):
            continue
        implied = billed / count * 1e6
        found.append(
            f"{TOKEN_KIND_LABELS[kind]} tokens billed {_more_or_less(billed - expected)} than at genai-prices: "
            f"${implied:.4g} per million where genai-prices says ${rate:.4g}"
        )
    return found


def _genai_cost(tokens: TokenCounts, price: ModelPrice | None) -> float:
    """What ``tokens`` cost at genai-prices (0 for a model it cannot price)."""
    return compute_cost(tokens.as_usage(), price) if price else 0.0


def _genai_cost_text(tokens: TokenCounts, price: ModelPrice | None) -> str:
    return f"about {format_usd(_genai_cost(tokens, price))} at genai-prices" if price else "unpriced at genai-prices"


def _more_or_less(usd: float) -> str:
    """A signed difference in words, as a person writes it: '$0.699 more', '$0.12 less'."""
    return f"{format_usd(abs(usd))} {'more' if usd >= 0 else 'less'}"


def reconcile_day(ledger: LedgerDay, bill: BillDay, price: ModelPrice | None, tolerance: Tolerance) -> Outcome:
    """Compare one day and model of the ledger with the provider's report of it: a status and one sentence.

    ``explained``: the difference is accounted for by other keys' usage (priced at genai-prices, as the
    cost reports have no key dimension), by tokens the bill holds beyond the ledger's when attempts failed
    here or when no API key id tells Odoo's usage apart, or by calls the ledger holds as cost unknown. A
    price differing from genai-prices is named but left ``unexplained``: someone must correct the price.
    """
    if not bill.reported:
        return Outcome("pending", "The provider has not reported this day yet: the next fetch completes it.")
    billed_tokens = bill.ours + bill.others
    diff_tokens = billed_tokens.total - ledger.tokens.total
    diff_usd = bill.billed_usd - ledger.cost_usd
    excess = bill.ours - ledger.tokens

    parts: list[str] = []
    explained_usd = 0.0
    if bill.others.total:
        explained_usd += _genai_cost(bill.others, price)
        # An empty id is usage without a key: Anthropic's Workbench, for one.
        keys = ", ".join(sorted(key or "no key" for key in bill.other_key_ids))
        parts.append(f"{bill.others.total:,} tokens came from other API keys of the organization "
                     f"({keys}; {_genai_cost_text(bill.others, price)})")
    if excess.total > 0:
        if ledger.failed_attempts:
            explained_usd += _genai_cost(excess, price)
            parts.append(f"{ledger.failed_attempts:,} attempts failed here but were billed there "
                         f"({excess.total:,} tokens, {_genai_cost_text(excess, price)})")
        elif not bill.keys_known:
            explained_usd += _genai_cost(excess, price)
            parts.append(f"the bill holds {excess.total:,} tokens more than the ledger "
                         f"({_genai_cost_text(excess, price)}), possibly usage from outside Odoo: set the "
                         "providers' API key id to tell it apart")
    elif excess.total < 0:
        parts.append(f"the ledger holds {-excess.total:,} tokens more than the bill")
    if ledger.cost_unknown_calls:
        parts.append(f"{ledger.cost_unknown_calls:,} calls are held as cost unknown in the ledger")
    prices = price_differences(bill, price, tolerance)
    residual = diff_usd - explained_usd

    if prices:
        status = "unexplained"
        parts = prices + parts
    elif not parts and tolerance.allows(diff_usd, bill.billed_usd):
        status = "matched"
    elif parts and excess.total >= 0 and (ledger.cost_unknown_calls or tolerance.allows(residual, bill.billed_usd)):
        status = "explained"
    else:
        status = "unexplained"
        if not tolerance.allows(residual, bill.billed_usd):
            parts.append(f"{_more_or_less(residual)} billed than explained")
    if status == "matched":
        sentence = "The bill matches the ledger within tolerance."
    else:
        sentence = (
            f"Billed {format_usd(bill.billed_usd)} against {format_usd(ledger.cost_usd)} in the ledger: "
            + "; ".join(parts)
        )
        sentence += "."
    return Outcome(status, sentence, diff_tokens, diff_usd)
