"""transcribe.device on the command line: auto runs on this machine's CPU with int8 (or on
its GPU with float16), and cuda without a GPU is one line before any media work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from videodub.recognition import cuda_devices

pytestmark = pytest.mark.slow


def run(short_talk, tmp_path, *overrides):
    return subprocess.run(
        [sys.executable, "-m", "videodub", f"input={short_talk.path}", "target_lang=en",
         "profile=speed", f"hydra.run.dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}",
         "runner.display=quiet", *overrides],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)


@pytest.mark.skipif(cuda_devices() > 0, reason="this machine has a GPU")
def test_cuda_without_a_gpu_fails_before_media_work(short_talk, tmp_path):
    proc = run(short_talk, tmp_path, "transcribe.device=cuda")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "error: transcribe.device=cuda but no CUDA GPU is usable here (CTranslate2 sees none); "
        "use transcribe.device=auto or cpu"]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["stages"]["ingest"]["items"] == 0, "media work started"
    assert not (tmp_path / "run" / "work").exists()


def test_auto_picks_the_device_here_and_its_compute_type(short_talk, tmp_path):
    proc = run(short_talk, tmp_path, "transcribe.device=auto")
    assert proc.returncode == 0, proc.stderr[-2000:]
    notes = json.loads((tmp_path / "run" / "report.json").read_text())["notes"]
    expected = "on cuda (float16)" if cuda_devices() > 0 else "on cpu (int8)"
    assert any(n.startswith("transcribe: model bundled") and n.endswith(expected)
               for n in notes), notes
