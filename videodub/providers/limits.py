"""Client-side rate limiting for one endpoint: requests/min, tokens/min and requests in flight.

Limits start from configuration and are corrected while the job runs from what the server
says: ``x-ratelimit-limit-*`` lowers (never raises past the configured value) the bucket's
size, ``x-ratelimit-remaining-*`` lowers its level (an empty bucket waits for its refill;
without a known limit, a remaining count of zero pauses until the reset time), and a 429 with
``Retry-After`` pauses every request on the endpoint that long. All methods
run on the provider event loop (:mod:`videodub.providers.aio`), so no locks are needed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str | None) -> float | None:
    """OpenAI's reset durations: ``"1s"``, ``"6m0s"``, ``"120ms"``, ``"0.5s"``; or plain seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts:
        return None
    return sum(float(n) * _UNIT_S[unit] for n, unit in parts)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


class Bucket:
    """A token bucket holding one minute's allowance, refilled continuously; 0 = unlimited."""

    def __init__(self, per_minute: int) -> None:
        self.configured = per_minute
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.stamp = time.monotonic()

    @property
    def limited(self) -> bool:
        return self.capacity > 0

    def _refill(self) -> None:
        now = time.monotonic()
        if self.limited:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.capacity / 60.0)
        self.stamp = now

    def wait_time(self, amount: float) -> float:
        if not self.limited:
            return 0.0
        self._refill()
        amount = min(amount, self.capacity)  # a request larger than the bucket waits for a full one
        return 0.0 if self.level >= amount else (amount - self.level) * 60.0 / self.capacity

    def take(self, amount: float) -> None:
        if self.limited:
            self._refill()
            self.level -= min(amount, self.capacity)

    def give_back(self, amount: float) -> None:
        if self.limited and amount > 0:
            self.level = min(self.capacity, self.level + amount)

    def observe(self, limit: int | None, remaining: int | None) -> None:
        """Adopt what the server reports: its limit (never above ours) and what remains."""
        if limit and limit > 0:
            new = float(min(limit, self.configured) if self.configured else limit)
            if not self.limited:
                self.level = new
            self.capacity = new
        if remaining is not None and self.limited:
            self._refill()
            self.level = min(self.level, float(remaining))


def _int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


class RateLimiter:
    """Admission for one endpoint, shared by everything that calls it in this process."""

    def __init__(self, name: str, rpm: int = 0, tpm: int = 0, max_in_flight: int = 0) -> None:
        self.name = name
        self.requests = Bucket(rpm)
        self.tokens = Bucket(tpm)
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.paused_until = 0.0
        self.from_headers = False
        self._changed: asyncio.Event | None = None

    def tighten(self, rpm: int, tpm: int, max_in_flight: int) -> None:
        """Another stage uses the same endpoint: the stricter of both settings applies."""
        for bucket, value in ((self.requests, rpm), (self.tokens, tpm)):
            if value and (not bucket.limited or value < bucket.capacity):
                bucket.configured = value
                bucket.capacity = bucket.level = float(value)
        if max_in_flight and (not self.max_in_flight or max_in_flight < self.max_in_flight):
            self.max_in_flight = max_in_flight

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    async def acquire(self, tokens: int = 0) -> float:
        """Wait until a request of about ``tokens`` tokens may start; returns seconds waited."""
        t0 = time.monotonic()
        while True:
            now = time.monotonic()
            delay = self.paused_until - now
            if delay <= 0 and self.max_in_flight and self.in_flight >= self.max_in_flight:
                event = self._event()
                event.clear()
                await event.wait()
                continue
            if delay <= 0:
                delay = max(self.requests.wait_time(1), self.tokens.wait_time(tokens))
            if delay <= 0:
                self.requests.take(1)
                self.tokens.take(tokens)
                self.in_flight += 1
                return time.monotonic() - t0
            await asyncio.sleep(min(delay, 1.0))

    def release(self, estimated_tokens: int = 0, used_tokens: int | None = None) -> None:
        self.in_flight -= 1
        if used_tokens is not None:
            self.tokens.give_back(estimated_tokens - used_tokens)
        self._event().set()

    def pause(self, seconds: float) -> None:
        """Hold every request on this endpoint for ``seconds`` (a 429's Retry-After)."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Correct the buckets from ``x-ratelimit-*`` response headers, where sent."""
        for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            limit = _int(headers, f"x-ratelimit-limit-{kind}")
            remaining = _int(headers, f"x-ratelimit-remaining-{kind}")
            if limit is None and remaining is None:
                continue
            self.from_headers = True
            bucket.observe(limit, remaining)
            # The reset header is the time until the bucket is full again, not until the next
            # request fits; a bucket that knows its limit paces itself from an empty level.
            if remaining == 0 and not bucket.limited:
                reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
                if reset:
                    self.pause(reset)

    def describe(self) -> dict:
        return {"requests_per_minute": int(self.requests.capacity),
                "tokens_per_minute": int(self.tokens.capacity),
                "max_in_flight": self.max_in_flight,
                "from_headers": self.from_headers}
