"""The providers' own rate limits, as each answer's headers report them.

Anthropic sends ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{remaining,reset}``, the
reset an RFC 3339 time; OpenAI and the servers that copy it send ``x-ratelimit-remaining-{requests,tokens}`` and
``x-ratelimit-reset-{requests,tokens}``, the reset a duration from now (``6m0s``, ``1s``, ``20ms``). One parser
per format turns them into one ``RateLimits``; a header that is missing or does not parse is left unknown
(None), never guessed, and an answer without any of them has no RateLimits at all (a local server)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

# How long a provider that reported nothing left, but no time when room comes back, is left alone.
UNKNOWN_RESET = timedelta(seconds=10)
# What is stored of a provider's reports (see StoredRateLimits): its figures again once they are this old, and
# a new end of its exhaustion when it moved by more than this.
REFRESH_AFTER = timedelta(seconds=30)
UNTIL_TOLERANCE = timedelta(seconds=1)
# What a new report changes in what is stored: whether it has room (or until when not), or only old figures.
EXHAUSTION_CHANGED = "exhaustion"
FIGURES_STALE = "figures"
# Go's duration units, as OpenAI writes them (``1h2m3.5s``, ``20ms``); a bare number is seconds.
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
# Anthropic's token limits: the combined one and, where the organization has them, input and output apart.
_ANTHROPIC_TOKEN_KINDS = ("tokens", "input-tokens", "output-tokens")
_ANTHROPIC_PREFIX = "anthropic-ratelimit-"


@dataclass(frozen=True)
class RateLimits:
    """What a provider said was left of its rate limits when it answered (``reported_at``, UTC).

    Each figure is None when the provider did not report it. ``retry_at`` is the time a 429 answer asked the
    client to wait for (its Retry-After)."""

    reported_at: datetime
    requests_remaining: int | None = None
    tokens_remaining: int | None = None
    requests_reset_at: datetime | None = None
    tokens_reset_at: datetime | None = None
    retry_at: datetime | None = None

    def exhausted_until(self) -> datetime | None:
        """Until when the provider has no room, as it reported: the latest reset of the limits it reported at
        0 (``UNKNOWN_RESET`` after the answer when it gave no reset time), or the Retry-After of a 429; None
        while it has room."""
        ends = [
            reset or self.reported_at + UNKNOWN_RESET
            for remaining, reset in (
                (self.requests_remaining, self.requests_reset_at),
                (self.tokens_remaining, self.tokens_reset_at),
            )
            if remaining == 0
        ]
        if self.retry_at is not None:
            ends.append(self.retry_at)
        return max(ends) if ends else None


@dataclass
class StoredRateLimits:
    """What is stored of a provider's rate limits, as a process keeps it in memory: until when its last stored
    report said it had no room (None: it had), and when that report came (None: never), both UTC.

    Mutable: the process that stores a newer report updates its copy in place (``keep``), so that the gateway
    stores a report only when it changes something (``change``), not once per answer."""

    until: datetime | None = None
    reported_at: datetime | None = None

    def change(self, limits: RateLimits) -> str | None:
        """What storing ``limits`` would change: EXHAUSTION_CHANGED when the provider ran out of room, has room
        again, or will have it at another time; FIGURES_STALE when only the figures are older than
        REFRESH_AFTER; None when nothing needs storing."""
        until = ceil_second(limits.exhausted_until())
        if (until is None) != (self.until is None) or (until and abs(until - self.until) > UNTIL_TOLERANCE):
            return EXHAUSTION_CHANGED
        if self.reported_at is None or limits.reported_at - self.reported_at >= REFRESH_AFTER:
            return FIGURES_STALE
        return None

    def room_flips(self, limits: RateLimits) -> bool:
        """Whether storing ``limits`` turns a provider with room into one without, or back: what the other
        processes must learn at once (a moved end of a stretch without room they learn from their own answers)."""
        return (limits.exhausted_until() is None) != (self.until is None)

    def keep(self, limits: RateLimits) -> None:
        """Remember that ``limits`` is what is stored now."""
        self.until = ceil_second(limits.exhausted_until())
        self.reported_at = limits.reported_at

    def exhausted_at(self, now: datetime) -> datetime | None:
        """Until when the provider has no room, if that time is still to come at ``now``."""
        return self.until if self.until is not None and self.until > now else None


def ceil_second(when: datetime | None) -> datetime | None:
    """``when`` rounded up to a whole second (a room-again time is never brought forward), None for None."""
    if when is None or not when.microsecond:
        return when
    return when.replace(microsecond=0) + timedelta(seconds=1)


def refused(limits: RateLimits | None, retry_after: float | None, now: datetime) -> RateLimits | None:
    """The limits of a 429 answer: what its headers say, and the wait its Retry-After asks for, which makes
    the provider exhausted until then even when no header says 0."""
    if retry_after is None:
        return limits
    return replace(limits or RateLimits(reported_at=now), retry_at=now + timedelta(seconds=retry_after))


def anthropic_rate_limits(headers: Mapping[str, str], now: datetime) -> RateLimits | None:
    """The limits of an Anthropic answer (any case of the header names). The tokens left are the tightest of the
    combined, input and output token limits it reports."""
    # One pass over the headers: each lookup in httpx's Headers scans them all, and this takes a dozen.
    headers = {name.lower(): value for name, value in headers.items() if name[:20].lower() == _ANTHROPIC_PREFIX}
    requests = parse_count(headers.get("anthropic-ratelimit-requests-remaining"))
    requests_reset = parse_time(headers.get("anthropic-ratelimit-requests-reset"))
    token_limits = [
        (parse_count(headers.get(f"anthropic-ratelimit-{kind}-remaining")),
         parse_time(headers.get(f"anthropic-ratelimit-{kind}-reset")))
        for kind in _ANTHROPIC_TOKEN_KINDS
    ]
    tokens, tokens_reset = tightest(token_limits)
    return _limits(now, requests, tokens, requests_reset, tokens_reset)


def openai_rate_limits(headers: Mapping[str, str], now: datetime) -> RateLimits | None:
    """The limits of an OpenAI-compatible answer (``headers`` looked up case-insensitively, as requests' are);
    the resets, durations from the answer, become times."""
    requests_in = parse_duration(headers.get("x-ratelimit-reset-requests"))
    tokens_in = parse_duration(headers.get("x-ratelimit-reset-tokens"))
    return _limits(
        now,
        parse_count(headers.get("x-ratelimit-remaining-requests")),
        parse_count(headers.get("x-ratelimit-remaining-tokens")),
        now + requests_in if requests_in is not None else None,
        now + tokens_in if tokens_in is not None else None,
    )


def _limits(now, requests, tokens, requests_reset, tokens_reset) -> RateLimits | None:
    if requests is None and tokens is None and requests_reset is None and tokens_reset is None:
        return None
    return RateLimits(now, requests, tokens, requests_reset, tokens_reset)


def tightest(limits: list[tuple[int | None, datetime | None]]) -> tuple[int | None, datetime | None]:
    """Of several (remaining, reset) limits, the one that binds: those at 0 with the latest reset, else the
    fewest remaining; (None, None) when none reported a remaining figure."""
    reported = [(remaining, reset) for remaining, reset in limits if remaining is not None]
    if not reported:
        return None, None
    exhausted = [reset for remaining, reset in reported if remaining == 0]
    if exhausted:
        known = [reset for reset in exhausted if reset is not None]
        return 0, max(known) if known else None
    return min(reported, key=lambda limit: limit[0])


def parse_count(value: str | None) -> int | None:
    """A header's non-negative whole number, else None."""
    try:
        count = int(value.strip())
    except (AttributeError, ValueError):
        return None
    return count if count >= 0 else None


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time (``2026-12-06T10:00:03Z``) as an aware UTC datetime; a time without an offset is
    taken as UTC. None when it does not parse."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def parse_duration(value: str | None) -> timedelta | None:
    """A Go-style duration (``6m0s``, ``1s``, ``20ms``, ``1h2m3.5s``) or a bare number of seconds; None when it
    does not parse or is not finite."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(number + unit for number, unit in parts) != text:
            return None
        seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return timedelta(seconds=seconds)
