"""Ctrl-C during real transcription: a clean exit 130, one error line, no abort from native
threads, and nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from videodub.testing.samples import ENGLISH_TALK, make_talk


@pytest.fixture(scope="module")
def long_talk(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("interrupt") / "long.mp4"
    make_talk(path, ENGLISH_TALK * 3, min_duration=60)
    return path


@pytest.mark.parametrize("extra_wait", [0.0, 1.0, 2.5])
def test_ctrl_c_while_whisper_decodes(long_talk, tmp_path, extra_wait):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "videodub", f"input={long_talk}", "target_lang=en",
         "profile=quality", f"hydra.run.dir={run_dir}", f"cache_dir={tmp_path / 'cache'}",
         "runner.display=plain"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"})
    # Wait until the decoder is running (its start line), then interrupt inside it.
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("[transcribe] started"):
            break
    else:
        pytest.fail(f"transcription never started: {proc.communicate()}")
    time.sleep(extra_wait)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err  # not -6: no abort from a native thread torn down
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert lines and lines[-1].startswith("error: interrupted"), err
    assert "Traceback" not in err and "terminate called" not in err, err
    assert not list(run_dir.rglob("*.mp4")) and not list(run_dir.rglob("*.part*"))
    assert not (run_dir / "work").exists()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "cancelled"
