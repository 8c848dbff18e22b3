"""``input=`` a folder or a list: one job per input through Hydra's multirun, one summary,
a broken input does not stop the others, and a re-run skips what is done."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from videodub.testing.samples import ENGLISH_TALK, make_talk

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    make_talk(folder / "one.mp4", ENGLISH_TALK[:1], pause=0.8)
    make_talk(folder / "two.mp4", ENGLISH_TALK[1:2], pause=0.8)
    (folder / "broken.mp4").write_bytes(b"this is not a video")
    return folder


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "videodub", *args, "target_lang=en",
                           "profile=speed", "runner.display=quiet", f"cache_dir={cwd / 'cache'}"],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


def test_a_folder_of_three_with_one_broken_gives_two_dubs_and_one_failure_line(folder, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run([f"input={folder}", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "broken.mp4" in errors[0] and "not a readable media" in errors[0]
    out = proc.stdout.splitlines()
    head = out.index("3 inputs: 2 dubbed, 1 failed")
    lines = out[head + 1:head + 4]
    assert [ln.split()[0] for ln in lines] == ["failed", "ok", "ok"]  # broken, one, two
    assert "error: " in lines[0] and "broken.mp4" in lines[0]
    rows = json.loads((sweep / "summary.json").read_text())
    dubs = [Path(r["video"]) for r in rows if r["status"] == "ok"]
    assert sorted(p.name for p in dubs) == ["one.en.mp4", "two.en.mp4"]
    assert all(p.stat().st_size > 0 and p.parent.parent == sweep for p in dubs)
    assert len({p.parent for p in dubs}) == 2, "each input has its own run folder"

    # The same command again: the two dubs are skipped, the broken one is tried again.
    again = run([f"input={folder}", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert again.returncode == 1
    assert again.stdout.count("done earlier, skipped") == 2
    rows = json.loads((sweep / "summary.json").read_text())
    assert sorted(r["status"] for r in rows) == ["failed", "skipped (done)", "skipped (done)"]
    assert all(p.stat().st_size > 0 for p in dubs)


def test_a_list_naming_a_missing_file_fails_that_line_only(folder, tmp_path):
    listing = tmp_path / "inputs.txt"
    shutil.copy(folder / "one.mp4", tmp_path / "one.mp4")
    listing.write_text("# two inputs\none.mp4\nmissing.mp4\n")
    proc = run([f"input={listing}", f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "2 inputs: 1 dubbed, 1 failed" in proc.stdout
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert errors == [f"error: input not found: {tmp_path / 'missing.mp4'}"]


def test_a_folder_without_media_is_one_line_and_no_job(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no media")
    proc = run([f"input={tmp_path / 'empty'}"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no media files in folder ")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()
