"""Requests- and tokens-per-minute limits per route, enforced as OpenAI enforces them: a request
that does not fit is refused with a 429 (never queued), and every answer on a limited route
describes its buckets in ``x-ratelimit-*`` headers.

The buckets are the client-side limiter's (:class:`videodub.providers.limits.Bucket`), so both
ends of a test count a minute's allowance the same way.
"""

from __future__ import annotations

import math
import threading

from videodub.providers.limits import Bucket
from videodub.testing.loopback.faults import ROUTES, ApiError, format_duration, retry_headers

KINDS = ("requests", "tokens")


def _wait(bucket: Bucket, amount: int) -> float:
    """Seconds until ``amount`` fits in ``bucket`` (0: it fits now); refills the bucket."""
    wait = bucket.wait_time(amount)
    if amount > bucket.capacity:
        # A client waits for a full bucket, but OpenAI refuses a request larger than the limit
        # however long it waits.
        return (amount - bucket.level) * 60.0 / bucket.capacity
    return wait


class Limits:
    """The buckets of every limited route, and the headers that describe them."""

    def __init__(self, rpm: dict[str, int], tpm: dict[str, int]) -> None:
        self._per_minute = {"requests": rpm, "tokens": tpm}
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Full buckets again."""
        with self._lock:
            self._buckets = {(route, kind): Bucket(limits[route])
                             for kind, limits in self._per_minute.items()
                             for route in ROUTES if limits.get(route)}

    def _of(self, route: str) -> list[tuple[str, Bucket]]:
        return [(kind, self._buckets[(route, kind)]) for kind in KINDS
                if (route, kind) in self._buckets]

    def admit(self, route: str, tokens: int) -> None:
        """Take one request and ``tokens`` from the route's buckets, or raise a 429."""
        with self._lock:
            buckets = self._of(route)
            for kind, bucket in buckets:
                amount = 1 if kind == "requests" else tokens
                wait = _wait(bucket, amount)
                if wait > 0:
                    raise _limited(route, kind, bucket, amount, wait)
            for kind, bucket in buckets:
                bucket.take(1 if kind == "requests" else tokens)

    def spend(self, route: str, tokens: int) -> None:
        """Charge tokens known only after answering (a completion's)."""
        with self._lock:
            bucket = self._buckets.get((route, "tokens"))
            if bucket:
                bucket.take(tokens)

    def headers(self, route: str) -> dict[str, str]:
        with self._lock:
            headers = {}
            for kind, bucket in self._of(route):
                # A bucket's worth fits once the bucket is full: the reset time OpenAI reports.
                until_full = bucket.wait_time(bucket.capacity)
                headers[f"x-ratelimit-limit-{kind}"] = str(int(bucket.capacity))
                headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(bucket.level)))
                headers[f"x-ratelimit-reset-{kind}"] = format_duration(until_full)
            return headers


def _limited(route: str, kind: str, bucket: Bucket, amount: int, wait: float) -> ApiError:
    unit = "RPM" if kind == "requests" else "TPM"
    used = math.ceil(bucket.capacity - bucket.level)
    return ApiError(429, f"Rate limit reached for {kind} per min ({unit}) on {route}: Limit "
                         f"{int(bucket.capacity)}, Used {used}, Requested {amount}. Please try "
                         f"again in {format_duration(wait)}.", kind, code="rate_limit_exceeded",
                    headers=retry_headers(wait))
