"""Jobs started at the same moment: each owns its run folder, so no output is ever built from
another job's files. The processes are started, wait at a gate (their stdin), and are all let
go at once, several times over.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from failure_corpus import assert_message

from videodub.media import probe

from .conftest import cli_env

pytestmark = pytest.mark.slow

ROUNDS = 3
GATE = ("import os, sys; sys.stderr.write('ready\\n'); sys.stderr.flush(); sys.stdin.buffer.read(1); "
        "os.execv(sys.executable, [sys.executable, '-m', 'videodub', *sys.argv[1:]])")


def start_together(argv_list: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Start one ``python -m videodub`` per argv, all released from their gate at once."""
    procs = [subprocess.Popen([sys.executable, "-c", GATE, *argv], cwd=cwd, env=cli_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for argv in argv_list]
    for proc in procs:
        assert proc.stderr.readline() == "ready\n"
    for proc in procs:  # every interpreter is up and blocked on its gate: open them all
        proc.stdin.write("go")
    for proc in procs:
        proc.stdin.close()
        proc.stdin = None  # communicate() would flush it
    results = []
    for proc, argv in zip(procs, argv_list):
        out, err = proc.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    return results


def describe(results: list[subprocess.CompletedProcess]) -> str:
    return "\n".join(f"--- {' '.join(r.args)}\nexit {r.returncode}\n{r.stdout[-800:]}\n"
                     f"{r.stderr[-1500:]}" for r in results)


def assert_own_output(result: subprocess.CompletedProcess, source: Path,
                      folder_alone: bool = True) -> Path:
    """The printed video is this job's: its picture and its dub both last as long as its
    own input, and (when no later job used the folder) so do its segments."""
    video = Path(result.stdout.strip().splitlines()[-1])
    want = probe(source)["duration"]
    streams = probe(video)["streams"]
    kinds = [s["type"] for s in streams]
    assert kinds.count("video") == 1 and kinds.count("audio") == 2, (video, streams)
    for stream in streams:
        if stream["type"] in ("video", "audio"):
            assert abs(stream["duration"] - want) < 0.3, (video, source, stream, want)
    if folder_alone:
        segments = json.loads((video.parent / "segments.json").read_text(encoding="utf-8"))
        assert segments["segments"][-1]["end"] <= want + 0.05, (video, source)
    return video


@pytest.fixture(scope="module")
def two_inputs(short_talk, talk_factory, tmp_path_factory):
    other = talk_factory(tmp_path_factory.mktemp("other"), "other.mp4",
                         [("A single short line here.", "")], lead_in=0.5)
    return short_talk.path, other.path


JOB = ["target_lang=en", "translate=none", "profile=speed", "runner.display=plain"]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_jobs_in_one_run_folder_never_mix(two_inputs, tmp_path, round_):
    run_dir, cache = tmp_path / "shared_run", tmp_path / "cache"
    results = start_together(
        [[f"input={src}", *JOB, f"hydra.run.dir={run_dir}", f"cache_dir={cache}"]
         for src in two_inputs], tmp_path)

    ok = [(r, src) for r, src in zip(results, two_inputs) if r.returncode == 0]
    refused = [r for r in results if r.returncode != 0]
    assert ok, describe(results)
    for result in refused:
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
        assert errors == [f"error: the run folder {run_dir.resolve()} is in use by another job; "
                          "wait for it to finish or set hydra.run.dir to another folder"], \
            describe(results)
        assert_message("run_folder_busy", errors[0])
        assert result.returncode == 2 and "Traceback" not in result.stderr
    for result, src in ok:  # both succeed only one after the other, each with its own files
        assert_own_output(result, src, folder_alone=len(ok) == 1)
    if refused:  # what the folder holds is the winner's alone
        (winner, src), = ok
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        assert report["job"]["input"] == str(src) and report["status"] == "ok"
        assert str(src) in (run_dir / ".hydra" / "overrides.yaml").read_text(encoding="utf-8")
    assert not list(run_dir.glob(".*.part*")) and not (run_dir / "work").exists()


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_default_run_folders_never_collide(two_inputs, tmp_path, round_):
    """No hydra.run.dir: started in the same second, each job still gets a folder of its own
    (and they share one cache)."""
    results = start_together([[f"input={src}", *JOB, f"cache_dir={tmp_path / 'cache'}"]
                              for src in two_inputs], tmp_path)
    assert all(r.returncode == 0 for r in results), describe(results)
    videos = [assert_own_output(r, src) for r, src in zip(results, two_inputs)]
    folders = {v.parent for v in videos}
    assert len(folders) == 2, videos
    assert all(f.is_relative_to(tmp_path / "outputs") for f in folders), folders
