"""translate=openai and tts=openai, and the transport under them, against the loopback server.

Hosted APIs fail in ways a happy-path test never sees: 5xx answers, stalls, dropped
connections, bodies that are not JSON, 429 storms, and chat answers with an id missing,
repeated or cut off. The loopback server produces each of those on demand, so these tests
run whole dub jobs in this process (or a stage on its own) through the real ``openai`` SDK
over 127.0.0.1 and check what the job made of them: the report's provider counters, the
translated lines, the clips, and what the server itself saw (``stats()``, ``requests``). What
the command line prints for the same failures is in ``e2e/test_openai.py``.

Where a request's body matters (the glossary, style, context and ``max_chars`` a
translation request carries; TTS ``instructions``), ``request_bodies(server)`` reads the JSON
bodies the server recorded. Media is synthesized once: short espeak talks whose voiced
regions become the segments the loopback transcriber labels with its script.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import soundfile
from conftest import FOUR_LINES, TEST_KEY_ENV, Talk, openai_overrides

from videodub.api import dub
from videodub.builtin.tts_openai import MAX_INPUT_CHARS
from videodub.errors import VideodubError
from videodub.testing.loopback import Faults, LoopbackServer, translate
from videodub.model import JobContext, Segment
from videodub.plugins import collect
from videodub.run.runner import RunResult

MANY_LINES = 24
# The transcript the storm servers give the many-line talk: every line different, so no clip
# is reused from the cache and every line is one speech request.
NUMBERED_SCRIPT = [f"Line {i}: hello and welcome to the talk." for i in range(MANY_LINES)]


# --- media, servers, runs -----------------------------------------------------------------


@pytest.fixture(scope="module")
def many_lines(tmp_path_factory, talk_factory) -> Talk:
    """Twenty-four short lines (~34 s, audio only): enough speech requests to hit a limit."""
    words = ["Hello there.", "Good morning.", "Thank you.", "Welcome back.", "Very good.",
             "Not now.", "Here we are.", "Look at this."]
    lines = [(words[i % len(words)], "") for i in range(MANY_LINES)]
    return talk_factory(tmp_path_factory.mktemp("many"), "many.mp4", lines, pause=0.7,
                        video=False)


def request_bodies(server: LoopbackServer, since: int = 0) -> list[dict[str, Any]]:
    """The JSON bodies of the chat and speech requests ``server`` received, in order."""
    return [r.body for r in server.requests[since:] if r.body is not None]


def run_job(server: LoopbackServer, media: Talk, run_dir: Path, *overrides: str) -> RunResult:
    """Dub ``media`` into Spanish in-process with all three stages on ``server``; runs of one
    test share the cache beside their run folders."""
    return dub([f"input={media.path}", "target_lang=es", f"cache_dir={run_dir.parent / 'cache'}",
                *openai_overrides(server), *overrides], run_dir)


def read_report(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "report.json").read_text(encoding="utf-8"))


def chat_batch_sizes(server: LoopbackServer) -> list[int]:
    """The number of lines in each chat request the server answered, in order of arrival."""
    records = sorted((r for r in server.requests if r.route == "chat"), key=lambda r: r.started)
    return [r.detail.get("lines") for r in records]


def assert_translated_once(segments: list[Segment], count: int) -> None:
    """Every line is there once, translated the way the loopback server translates it."""
    assert [s.id for s in segments] == list(range(count))
    for seg in segments:
        assert seg.target_text == translate(seg.source_text, seg.extra["max_chars"]), seg


def stage(name: str, **options: Any) -> Any:
    """An OpenAI stage object built from options, the way a job builds it."""
    impl = collect().get(name, "openai")
    return impl.create(impl.config(**options))


# --- 1. retries and backoff -----------------------------------------------------------------


@pytest.mark.parametrize("faults, counter, statuses", [
    (("500", "503"), "server_errors", {"500": 1, "503": 1, "200": 1}),
    (("timeout",), "timeouts", None),  # the stalled request ends only when the server stops
    (("malformed",), "server_errors", {"200": 2}),
    (("disconnect",), "server_errors", {"0": 1, "200": 1}),
])
def test_translation_survives_transient_failures(loopback, four_lines, tmp_path, faults, counter,
                                                 statuses):
    loopback.faults.push("chat", *faults)
    result = run_job(loopback, four_lines, tmp_path / "run", "translate.timeout_s=0.5")

    provider = result.report["providers"]["translate"]
    assert result.report["status"] == "ok"
    assert provider["retries"] == len(faults)
    assert provider[counter] == len(faults)
    assert provider["calls"] == len(faults) + 1
    assert provider["succeeded"] == 1
    if statuses is not None:
        assert loopback.stats()["chat"]["status"] == statuses
    assert_translated_once(result.segments, len(FOUR_LINES))


# --- 2. rate limits -------------------------------------------------------------------------


# Slow: the client has to wait for the server's per-minute allowance to come back.
@pytest.mark.slow
@pytest.mark.parametrize("rate_headers", [True, False], ids=["headers", "no-headers"])
def test_speech_rate_limit_storm_finishes_every_clip(server_factory, many_lines, tmp_path,
                                                     rate_headers):
    # Two lines more than the server takes in its first minute: the client has to wait.
    server = server_factory(rpm={"speech": MANY_LINES - 2}, rate_headers=rate_headers,
                            script=NUMBERED_SCRIPT)
    result = run_job(server, many_lines, tmp_path / "run")

    tts = result.report["providers"]["tts"]
    server_429 = server.stats()["speech"]["status"].get("429", 0)
    assert result.report["status"] == "ok"
    assert tts["rate_limited_429"] == server_429
    assert tts["limits"]["from_headers"] is rate_headers
    if not rate_headers:  # nothing tells the client the limit but the 429s themselves
        assert server_429 > 0
        assert tts["retries"] >= server_429
    assert tts["succeeded"] == MANY_LINES
    assert len(result.segments) == MANY_LINES
    for seg in result.segments:
        assert seg.audio_path and Path(seg.audio_path).is_file(), seg
        assert seg.synth_duration and seg.synth_duration > 0


@pytest.mark.slow  # paced by the configured requests per minute
def test_client_limit_below_the_servers_avoids_429s(server_factory, many_lines, tmp_path):
    # No x-ratelimit headers: only the configured limit keeps the client under the server's.
    server = server_factory(rpm={"speech": MANY_LINES - 1}, rate_headers=False,
                            script=NUMBERED_SCRIPT)
    result = run_job(server, many_lines, tmp_path / "run",
                     f"tts.requests_per_minute={MANY_LINES - 2}")

    tts = result.report["providers"]["tts"]
    assert result.report["status"] == "ok"
    assert tts["limiter_wait_s"] > 0
    assert tts["rate_limited_429"] == 0
    assert server.stats()["speech"]["status"] == {"200": MANY_LINES}
    assert tts["limits"]["requests_per_minute"] == MANY_LINES - 2


# --- 3. batch repair --------------------------------------------------------------------------


@pytest.mark.parametrize("fault, batches", [
    ("missing_id", [4, 1]),  # the missing line is asked again on its own
    ("dup_id", [4, 1]),  # a repeated id counts as neither answer
    ("truncated", [4, 2, 2]),  # an answer that cannot be used is split in half
    ("bad_json_content", [4, 2, 2]),
])
def test_broken_batches_are_repaired(loopback, four_lines, tmp_path, fault, batches):
    loopback.faults.push("chat", fault)
    result = run_job(loopback, four_lines, tmp_path / "run")

    assert result.report["status"] == "ok"
    assert chat_batch_sizes(loopback) == batches
    assert_translated_once(result.segments, len(FOUR_LINES))
    notes = result.report["providers"]["translate"]["notes"]
    assert len(notes) == 1 and notes[0].startswith("batch of 4 repaired"), notes


def test_a_line_that_keeps_failing_stops_the_job(loopback, four_lines, tmp_path):
    loopback.faults.push("chat", *["missing_id"] * 10)
    run_dir = tmp_path / "run"
    with pytest.raises(VideodubError, match=r"no usable translation for line \d+ .* in 2 attempts"):
        run_job(loopback, four_lines, run_dir, "translate.repair_attempts=2")

    assert chat_batch_sizes(loopback) == [4, 1]
    report = read_report(run_dir)
    assert report["status"] == "failed"
    assert "no usable translation" in report["error"]
    assert not list(run_dir.glob("*.es.*"))  # no subtitles or video with a line left out


# --- 4. one speech request and its limits ---------------------------------------------------


def speech_records(server: LoopbackServer) -> list[Any]:
    return [r for r in server.requests if r.route == "speech" and r.status == 200]


def tts_segment(text: str, rate: float = 1.0) -> Segment:
    return Segment(id=7, start=0.0, end=10.0, source_text=text, target_text=text,
                   slot_start=0.0, slot_end=10.0, tts_rate=rate, max_speed=1.5)


def test_a_line_over_4096_characters_is_split_into_requests(loopback, tmp_path):
    text = ("This sentence is about forty characters. " * 120).strip()
    assert len(text) > MAX_INPUT_CHARS
    synth = stage("tts", base_url=loopback.base_url, api_key_env=TEST_KEY_ENV)
    # Rate 4: the loopback voice is four times shorter, which keeps the clip small.
    seg = synth.synthesize(tts_segment(text, rate=4.0), JobContext(tmp_path, "es", "en"))

    records = speech_records(loopback)
    assert len(records) == seg.extra["tts_requests"] >= 2
    assert all(r.detail["chars"] <= MAX_INPUT_CHARS for r in records)
    assert sum(r.detail["chars"] for r in records) == len(text) - (len(records) - 1)
    assert all(r.detail["speed"] == 4.0 for r in records)
    assert "tts_speed_clamped" not in seg.flags
    parts_s = sum(r.detail["audio_s"] for r in records)
    clip_s = soundfile.info(seg.audio_path).duration
    assert clip_s == pytest.approx(seg.synth_duration, abs=1e-3)
    assert clip_s == pytest.approx(parts_s, rel=0.01)


def test_speed_beyond_the_api_range_is_clamped_and_flagged(loopback, tmp_path):
    synth = stage("tts", base_url=loopback.base_url, api_key_env=TEST_KEY_ENV)
    ctx = JobContext(tmp_path, "es", "en")
    fast = synth.synthesize(tts_segment("Hola a todos.", rate=5.0), ctx)
    normal = synth.synthesize(tts_segment("Hola a todos.", rate=1.5), ctx)

    assert [r.detail["speed"] for r in speech_records(loopback)] == [4.0, 1.5]
    assert "tts_speed_clamped" in fast.flags
    assert "tts_speed_clamped" not in normal.flags
    assert fast.synth_duration < normal.synth_duration


@pytest.mark.parametrize("model, sent", [("tts-1", False), ("tts-1-hd", False),
                                         ("gpt-4o-mini-tts", True)])
def test_instructions_go_only_to_models_that_take_them(loopback, tmp_path, model, sent):
    synth = stage("tts", base_url=loopback.base_url, api_key_env=TEST_KEY_ENV, model=model,
                  instructions="calm, warm narrator")
    seg = synth.synthesize(tts_segment("Hola a todos."), JobContext(tmp_path, "es", "en"))

    assert Path(seg.audio_path).is_file()
    bodies = request_bodies(loopback)
    assert [b.get("model") for b in bodies] == [model]
    assert ("instructions" in bodies[0]) is sent
    if sent:
        assert bodies[0]["instructions"] == "calm, warm narrator"


# --- 5. concurrency --------------------------------------------------------------------------


def test_speech_concurrency_follows_max_in_flight(server_factory, many_lines, tmp_path):
    server = server_factory(latency={"speech": 0.1}, script=NUMBERED_SCRIPT)
    result = run_job(server, many_lines, tmp_path / "run", "tts.max_in_flight=3")

    peak = server.stats()["speech"]["max_in_flight"]
    assert 1 < peak <= 3
    assert result.report["stages"]["tts"]["workers"] == 3
    assert result.report["providers"]["tts"]["max_in_flight"] <= 3
    assert server.stats()["speech"]["requests"] == MANY_LINES


# --- 6. the translation cache ---------------------------------------------------------------


class FailAfter(Faults):
    """Lets the first ``ok`` chat requests through, then answers every later one with ``kind``."""

    def __init__(self, ok: int, kind: str) -> None:
        super().__init__()
        self.ok, self.kind = ok, kind
        self.seen = 0
        self._count_lock = threading.Lock()

    def take(self, route: str) -> str | None:
        if route != "chat":
            return super().take(route)
        with self._count_lock:
            self.seen += 1
            return None if self.seen <= self.ok else self.kind


def test_a_repeated_job_sends_no_chat_requests(loopback, four_lines, tmp_path):
    first = run_job(loopback, four_lines, tmp_path / "first")
    assert loopback.stats()["chat"]["requests"] == 1
    loopback.reset()
    second = run_job(loopback, four_lines, tmp_path / "second")

    assert loopback.stats()["chat"]["requests"] == 0
    assert second.report["providers"]["translate"]["calls"] == 0
    assert [s.target_text for s in second.segments] == [s.target_text for s in first.segments]


def test_an_interrupted_job_resends_only_the_missing_batches(loopback, four_lines, tmp_path):
    # One batch at a time, so the first request is batch 1 and the second is batch 2.
    options = ["translate.batch_size=2", "translate.max_in_flight=1"]
    loopback.faults = FailAfter(ok=1, kind="400")
    with pytest.raises(VideodubError, match="translate: .* refused translating 2 lines \\(400"):
        run_job(loopback, four_lines, tmp_path / "failed", *options)
    assert loopback.stats()["chat"]["status"] == {"200": 1, "400": 1}

    loopback.faults = Faults()
    loopback.reset()
    result = run_job(loopback, four_lines, tmp_path / "rerun", *options)

    assert loopback.stats()["chat"]["requests"] == 1
    assert_translated_once(result.segments, len(FOUR_LINES))
    (resent,) = [json.loads(b["messages"][-1]["content"])
                 for b in request_bodies(loopback) if "messages" in b]
    assert [line["id"] for line in resent["lines"]] == [2, 3]
    # The cached batch still gives the resent one its context.
    assert resent["context"] == [s.source_text for s in result.segments[:2]]


# --- 7. what a translation request carries ---------------------------------------------------


def test_glossary_style_context_and_budgets_reach_the_request(loopback, four_lines, tmp_path):
    result = run_job(loopback, four_lines, tmp_path / "run", "translate.batch_size=2",
                     "translate.max_in_flight=1", "translate.context_lines=1",
                     "+translate.glossary={talk:conferencia}",
                     "translate.style='informal, for teenagers'")

    chats = [b for b in request_bodies(loopback) if "messages" in b]
    assert len(chats) == 2
    segments = result.segments
    for number, body in enumerate(chats):
        system, user = body["messages"][0]["content"], json.loads(body["messages"][-1]["content"])
        assert "Style: informal, for teenagers" in system
        assert "talk -> conferencia" in system
        batch = segments[2 * number:2 * number + 2]
        assert user["lines"] == [{"id": s.id, "text": s.source_text,
                                  "max_chars": s.extra["max_chars"]} for s in batch]
        assert user["context"] == [s.source_text for s in segments[2 * number - 1:2 * number]]
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["strict"] is True
    # The budget is honoured: the loopback drops trailing words to fit it.
    assert all(len(s.target_text) <= s.extra["max_chars"] for s in segments)
    assert any(s.target_text != translate(s.source_text) for s in segments)
