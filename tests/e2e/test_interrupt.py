"""Ctrl-C on the command line: a clean exit 130 and one error line, no abort from native
threads, nothing half-written, and the work already completed kept.

One run interrupts real transcription (the bundled Whisper model decoding); the other runs the
command line with the fake stages of ``helpers_runner.py`` installed, so the job can be
stopped at a known point: after two clips, while the next one hangs. The Whisper runs share
a minute-long talk and each waits for the decoder: they are marked ``slow``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT
from failure_corpus import assert_message

from videodub.testing.samples import ENGLISH_TALK, make_talk

# Run as a script: the videodub command line with the fake stages added.
HELPER = PROJECT_ROOT / "tests" / "helpers_runner.py"


@pytest.fixture(scope="module")
def long_talk(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("interrupt") / "long.mp4"
    make_talk(path, ENGLISH_TALK * 3, min_duration=60)
    return path


@pytest.mark.slow
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


def test_ctrl_c_exits_130_and_keeps_completed_work(tmp_path):
    long_talk = tmp_path / "long.mp4"
    make_talk(long_talk, min_duration=30.0)
    run_dir, cache_dir = tmp_path / "run", tmp_path / "cache"
    source_srt = run_dir / "long.en.srt"
    cmd = [sys.executable, str(HELPER), f"input={long_talk}", "target_lang=es", "profile=speed",
           "transcribe=fake", "transcribe.segments=12", "translate=fake", "tts=fake",
           "tts.workers=1", "tts.block_after=2", f"cache_dir={cache_dir}",
           f"hydra.run.dir={run_dir}", "runner.display=quiet"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        # The fake tts hangs after two clips, so the job is still running when these appear.
        deadline = time.monotonic() + 120
        while not (source_srt.is_file() and list(cache_dir.glob("clips/*.wav"))):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the job never got going"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    error_lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(error_lines) == 1, err
    assert "interrupted" in error_lines[0]
    assert_message("interrupted", error_lines[0])
    assert out.strip() == ""  # no video path is printed
    assert source_srt.is_file()
    assert len(list(cache_dir.glob("clips/*.wav"))) >= 1
    assert not list(run_dir.rglob("*.mp4*"))
    assert not (run_dir / "work").exists()  # intermediate audio of an unfinished job goes
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "cancelled"
    assert report["error"] is None
