"""``python -m videodub perf ...`` in subprocesses: plan and advise without a job, the gate on
the last run, the dashboard file and server, and bad history databases as one line."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from unit.perf.records import make_record

from videodub.perf.history import SCHEMA_VERSION, History
from videodub.perf.record import ProviderFigures


def perf(*args: str, history: Path | None = None, cwd: Path | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if history is not None:
        env["VIDEODUB_HISTORY"] = str(history)
    return subprocess.run([sys.executable, "-m", "videodub", "perf", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def build_history(path: Path, last_regressions: list[dict] | None = None) -> Path:
    """Twelve runs with providers and a timeline; the last one carries ``last_regressions``."""
    with History(path) as hist:
        for i in range(12):
            p = ProviderFigures("translate", "gpt-x", 10, 120.0 + i, 300.0 + i, 1, 2 if i == 11
                                else 0, 0, 0, 900, 0.001, 2.0)
            last = i == 11
            hist.append(make_record(i, {"transcribe": 4.0, "tts": 2.0 + (3 if last else 0),
                                        "mix": 1.0}, providers=[p]),
                        last_regressions if last else [], 90.0)
    return path


def test_plan_prints_without_a_job():
    run = perf("plan")
    assert run.returncode == 0, run.stderr
    for stage in ("ingest", "transcribe", "translate", "align", "tts", "mix", "mux"):
        assert f"  {stage} " in run.stdout
    assert "usable CPUs" in run.stdout and "headroom" in run.stdout
    assert "implementation limit 1" in run.stdout  # the limit that set espeak's pool


def test_plan_follows_the_job_it_is_given():
    run = perf("plan", "--json", "profile=speed", "runner.max_workers=1")
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)
    assert plan["profile"] == "speed"
    assert all(s["workers"] == 1 for s in plan["stages"])
    assert plan["machine"]["usable_cpus"] >= 1 and plan["memory_headroom_mb"] > 0


def test_plan_checks_what_a_stage_can_check_when_created(tmp_path):
    run = perf("plan", "translate=subtitles", f"translate.file={tmp_path / 'x.srt'}")
    assert run.returncode == 2 and run.stderr.startswith("error: subtitle file not found")


def test_plan_with_a_bad_key_is_one_line():
    run = perf("plan", "tts.nope=1")
    assert run.returncode == 2 and run.stderr.startswith("error: ") and "Traceback" not in run.stderr


def test_advise_without_any_history_says_so(tmp_path):
    run = perf("advise", history=tmp_path / "none.sqlite")
    assert run.returncode == 0, run.stderr
    assert "no run history at" in run.stdout and "no recommendations" in run.stdout
    assert not (tmp_path / "none.sqlite").exists()  # reading never creates one


def test_advise_ranks_what_the_history_shows(tmp_path):
    run = perf("advise", history=build_history(tmp_path / "h.sqlite"))
    assert run.returncode == 0, run.stderr
    assert "1. translate waited on 2 rate-limit answers (429)" in run.stdout
    assert "change: translate.max_in_flight=" in run.stdout
    assert "health " in run.stdout


def test_check_fails_on_a_critical_regression_of_the_last_run(tmp_path):
    reg = {"metric": "stage.tts.wall_per_min", "impl": "espeak", "severity": "CRITICAL",
           "change": 1.5, "value": 5.0, "baseline": 2.0, "bound": 2.2, "n": 11}
    run = perf("check", history=build_history(tmp_path / "h.sqlite", [reg]))
    assert run.returncode == 1
    assert "CRITICAL regression: stage.tts.wall_per_min" in run.stdout
    assert "perf check failed: 1 CRITICAL regressions" in run.stderr
    # The gate's limits are options.
    assert perf("check", "--max-critical", "1", "--min-health", "0",
                history=tmp_path / "h.sqlite").returncode == 0


def test_check_passes_a_clean_history_and_an_empty_one(tmp_path):
    assert perf("check", history=build_history(tmp_path / "h.sqlite")).returncode == 0
    empty = perf("check", history=tmp_path / "none.sqlite")
    assert empty.returncode == 0 and "no run history" in empty.stdout


@pytest.mark.parametrize("command", [["advise"], ["check"], ["dashboard"], ["runs"],
                                     ["baseline", "update"]])
def test_a_corrupt_history_is_one_error_line(tmp_path, command):
    bad = tmp_path / "h.sqlite"
    bad.write_bytes(b"\x00garbage" * 500)
    run = perf(*command, history=bad, cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith("error: ") and len(run.stderr.strip().splitlines()) == 1
    assert "not a readable SQLite database" in run.stderr


def test_history_switched_off_is_one_error_line(tmp_path):
    env = dict(os.environ, VIDEODUB_HISTORY="off")
    run = subprocess.run([sys.executable, "-m", "videodub", "perf", "advise"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr == "error: the run history is off (VIDEODUB_HISTORY); name one with --history\n"


def test_a_future_history_is_one_error_line(tmp_path):
    path = tmp_path / "h.sqlite"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    run = perf("advise", history=path)
    assert run.returncode == 2 and "newer than this videodub" in run.stderr
    assert "Traceback" not in run.stderr


def test_baseline_update_and_show(tmp_path):
    run = perf("baseline", "update", history=build_history(tmp_path / "h.sqlite"))
    assert run.returncode == 0, run.stderr
    assert "baselines updated from 12 runs" in run.stdout
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("stage.tts.wall_per_min"))
    assert "n=12" in line


def test_dashboard_file_is_self_contained(tmp_path):
    out = tmp_path / "d" / "dash.html"
    run = perf("dashboard", "--out", str(out), history=build_history(tmp_path / "h.sqlite"))
    assert run.returncode == 0, run.stderr
    page = out.read_text(encoding="utf-8")
    assert "plotly" in page.lower() and len(page) > 1_000_000  # plotly.js is inside
    assert 'src="http' not in page and "cdn." not in page.split("<body>", 1)[0]
    for plot in ("health", "trends", "breakdown", "resources", "providers"):
        assert f"id='plot-{plot}'" in page
    assert not list(out.parent.glob(".*part*"))


def test_dashboard_of_an_empty_history_says_so(tmp_path):
    out = tmp_path / "dash.html"
    run = perf("dashboard", "--out", str(out), history=tmp_path / "none.sqlite")
    assert run.returncode == 0, run.stderr
    page = out.read_text(encoding="utf-8")
    assert "no run history at" in page and "id='plot-health'" in page
    assert "id='plot-trends'" not in page


def test_dashboard_serves_the_page_and_json(tmp_path):
    history = build_history(tmp_path / "h.sqlite")
    env = dict(os.environ, VIDEODUB_HISTORY=str(history))
    proc = subprocess.Popen([sys.executable, "-m", "videodub", "perf", "dashboard", "--serve",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[1]
        with urllib.request.urlopen(url + "api/performance", timeout=60) as r:
            settings = json.load(r)
        with urllib.request.urlopen(url + "api/performance/optimization", timeout=60) as r:
            advice = json.load(r)
        with urllib.request.urlopen(url, timeout=60) as r:
            page = r.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert {s["stage"] for s in settings["optimal"]["stages"]} >= {"transcribe", "tts"}
    assert settings["last_run"]["status"] == "ok"
    assert settings["last_run"]["stages"]["tts"] == {
        "impl": "espeak", "wall_s": 5.0, "workers": 1, "worker_reason": "implementation limit 1"}
    assert advice["recommendations"][0]["change"].startswith("translate.max_in_flight=")
    assert "id='plot-trends'" in page


@pytest.mark.slow
def test_the_smoke_suite_measures_and_gates(tmp_path, project_root):
    """The real suite (generated talk, offline stack, loopback server), against a baseline
    that claims one ratio was a third of what it is: the gate breaks on it."""
    committed = json.loads((project_root / "benchmarks" / "perf_baseline.json").read_text())
    doctored = json.loads(json.dumps(committed))
    doctored["suites"]["smoke"]["calls_per_segment"] /= 3
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(doctored))
    run = perf("check", "--suite", "smoke", "--baseline", str(path), cwd=tmp_path, timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr
    ratios = {ln.split()[0]: float(ln.split()[1]) for ln in run.stdout.splitlines()
              if ln.split() and ln.split()[0] in committed["suites"]["smoke"]}
    assert set(ratios) == set(committed["suites"]["smoke"])
    assert ratios["calls_per_segment"] >= 1  # every line needed at least its tts call
    assert "CRITICAL regression: calls_per_segment" in run.stdout
    assert "perf check failed" in run.stderr
    assert not (tmp_path / "outputs").exists()  # the suite keeps its runs to itself
