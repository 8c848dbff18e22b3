"""A disk that fills up during a job, on a small filesystem the test mounts (tmpfs, as root:
CI runs as root; skipped where mounting is not allowed). Out of room for data or for files
(inodes), the user sees one line naming the folder that is full and what the job was doing;
the clean-up runs (work/ goes, freeing room), and report.json is written.
``integration/test_runner_failures.py`` covers the same with writes that fail on purpose.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from failure_corpus import assert_message

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def small_filesystem(where: Path, **options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    opts = ",".join(f"{k}={v}" for k, v in options.items())
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


JOB = ("target_lang=en", "translate=none", "profile=speed")


def assert_failed_cleanly(run, full: Path, case: str) -> None:
    assert run.returncode == 2, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    line = run.error_lines[0]
    assert line.startswith(f"error: no space left on {full}"), line
    assert " while " in line and "free space there" in line, line
    assert "Traceback" not in run.stderr and "internal error" not in line
    assert_message(case, line)
    report = run.report()
    assert report["status"] == "failed" and report["error"] == line.removeprefix("error: ")
    assert not (run.run_dir / "work").exists()
    assert run.media_files() == [] and not list(run.run_dir.rglob(".*.part*"))


# Inodes for Hydra's files and a few of the job's: it runs out while extracting or mixing.
@pytest.mark.parametrize("inodes", [10, 14])
def test_a_run_folder_that_fills_up_mid_run(run_cli, short_talk, tmp_path, inodes):
    with small_filesystem(tmp_path / "small", size="64m", nr_inodes=str(inodes)) as fs:
        run = run_cli(f"input={short_talk.path}", *JOB, run_dir=fs / "run")
        assert_failed_cleanly(run, fs, "run_folder_full")


def test_a_cache_that_fills_up_mid_run(run_cli, short_talk, tmp_path):
    """Room for the transcript, not for the first clip."""
    with small_filesystem(tmp_path / "small", size="48k") as fs:
        run = run_cli(f"input={short_talk.path}", *JOB, cache_dir=fs / "cache")
        assert_failed_cleanly(run, (fs / "cache").resolve(), "cache_full")
        assert "while caching clips" in run.error_lines[0]
        assert not list(fs.rglob(".*.part*"))


def test_a_run_folder_without_room_for_the_job_is_refused_before_any_work(run_cli, short_talk,
                                                                          tmp_path):
    with small_filesystem(tmp_path / "small", size="8m") as fs:
        run = run_cli(f"input={short_talk.path}", *JOB, run_dir=fs / "run")
        assert run.returncode == 2, run.describe()
        assert len(run.error_lines) == 1
        assert run.error_lines[0].startswith(f"error: not enough disk space in {fs / 'run'}")
        assert_message("not_enough_disk", run.error_lines[0])
        assert all(s["items"] == 0 for s in run.report()["stages"].values())


def test_a_run_folder_on_a_read_only_filesystem_is_one_line(run_cli, short_talk, tmp_path):
    with small_filesystem(tmp_path / "ro", size="1m", mode="0755") as fs:
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        run = run_cli(f"input={short_talk.path}", *JOB, run_dir=fs / "run")
        assert run.returncode == 2, run.describe()
        assert len(run.error_lines) == 1 and "Traceback" not in run.stderr, run.describe()
        assert_message("run_dir_read_only", run.error_lines[0])
        assert f" {fs} is not writable" in run.error_lines[0]
