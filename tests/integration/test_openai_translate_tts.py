"""translate=openai and tts=openai, and the transport under them, against the loopback server.

Hosted APIs fail in ways a happy-path test never sees: 5xx answers, stalls, dropped
connections, bodies that are not JSON, 429 storms, and chat answers with an id missing,
repeated or cut off. The loopback server produces each of those on demand, so these tests
run whole dub jobs in this process (or a stage on its own) through the real ``openai`` SDK
over 127.0.0.1 and check what the job made of them: the report's provider counters, the
translated lines, the clips, and what the server itself saw (``stats()``, ``requests``). A
429's ``Retry-After`` holds every request to the endpoint, checked on the server's clock from
one side only (nothing arrives early). What the command line prints for the same failures is
in ``e2e/test_openai.py``.

Where a request's body matters (the glossary, style, context and ``max_chars`` a
translation request carries; TTS ``instructions``), ``request_bodies(server)`` reads the JSON
bodies the server recorded. Media is synthesized once: short espeak talks whose voiced
regions become the segments the loopback transcriber labels with its script.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import soundfile
from conftest import FOUR_LINES, TEST_KEY_ENV, Talk, openai_overrides
from helpers_loopback import Crowd

from videodub.api import dub
from videodub.builtin.tts_openai import MAX_INPUT_CHARS
from videodub.errors import VideodubError
from videodub.testing.loopback import DEFAULT_MODELS, Faults, LoopbackServer, translate
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


class RateLimitedCrowd(Faults):
    """On ``route``: once ``crowd`` requests are in flight together, the first of them is
    answered with a 429 and the others ``hold_s`` after it, so their workers are free again
    while the endpoint must still be paused. Later requests pass. Everything here waits for
    an event (the crowd, the 429); ``DEADLOCK_BREAKER_S`` is reached only by a broken client.
    """

    DEADLOCK_BREAKER_S = 20.0

    def __init__(self, route: str, crowd: int, hold_s: float) -> None:
        super().__init__()
        self.route, self.crowd, self.hold_s = route, crowd, hold_s
        self.arrived = 0
        self.formed = False  # the crowd was in flight at once
        self.limited_at: float | None = None
        self._changed = threading.Condition()

    def take(self, route: str) -> str | None:
        if route != self.route:
            return super().take(route)
        with self._changed:
            if self.limited_at is not None and self.arrived >= self.crowd:
                return None
            self.arrived += 1
            self._changed.notify_all()
            if self.arrived == 1:
                self.formed = self._changed.wait_for(lambda: self.arrived >= self.crowd,
                                                     self.DEADLOCK_BREAKER_S)
                self.limited_at = time.monotonic()
                self._changed.notify_all()
                return "429"
            self._changed.wait_for(lambda: self.limited_at is not None,
                                   self.DEADLOCK_BREAKER_S)
            release = (self.limited_at or time.monotonic()) + self.hold_s
        time.sleep(max(0.0, release - time.monotonic()))
        return None


@pytest.mark.slow  # waits out the Retry-After
def test_a_429_pauses_the_whole_endpoint_for_its_retry_after(server_factory, many_lines,
                                                              tmp_path):
    # Longer than the 1 s pause of a 429 that says nothing, so that pause would not pass.
    retry_after = 1.4
    server = server_factory(retry_after_s=retry_after, script=NUMBERED_SCRIPT)
    crowd = server.faults = RateLimitedCrowd("speech", crowd=3, hold_s=0.2)
    result = run_job(server, many_lines, tmp_path / "run", "tts.max_in_flight=3")

    assert result.report["status"] == "ok"
    assert result.report["providers"]["tts"]["rate_limited_429"] == 1
    assert crowd.formed, "three speech requests were never in flight at once"
    # Both ends on the server's clock: the 429 left the server at ``limited.finished``, so the
    # client cannot have started its pause before then.
    speech = [r for r in server.requests if r.route == "speech"]
    (limited,) = [r for r in speech if r.status == 429]
    resume = limited.finished + retry_after
    # The rest of the crowd was answered during the pause: those workers had lines to send.
    others = [r for r in speech if r.status == 200 and r.started < limited.finished]
    assert len(others) == 2
    assert min(r.finished for r in others) < resume
    after = sorted(r.started - limited.finished for r in speech if r.started > limited.finished)
    assert len(after) == MANY_LINES - 2  # the refused line again, and every line not yet sent
    early = [round(s, 3) for s in after if s < retry_after - 0.01]
    assert not early, f"requests arrived {early} s after a 429 that asked for {retry_after} s"


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


@pytest.mark.parametrize("overrides, model", [
    (["tts.effort=high"], "tts-1-hd"), (["profile=quality"], "tts-1-hd"),
    (["tts.effort=medium"], "tts-1"), (["tts.effort=low"], "tts-1"), (["profile=speed"], "tts-1"),
])
def test_tts_model_auto_follows_the_effort(loopback, four_lines, tmp_path, overrides, model):
    """`tts.model=auto` (the default) asks the server for tts-1-hd at `tts.effort=high`
    (which the quality profile sets) and for tts-1 at any other effort."""
    result = run_job(loopback, four_lines, tmp_path / "run", *overrides)

    speech = [r for r in loopback.requests if r.route == "speech"]
    assert len(speech) == len(FOUR_LINES)
    assert {r.model for r in speech} == {r.body["model"] for r in speech} == {model}
    checked = {r.model for r in loopback.requests if r.route == "models"}
    assert model in checked and ({"tts-1", "tts-1-hd"} - {model}).isdisjoint(checked)
    assert result.report["providers"]["tts"]["model"] == model


# --- 5. concurrency --------------------------------------------------------------------------


def test_speech_concurrency_follows_max_in_flight(server_factory, many_lines, tmp_path):
    server = server_factory(latency={"speech": 0.1}, script=NUMBERED_SCRIPT)
    # The first three speech requests are held until all three are in flight.
    server.faults = Crowd("speech", 3)
    result = run_job(server, many_lines, tmp_path / "run", "tts.max_in_flight=3")

    assert server.stats()["speech"]["max_in_flight"] == 3
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


# Options that change how a result is fetched, not what it is: a run with these set
# differently must be answered from the cache.
TRANSPORT_CHANGES = [f"{stage}.{option}" for stage in ("transcribe", "translate", "tts")
                     for option in ("timeout_s=33", "max_retries=1", "max_in_flight=3",
                                    "retry_base_s=0.05", "retry_max_s=0.5",
                                    "requests_per_minute=900", "tokens_per_minute=900000",
                                    "preflight=false", "api_key_env=VIDEODUB_TEST_OTHER_KEY")]


@pytest.mark.slow  # six jobs
def test_transport_options_reuse_the_cache_and_result_options_do_not(loopback, four_lines,
                                                                     tmp_path, monkeypatch):
    """A second run that only changes timeouts, retries, limits, `max_in_flight`, the
    preflight or the key's variable pays for nothing: no transcription, chat or speech
    request. A changed model or glossary is a different result, and is asked for again."""
    monkeypatch.setenv("VIDEODUB_TEST_OTHER_KEY", os.environ[TEST_KEY_ENV])
    first = run_job(loopback, four_lines, tmp_path / "first")
    paid = ("transcriptions", "chat", "speech")
    assert all(loopback.stats()[route]["requests"] > 0 for route in paid)

    def requests_of(name: str, *overrides: str) -> dict[str, int]:
        loopback.reset()
        result = run_job(loopback, four_lines, tmp_path / name, *overrides)
        assert result.report["status"] == "ok"
        return {route: loopback.stats()[route]["requests"] for route in paid}

    assert requests_of("transport", *TRANSPORT_CHANGES) == dict.fromkeys(paid, 0)
    assert requests_of("translate_model", "translate.model=gpt-4.1-mini")["chat"] > 0
    assert requests_of("glossary", "+translate.glossary={talk:conferencia}")["chat"] > 0
    assert requests_of("tts_model", "tts.model=tts-1-hd")["speech"] == len(first.segments)
    assert requests_of("transcribe_prompt", "transcribe.prompt=A talk.")["transcriptions"] > 0


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


# --- 8. prices ---------------------------------------------------------------------------------


def test_a_model_without_a_price_row_is_unpriced_until_prices_adds_one(server_factory,
                                                                       four_lines, tmp_path):
    """A model the price table does not know costs `null` for its provider and nothing in
    the job's `cost_usd`; `'+prices={model:{...}}'` prices it from the tokens the server
    reported."""
    server = server_factory(models=[*DEFAULT_MODELS, "my-model"])
    unpriced = run_job(server, four_lines, tmp_path / "unpriced", "translate.model=my-model")

    providers = unpriced.report["providers"]
    assert providers["translate"]["model"] == "my-model"
    assert providers["translate"]["tokens_in"] > 0 and providers["translate"]["cost_usd"] is None
    assert providers["transcribe"]["cost_usd"] > 0 and providers["tts"]["cost_usd"] > 0
    assert unpriced.report["cost_usd"] == pytest.approx(
        providers["transcribe"]["cost_usd"] + providers["tts"]["cost_usd"], abs=1e-6)
    assert unpriced.report["estimate"]["stages"]["translate"]["usd"] is None

    server.reset()
    priced = run_job(server, four_lines, tmp_path / "priced", "translate.model=my-model",
                     "cache=false",
                     "+prices={my-model:{input_per_1m_tokens:1.0,output_per_1m_tokens:4.0}}")

    chat = server.stats()["chat"]
    translate_ = priced.report["providers"]["translate"]
    assert (translate_["tokens_in"], translate_["tokens_out"]) == (chat["tokens_in"],
                                                                   chat["tokens_out"])
    assert chat["tokens_in"] > 0 and chat["tokens_out"] > 0
    expected = (chat["tokens_in"] * 1.0 + chat["tokens_out"] * 4.0) / 1e6
    assert translate_["cost_usd"] == pytest.approx(expected, abs=1e-9)
    assert priced.report["cost_usd"] == pytest.approx(
        sum(p["cost_usd"] for p in priced.report["providers"].values()), abs=1e-6)
    assert priced.report["estimate"]["stages"]["translate"]["usd"] > 0
