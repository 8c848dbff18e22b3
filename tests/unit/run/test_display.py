"""The progress display: which display each mode gets, the plain display's stage lines,
progress lines and summary, the quiet one's silence, and the provider counters in each."""

from __future__ import annotations

import io
import sys
import time

from rich.console import Console

from videodub.providers.usage import ProviderStats
from videodub.run.display import (
    Display,
    PlainDisplay,
    RichDisplay,
    StageEventsDisplay,
    make_display,
    provider_line,
)
from videodub.run.stats import ProcessMonitor, StageStats

DEADLOCK_BREAKER = 10.0  # seconds; only reached when the display never prints


def stages() -> list[StageStats]:
    return [StageStats("ingest", impl="local", workers=1,
                       worker_reason="implementation limit 1 (one file)"),
            StageStats("tts", impl="espeak", total=10, workers=2, worker_reason="cpu: 2 usable")]


def wait_for(out: io.StringIO, text: str) -> None:
    deadline = time.monotonic() + DEADLOCK_BREAKER
    while text not in out.getvalue():
        assert time.monotonic() < deadline, f"{text!r} never shown: {out.getvalue()!r}"
        time.sleep(0.02)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# -- choosing a display ----------------------------------------------------------------

def test_make_display_picks_the_display_for_the_mode(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    st = stages()
    monitor = ProcessMonitor(st)

    def kind(mode: str, minimal: bool = False) -> type:
        return type(make_display(mode, st, monitor, minimal=minimal))

    assert kind("quiet") is Display
    assert kind("plain") is PlainDisplay
    assert kind("plain", minimal=True) is StageEventsDisplay
    assert kind("rich") is RichDisplay
    assert kind("auto") is PlainDisplay  # stderr is not a terminal
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert kind("auto") is RichDisplay
    assert make_display("plain", st, monitor).stream is sys.stderr


# -- plain and quiet -------------------------------------------------------------------

def test_plain_display_prints_each_stage_start_and_end_once():
    st = stages()
    ingest, tts = st
    out = io.StringIO()
    display = PlainDisplay(st, ProcessMonitor(st), out, every=3600)
    display.start()
    ingest.begin()
    wait_for(out, "[ingest] started")
    ingest.advance()
    ingest.finish()
    tts.cached = True
    tts.begin()
    tts.advance(10, items=10)
    tts.finish()
    display.stop()
    lines = out.getvalue().splitlines()
    assert lines[0] == "[ingest] started (local, 1 workers: implementation limit 1 (one file))"
    assert [ln.split(" in ")[0] for ln in lines[1:]] == [
        "[ingest] done 1/1", "[tts] started (espeak, 2 workers: cpu: 2 usable)",
        "[tts] done 10/10"]
    assert lines[3].endswith("s (cached)")
    assert len(lines) == 4  # stopping again prints nothing new
    display._events()
    assert out.getvalue().splitlines() == lines


def test_plain_display_shows_seconds_of_media_for_a_stage_counted_in_seconds():
    stage = StageStats("transcribe", impl="faster_whisper", unit="s", total=30.4)
    out = io.StringIO()
    display = PlainDisplay([stage], ProcessMonitor([stage]), out, every=3600)
    display.start()
    stage.begin()
    stage.advance(12.2)
    stage.finish()
    display.stop()
    assert "[transcribe] done 12/30 s in " in out.getvalue()


def test_plain_display_prints_progress_with_the_providers_that_were_called():
    tts = StageStats("tts", impl="openai", total=10, done=3)
    idle = ProviderStats("translate", "gpt-4o-mini", "http://127.0.0.1:9/v1")
    called = ProviderStats("tts", "tts-1", "http://127.0.0.1:9/v1")
    called.calls = 3
    out = io.StringIO()
    display = PlainDisplay([tts], ProcessMonitor([tts]), out, [idle, called], every=0)
    tts.begin()
    display.start()
    wait_for(out, "progress: ")
    display.stop()
    text = out.getvalue()
    progress = next(ln for ln in text.splitlines() if ln.startswith("progress: "))
    assert progress.startswith("progress: tts 3/10 | cpu ")
    assert f"  {provider_line(called)}" in text.splitlines()
    assert "gpt-4o-mini" not in text


def test_stage_events_display_prints_no_progress_lines():
    tts = StageStats("tts", impl="espeak", total=10, done=3)
    out = io.StringIO()
    display = StageEventsDisplay([tts], ProcessMonitor([tts]), out, every=0)
    tts.begin()
    display.start()
    # Printed by the display's own thread, which prints any progress in the same pass.
    wait_for(out, "[tts] started")
    display.stop()
    assert "progress" not in out.getvalue()


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("│").split("│")]
            for line in text.splitlines() if line.startswith("│")]


def test_plain_summary_is_a_table_of_the_stages_and_then_the_providers():
    ingest, tts = st = stages()
    ingest.advance(1)
    ingest.cpu_s, ingest.peak_rss = 1.234, 300 * 2**20
    tts.cached = True
    out = io.StringIO()
    PlainDisplay(st, ProcessMonitor(st), out).summary()
    assert out.getvalue().startswith("videodub stages")
    assert "providers" not in out.getvalue()
    assert table_rows(out.getvalue()) == [
        ["ingest", "local", "1", "0.00", "1.23", "1", "300"],
        ["tts", "espeak (cached)", "0", "0.00", "0.00", "2", "0"]]
    # An endpoint as long as a real one is shown whole (at 100 columns it was cut).
    endpoint = "https://my-resource.openai.azure.com/openai/v1"
    provider = ProviderStats("tts", "gpt-4o-mini-tts", endpoint)
    provider.calls, provider.limiter_wait_s = 4, 2.5
    out = io.StringIO()
    PlainDisplay(st, ProcessMonitor(st), out, [provider]).summary()
    assert table_rows(out.getvalue())[2:] == [
        ["tts", "gpt-4o-mini-tts", endpoint, "4", "0 (max 0)", "0", "0", "2.5"]]


def test_quiet_display_prints_nothing():
    st = stages()
    out = io.StringIO()
    display = Display(st, ProcessMonitor(st), out,
                      [ProviderStats("tts", "tts-1", "http://127.0.0.1:9/v1")])
    display.start()
    for stage in st:
        stage.begin()
        stage.advance()
        stage.finish()
    display.stop()
    display.summary()
    assert out.getvalue() == ""


# -- providers -------------------------------------------------------------------------

def test_displays_show_calls_in_flight_retries_and_429s_per_provider():
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
