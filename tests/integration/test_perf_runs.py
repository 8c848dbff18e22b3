"""The run history with real runs of the offline stack: observer hooks around a job, a
record per run (failed ones too) and a ``perf`` section in report.json, a history that
cannot be written never fails a dub, and ten runs then a slowed-down tts give a regression
for tts and for nothing else."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import time

import pytest

import videodub
from videodub.api import dub
from videodub.errors import VideodubError
from videodub.perf.cli import main as perf_main
from videodub.perf.history import ENV_VAR, History
from videodub.perf.record import QUALITY_DIRECTION, overflow_lines
from videodub.plugins import collect, make_plugin_manager, get_plugin_manager
from videodub.testing import registry_with

# Every test here runs at least one real dub (5-10 s on 2 shared cores).
pytestmark = pytest.mark.slow


def job(talk, *extra):
    return [f"input={talk.path}", "target_lang=es", "translate=subtitles",
            f"translate.file={talk.translation_srt}", "cache=false", *extra]


class Observer:
    """A plugin that exports nothing, but records what the observer hooks told it."""

    def __init__(self):
        self.events = []

    @videodub.hookimpl
    def job_started(self, job, run_dir):
        self.events.append(("job_started", run_dir.name))

    @videodub.hookimpl
    def stage_finished(self, job, stage, stats):
        self.events.append(("stage_finished", stage, stats["items"]))

    @videodub.hookimpl
    def job_finished(self, job, run_dir, report):
        self.events.append(("job_finished", report["status"]))


def test_observer_hooks_see_the_job_and_the_history_records_it(short_talk, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "h.sqlite"))
    observer = Observer()
    result = dub(job(short_talk), tmp_path / "run", registry_with([observer]))
    names = [e[0] for e in observer.events]
    assert names[0] == "job_started" and names[-1] == "job_finished"
    assert sorted(e[1] for e in observer.events if e[0] == "stage_finished") == sorted(
        ["ingest", "transcribe", "translate", "align", "tts", "mix", "mux"])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["perf"]["history"] == str(tmp_path / "h.sqlite")
    assert 0 <= report["perf"]["health"]["score"] <= 100
    assert report == result.report
    with History(tmp_path / "h.sqlite") as hist:
        [rec] = hist.runs()
    assert rec.status == "ok" and rec.segments == 2 and rec.media_s > 5
    assert {s.stage for s in rec.stages} >= {"transcribe", "tts", "mix"}
    assert rec.machine["usable_cpus"] >= 1 and rec.machine_class
    assert rec.peak_rss_mb > 50 and rec.timeline
    # Every figure of the run's own quality section has a declared direction: a name the
    # baselines would only guess at (and might read the wrong way round) fails here.
    undeclared = [k for k in rec.quality
                  if not any(k == d or k.startswith(d + ".") for d in QUALITY_DIRECTION)]
    assert rec.quality and not undeclared, undeclared
    assert overflow_lines(rec.quality) == report["quality"]["overflow"]["lines"]


def test_a_failed_run_is_recorded_too(short_talk, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "h.sqlite"))
    (tmp_path / "not-a-video.mp4").write_text("plain text, not media")
    with pytest.raises(VideodubError):
        dub([f"input={tmp_path / 'not-a-video.mp4'}", "target_lang=es", "translate=none",
             "cache=false"], tmp_path / "run")
    with History(tmp_path / "h.sqlite") as hist:
        [rec] = hist.runs()
    assert rec.status == "failed" and rec.error


def test_a_cancelled_run_is_recorded_too(short_talk, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "h.sqlite"))
    with pytest.raises(KeyboardInterrupt):
        dub(job(short_talk), tmp_path / "run", SlowTTS(0.0, interrupt=True).registry())
    with History(tmp_path / "h.sqlite") as hist:
        [rec] = hist.runs()
    assert rec.status == "cancelled"
    assert json.loads((tmp_path / "run" / "report.json").read_text())["status"] == "cancelled"


def test_a_broken_history_never_fails_the_dub(short_talk, tmp_path, monkeypatch, caplog):
    bad = tmp_path / "h.sqlite"
    bad.write_bytes(b"definitely not sqlite" * 200)
    monkeypatch.setenv(ENV_VAR, str(bad))
    result = dub(job(short_talk), tmp_path / "run")
    assert result.video.exists() and "perf" not in result.report
    assert "not a readable SQLite database" in caplog.text
    assert bad.read_bytes().startswith(b"definitely not sqlite")  # left as it was


def test_a_locked_history_never_fails_the_dub(short_talk, tmp_path, monkeypatch, caplog):
    import videodub.perf.history as history

    path = tmp_path / "h.sqlite"
    History(path).close()
    monkeypatch.setattr(history, "BUSY_TIMEOUT_S", 0.3)
    monkeypatch.setenv(ENV_VAR, str(path))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = dub(job(short_talk), tmp_path / "run")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.video.exists()
    assert "locked" in caplog.text


def test_history_off(short_talk, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "off")
    result = dub(job(short_talk), tmp_path / "run")
    assert "perf" not in result.report
    assert not list(tmp_path.rglob("*.sqlite"))


class SlowTTS:
    """The installed espeak, registered under its own name, sleeping before every clip:
    a slowdown injected into one stage (or, with ``interrupt``, pressing Ctrl-C instead)."""

    def __init__(self, delay: float, interrupt: bool = False):
        self.delay = delay
        self.interrupt = interrupt

    def registry(self):
        registry = collect(get_plugin_manager())
        espeak = registry.by_stage["tts"]["espeak"]
        delay, interrupt = self.delay, self.interrupt

        def factory(options):
            inner = espeak.factory(options)

            class Slow:
                def __getattr__(self, name):
                    return getattr(inner, name)

                def worker_hint(self):
                    return inner.worker_hint()

                def synthesize(self, segment, ctx):
                    if interrupt:
                        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, to the main thread
                        ctx.cancel_event.wait(30)
                    time.sleep(delay)
                    return inner.synthesize(segment, ctx)

            return Slow()

        registry.by_stage["tts"]["espeak"] = dataclasses.replace(espeak, factory=factory)
        return registry


@pytest.mark.slow
def test_ten_runs_then_a_slow_tts_is_a_tts_regression_only(short_talk, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "h.sqlite"))
    for i in range(10):
        report = dub(job(short_talk), tmp_path / f"run{i}").report
        assert report["status"] == "ok"
    slow = dub(job(short_talk), tmp_path / "slow", SlowTTS(1.0).registry()).report
    regressions = slow["perf"]["regressions"]
    stage_regs = {r["metric"]: r["severity"] for r in regressions
                  if r["metric"].endswith("wall_per_min") and r["metric"].startswith("stage.")}
    assert stage_regs.get("stage.tts.wall_per_min") in ("HIGH", "CRITICAL"), regressions
    assert set(stage_regs) == {"stage.tts.wall_per_min"}, regressions
    # Nothing else is serious (memory of a process that ran ten jobs may drift a little).
    assert all(r["severity"] in ("LOW", "MEDIUM") for r in regressions
               if not r["metric"].startswith("stage.tts.")
               and r["metric"] != "job.wall_per_min"), regressions
    assert any("tts" in line for line in slow["perf"]["summary"])
    with History(tmp_path / "h.sqlite") as hist:
        last = hist.runs()[-1]
    assert last.regressions == regressions
    # The gate on the last run fails on it.
    assert perf_main(["check", "--history", str(tmp_path / "h.sqlite")]) == 1
