"""The provider building blocks on their own: rate-limit parsing and buckets, the limiter's
admission, text splitting for TTS, chunk planning for long audio, and prices."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from videodub.builtin.transcribe_openai import frame_energy, plan_chunks
from videodub.builtin.tts_openai import clamp_speed, split_text
from videodub.providers.limits import Bucket, RateLimiter, parse_reset, parse_retry_after
from videodub.providers.usage import Price, Usage, cost, default_prices, find_price


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


def test_split_text_cuts_at_sentence_ends_within_the_limit():
    sentence = "This sentence is about forty characters. "
    text = (sentence * 250).strip()
    parts = split_text(text, 4096)
    assert len(parts) == 3
    assert all(len(p) <= 4096 for p in parts)
    assert all(p.endswith(".") for p in parts)
    assert " ".join(parts) == text


def test_split_text_cuts_a_sentence_longer_than_the_limit_at_spaces():
    text = " ".join(["word"] * 2000)  # 9999 characters, no sentence end
    parts = split_text(text, 4096)
    assert all(len(p) <= 4096 for p in parts)
    assert " ".join(parts) == text
    assert split_text("short.", 4096) == ["short."]


def test_speed_is_kept_within_the_api_range():
    assert clamp_speed(5.2) == 4.0
    assert clamp_speed(0.1) == 0.25
    assert clamp_speed(1.234) == 1.234


def test_chunks_are_cut_in_silences_and_cover_the_audio():
    rate = 16000
    rng = np.random.default_rng(0)
    # 10 s of noise, 1 s of silence, repeated: quiet points at 10-11, 21-22, 32-33 ...
    block = np.concatenate([rng.normal(0, 3000, 10 * rate), np.zeros(rate)]).astype(np.int16)
    audio = np.tile(block, 6)
    duration = len(audio) / rate
    chunks = plan_chunks(frame_energy(audio, rate), duration, max_chunk=25.0)
    assert chunks[0].start == 0 and chunks[-1].end == pytest.approx(duration)
    for a, b in zip(chunks, chunks[1:]):
        assert a.end == b.start
        assert (a.end % 11) > 10.0  # inside a silent second
    assert all(c.duration <= 25.0 for c in chunks)


def test_short_audio_is_one_chunk():
    assert len(plan_chunks(np.zeros(100), 2.0, 600.0)) == 1


def test_prices_cover_the_default_models_and_dated_snapshots():
    prices = default_prices()
    assert find_price(prices, "gpt-4o-mini-2024-07-18") == prices["gpt-4o-mini"]
    assert find_price(prices, "llama3.1:8b") is None
    assert cost(Usage(audio_in_s=600), prices["whisper-1"]) == pytest.approx(0.06)
    assert cost(Usage(chars=1_000_000), prices["tts-1"]) == pytest.approx(15.0)
    assert cost(Usage(tokens_in=1_000_000, tokens_out=1_000_000),
                Price(input_per_1m_tokens=1, output_per_1m_tokens=2)) == pytest.approx(3.0)
    assert cost(Usage(chars=10), None) is None


def test_displays_show_calls_in_flight_retries_and_429s_per_provider():
    import io

    from rich.console import Console

    from videodub.run.display import PlainDisplay, RichDisplay, provider_line
    from videodub.providers.usage import ProviderStats
    from videodub.run.stats import ProcessMonitor, StageStats

    stages = [StageStats("tts", impl="openai", total=10, done=3)]
    provider = ProviderStats("tts", "tts-1", "http://127.0.0.1:9/v1")
    provider.calls, provider.in_flight, provider.max_in_flight = 7, 2, 3
    provider.retries, provider.rate_limited = 4, 5
    assert provider_line(provider) == "tts tts-1: 7 calls, 2 in flight (max 3), 4 retries, 5 x 429"

    out = io.StringIO()
    live = RichDisplay(stages, ProcessMonitor(stages), out, [provider])
    Console(file=out, width=100).print(live._render())
    row = next(line for line in out.getvalue().splitlines() if "tts-1" in line)
    assert row.split()[2:6] == ["7", "2/3", "4", "5"]

    out = io.StringIO()
    PlainDisplay(stages, ProcessMonitor(stages), out, [provider]).summary()
    assert "providers" in out.getvalue() and "2 (max 3)" in out.getvalue()
