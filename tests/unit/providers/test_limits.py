"""Rate limits: parsing the servers' reset and retry-after headers, token buckets, and the
limiter's admission (requests in flight, pauses when the headers say nothing remains)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from videodub.providers import limits
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


class FakeClock:
    """Stands in for the ``time`` module in limits.py: the monotonic clock moves only when a
    test says so, so a slow or busy machine cannot refill a bucket behind its back."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(limits, "time", fake)
    return fake


def test_bucket_waits_in_proportion_to_the_shortfall(clock):
    bucket = Bucket(60)  # one per second
    for _ in range(60):
        assert bucket.wait_time(1) == 0
        bucket.take(1)
    assert bucket.wait_time(1) == pytest.approx(1.0)
    clock.now += 0.25  # a quarter of a request refilled
    assert bucket.wait_time(1) == pytest.approx(0.75)
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


def test_no_requests_left_waits_for_one_request_not_the_full_reset(clock):
    # OpenAI's x-ratelimit-reset-* is the time until the whole minute's allowance is back.
    limiter = RateLimiter("test")
    limiter.observe({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                     "x-ratelimit-reset-requests": "1m0s"})

    wait = max(limiter.paused_until - clock.now, limiter.requests.wait_time(1))
    assert limiter.from_headers
    assert wait == pytest.approx(1.0)  # one request refills in 60 s / 60


@pytest.mark.parametrize("text, seconds", [("0.25", 0.25), ("-3", 0.0), ("0", 0.0)])
def test_plain_seconds_are_taken_as_they_are_and_never_below_zero(text, seconds):
    assert parse_reset(text) == seconds
    assert parse_retry_after({"retry-after": text}) == seconds


@pytest.mark.parametrize("value, seconds", [
    ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),  # 30 s after the fake clock's now
    ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),  # already past: no wait, not a negative one
    ("next Tuesday", None),
], ids=["ahead", "past", "not-a-date"])
def test_retry_after_as_an_http_date(clock, value, seconds):
    assert parse_retry_after({"retry-after": value}) == seconds


def test_a_remaining_count_without_a_limit_lowers_the_level():
    bucket = Bucket(60)
    bucket.observe(limit=None, remaining=3)
    assert bucket.capacity == 60 and bucket.level <= 3


def test_a_limit_of_one_request_per_minute_is_adopted():
    bucket = Bucket(60)
    bucket.observe(limit=1, remaining=None)
    assert bucket.capacity == 1


def test_an_unlimited_bucket_that_learns_a_limit_starts_full(clock):
    bucket = Bucket(0)
    bucket.observe(limit=50, remaining=None)
    assert (bucket.capacity, bucket.level) == (50, 50)
    assert bucket.wait_time(1) == 0


def test_pause_holds_the_endpoint_from_now_and_never_shortens_a_pause(clock):
    limiter = RateLimiter("test")
    limiter.pause(2.0)
    assert limiter.paused_until == clock.now + 2.0
    limiter.pause(0.5)  # a shorter Retry-After from a later answer
    assert limiter.paused_until == clock.now + 2.0
    clock.now += 1.0
    limiter.pause(3.0)
    assert limiter.paused_until == clock.now + 3.0


def test_tokens_estimated_but_not_used_go_back_into_the_bucket(clock):
    bucket = Bucket(1000)
    bucket.take(300)
    bucket.give_back(200)
    assert bucket.level == 900
    bucket.give_back(500)  # never above a full minute's allowance
    assert bucket.level == 1000
    bucket.take(100)
    bucket.give_back(-50)  # a request that used more than estimated takes nothing back
    assert bucket.level == 900
    bucket.give_back(1)
    assert bucket.level == 901
    unlimited = Bucket(0)
    unlimited.give_back(10)
    assert (unlimited.capacity, unlimited.level) == (0, 0)


def test_release_returns_the_unused_part_of_a_requests_token_estimate(clock):
    async def scenario() -> tuple[float, float]:
        limiter = RateLimiter("test", tpm=1000)
        await limiter.acquire()  # a request that names no tokens takes none
        limiter.release()
        untouched = limiter.tokens.level
        await limiter.acquire(tokens=400)
        limiter.release(estimated_tokens=400, used_tokens=150)
        return untouched, limiter.tokens.level

    assert asyncio.run(scenario()) == (1000, 850)


def test_token_headers_alone_correct_the_token_bucket(clock):
    limiter = RateLimiter("test", rpm=60)
    limiter.observe({"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "10"})
    assert (limiter.tokens.capacity, limiter.tokens.level) == (1000, 10)
    assert limiter.requests.capacity == 60 and limiter.from_headers


def test_nothing_remaining_without_a_limit_pauses_until_the_reset(clock):
    limiter = RateLimiter("test")
    limiter.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"})
    assert limiter.from_headers
    assert limiter.paused_until == clock.now + 2.0


def test_a_second_stage_on_the_endpoint_tightens_only_what_it_sets_stricter(clock):
    limiter = RateLimiter("test", rpm=60, tpm=0, max_in_flight=8)
    limiter.requests.take(10)
    limiter.tighten(60, 0, 0)  # the same limits, and none for tokens or in flight
    assert (limiter.requests.capacity, limiter.requests.level) == (60, 50)  # level kept
    assert (limiter.tokens.limited, limiter.max_in_flight) == (False, 8)
    limiter.tighten(120, 0, 16)  # looser: ignored
    assert (limiter.requests.capacity, limiter.max_in_flight) == (60, 8)
    limiter.tighten(30, 5000, 4)  # stricter, and a token limit where there was none
    assert (limiter.requests.configured, limiter.requests.capacity,
            limiter.requests.level) == (30, 30, 30)
    assert (limiter.tokens.configured, limiter.tokens.capacity) == (5000, 5000)
    assert limiter.max_in_flight == 4
    assert limiter.describe() == {"requests_per_minute": 30, "tokens_per_minute": 5000,
                                  "max_in_flight": 4, "from_headers": False}


def test_a_limiter_with_nothing_configured_limits_nothing():
    limiter = RateLimiter("chat at 127.0.0.1")
    assert limiter.name == "chat at 127.0.0.1"
    assert limiter.describe() == {"requests_per_minute": 0, "tokens_per_minute": 0,
                                  "max_in_flight": 0, "from_headers": False}


def test_acquire_waits_out_the_bucket_and_a_pause_and_says_how_long(clock, monkeypatch):
    """On the fake clock, with a sleep that moves it: the waits are exact."""
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        clock.now += seconds
        await real_sleep(0)

    monkeypatch.setattr(limits, "asyncio", SimpleNamespace(Event=asyncio.Event, sleep=sleep))

    async def scenario() -> list[float]:
        limiter = RateLimiter("test", rpm=60)  # one request a second
        limiter.requests.take(59)
        waited = [await limiter.acquire()]  # the last one in the bucket: no wait
        waited.append(await limiter.acquire())  # the next one refills in 1 s
        limiter.pause(2.5)  # a 429's Retry-After: longer than the bucket needs
        waited.append(await limiter.acquire())
        return waited

    assert asyncio.run(scenario()) == [0.0, pytest.approx(1.0), pytest.approx(2.5)]
