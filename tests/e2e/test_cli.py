"""The command line's own answers, in a subprocess: a bad value is one error line and exit 2,
``--help`` lists the config groups, and the README's demo runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import pytest

from videodub.model import STAGES

from .conftest import cli_env

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


@pytest.mark.slow  # makes the 27 s talk and dubs it
def test_demo_dubs_its_sample_talk_and_prints_the_video_last(tmp_path):
    """`python -m videodub.demo`, the README's try-it command, run from an empty folder:
    exit 0, and the last line printed is an MP4 with the video, the dub and the original."""
    proc = subprocess.run([sys.executable, "-m", "videodub.demo"], capture_output=True,
                          text=True, cwd=tmp_path, env=cli_env(), timeout=600,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    video = Path(proc.stdout.strip().splitlines()[-1])
    assert video.is_file() and video.suffix == ".mp4", proc.stdout
    assert video.is_relative_to(tmp_path / "outputs" / "demo")
    with av.open(str(video)) as container:
        assert len(container.streams.video) == 1
        assert [s.metadata.get("language") for s in container.streams.audio] == ["spa", "eng"]
