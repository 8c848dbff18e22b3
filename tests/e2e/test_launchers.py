"""Sweeps run through Hydra launchers unchanged: here the joblib launcher, in parallel processes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from videodub.testing.samples import ENGLISH_TALK, make_talk

# A sweep of whole jobs, each in a new process that loads the models.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def short_talk(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("launch") / "short.mp4"
    make_talk(path, ENGLISH_TALK[:2], pause=0.8)
    return path


def test_joblib_launcher_runs_each_job_in_its_own_process(short_talk, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher",
                        reason="hydra-joblib-launcher is part of the test extras")
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "videodub", "-m", f"input={short_talk}", "target_lang=en",
         "profile=speed,balanced", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         f"hydra.sweep.dir={sweep}", f"cache_dir={tmp_path / 'cache'}", "runner.display=plain"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "VIDEODUB_HISTORY": str(tmp_path / "history.sqlite")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    profiles, pids = set(), set()
    for job in ("0", "1"):
        run = sweep / job
        report = json.loads((run / "report.json").read_text())
        assert report["status"] == "ok"
        assert (run / "short.en.mp4").stat().st_size > 0
        assert (run / ".hydra" / "overrides.yaml").exists()
        profiles.add(report["job"]["profile"])
        pids.add(report["job"]["pid"])
    assert profiles == {"speed", "balanced"}
    assert len(pids) == 2, "joblib ran both jobs in one process"
    # The jobs share one terminal: each line they show names its job, as Hydra's list does.
    shown = proc.stdout + proc.stderr
    for job in ("#0", "#1"):
        assert f"{job} [transcribe] started" in shown and f"{job} [mux] done" in shown
        assert f"{job} videodub stages" in shown
    assert str(sweep / "0" / "short.en.mp4") in proc.stdout
    assert str(sweep / "1" / "short.en.mp4") in proc.stdout
    # The sweep summary comes from a Hydra callback, so this launcher gets it too.
    assert "sweep summary" in proc.stdout and str(sweep / "summary.csv") in proc.stdout
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows] == ["0", "1"] and {r["status"] for r in rows} == {"ok"}
    assert all(float(r["wall_s"]) > 0 and float(r["transcribe_s"]) > 0 for r in rows)
    assert "<table>" in (sweep / "summary.html").read_text()
    # Both processes recorded themselves in the one history.
    from videodub.perf.history import History

    with History(tmp_path / "history.sqlite") as hist:
        assert sorted(r.profile for r in hist.runs()) == ["balanced", "speed"]
