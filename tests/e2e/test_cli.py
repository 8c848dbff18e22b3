"""The command line's own answers, in a subprocess: a bad value is one error line and exit 2,
and ``--help`` lists the config groups."""

from __future__ import annotations

import subprocess
import sys

from videodub.model import STAGES

REQUIRED = ["input=talk.mp4", "target_lang=es"]


def test_cli_prints_one_error_line_and_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "videodub", *REQUIRED, "align.max_speed=9"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: align: max_speed must be between 1.0 and 4.0, got 9.0"]
    assert not (tmp_path / "outputs").exists()


def test_help_lists_the_config_groups(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "videodub", "--help"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "== Configuration groups ==" in lines
    for stage in STAGES:
        assert any(line.startswith(f"{stage}: ") for line in lines), stage
    assert "profile: balanced, quality, speed" in lines  # no ./conf in tmp_path
    assert any(line.startswith("tts: ") and "espeak" in line for line in lines)
