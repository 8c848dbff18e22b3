"""Rate limits: parsing the servers' reset and retry-after headers, token buckets, and the
limiter's admission (requests in flight, pauses when the headers say nothing remains)."""

from __future__ import annotations

import asyncio
import time

import pytest

from videodub.providers.limits import Bucket, RateLimiter, parse_reset, parse_retry_after


@pytest.mark.parametrize("text, seconds", [("1s", 1.0), ("6m0s", 360.0), ("120ms", 0.12),
                                           ("0.5s", 0.5), ("1h2m3s", 3723.0), ("7", 7.0),
                                           ("", None), ("soon", None)])
def test_parse_reset(text, seconds):
    assert parse_reset(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_retry_after_prefers_milliseconds():
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "1"}) == pytest.approx(0.25)
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({}) is None


def test_bucket_waits_in_proportion_to_the_shortfall():
    bucket = Bucket(60)  # one per second
    for _ in range(60):
        assert bucket.wait_time(1) == 0
        bucket.take(1)
    assert 0.9 < bucket.wait_time(1) <= 1.0
    unlimited = Bucket(0)
    unlimited.take(10**9)
    assert unlimited.wait_time(10**9) == 0


def test_bucket_adopts_the_servers_lower_limit_but_not_a_higher_one():
    bucket = Bucket(600)
    bucket.observe(limit=100, remaining=5)
    assert bucket.capacity == 100 and bucket.level <= 5
    bucket.observe(limit=10_000, remaining=None)
    assert bucket.capacity == 600
    learned = Bucket(0)  # nothing configured: the server's word is the limit
    learned.observe(limit=50, remaining=50)
    assert learned.capacity == 50


def test_limiter_caps_requests_in_flight():
    async def scenario() -> int:
        limiter = RateLimiter("test", max_in_flight=3)
        peak = 0

        async def one() -> None:
            nonlocal peak
            await limiter.acquire()
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0.01)
            limiter.release()

        await asyncio.gather(*(one() for _ in range(20)))
        assert limiter.in_flight == 0
        return peak

    assert asyncio.run(scenario()) == 3


def test_limiter_pauses_after_headers_say_nothing_remains():
    async def scenario() -> float:
        limiter = RateLimiter("test")
        limiter.observe({"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "0",
                         "x-ratelimit-reset-requests": "200ms"})
        t0 = time.monotonic()
        await limiter.acquire()
        return time.monotonic() - t0

    assert asyncio.run(scenario()) >= 0.15


def test_no_requests_left_waits_for_one_request_not_the_full_reset():
    # OpenAI's x-ratelimit-reset-* is the time until the whole minute's allowance is back.
    limiter = RateLimiter("test")
    limiter.observe({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                     "x-ratelimit-reset-requests": "1m0s"})

    wait = max(limiter.paused_until - time.monotonic(), limiter.requests.wait_time(1))
    assert limiter.from_headers
    assert wait == pytest.approx(1.0, abs=0.1)  # one request refills in 60 s / 60
