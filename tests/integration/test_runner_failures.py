"""The runner when the disk fills up, or its folder is taken: the real error is the one line
(never masked by the report's own write), the clean-up always runs, and the report is written
when the disk allows. Writes fail on purpose here; ``e2e/test_disk_full.py`` fills a real
filesystem.
"""

from __future__ import annotations

import errno
import json
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from failure_corpus import assert_message
from helpers_runner import FakeStages, register_builtins_and_fakes

from videodub.api import compose_job
from videodub.errors import NoSpace, VideodubError
from videodub.plugins import collect, make_plugin_manager, register_configs
from videodub.run import runner as runner_module
from videodub.run.ownership import RunFolderBusy, own_run_folder
from videodub.run.runner import Runner
from videodub.testing.samples import ENGLISH_TALK, make_talk

FAST = ("transcribe=fake", "translate=fake", "tts=fake")


@pytest.fixture(scope="module")
def fakes() -> FakeStages:
    return FakeStages()


@pytest.fixture(scope="module")
def registry(fakes):
    pm = make_plugin_manager()
    register_builtins_and_fakes(pm, fakes)
    reg = collect(pm)
    register_configs(reg)
    return reg


@pytest.fixture(scope="module")
def fake_input(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("failures_media") / "talk.mp4"
    make_talk(path, ENGLISH_TALK[:2], pause=0.5, min_duration=6.0)
    return path


def runner(registry, media: Path, tmp: Path, *overrides: str) -> Runner:
    job = compose_job([f"input={media}", "target_lang=es", "profile=speed",
                       f"cache_dir={tmp / 'cache'}", *FAST, *overrides])
    return Runner(job, tmp / "run", registry=registry, display="quiet")


def full_disk_for(name: str, monkeypatch) -> None:
    """Writing ``name`` (report.json) fails as on a full disk."""
    write = runner_module.write_json_atomic

    def failing(final: Path, data):
        if final.name == name:
            raise OSError(errno.ENOSPC, "No space left on device", str(final))
        return write(final, data)

    monkeypatch.setattr(runner_module, "write_json_atomic", failing)


def test_a_full_cache_disk_is_the_error_even_when_the_report_cannot_be_written(
        registry, fakes, fake_input, tmp_path, monkeypatch):
    fakes.reset()

    def no_room(src, dst, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("videodub.run.cache.shutil.copyfile", no_room)
    full_disk_for("report.json", monkeypatch)
    job = runner(registry, fake_input, tmp_path)

    with pytest.raises(NoSpace) as caught:
        job.run()

    assert str(caught.value).startswith(
        f"no space left on {(tmp_path / 'cache').resolve()} while caching clips"), caught.value
    assert not (tmp_path / "run" / "work").exists()  # the clean-up ran
    assert not (tmp_path / "run" / "report.json").exists()
    assert not list((tmp_path / "run").glob("*.mp4"))


def test_a_report_that_cannot_be_written_fails_a_finished_job_in_one_line(
        registry, fakes, fake_input, tmp_path, monkeypatch):
    fakes.reset()
    full_disk_for("report.json", monkeypatch)

    with pytest.raises(NoSpace) as caught:
        runner(registry, fake_input, tmp_path).run()

    assert str(caught.value).startswith(
        f"no space left on {tmp_path / 'run'} while writing report.json"), caught.value
    assert not (tmp_path / "run" / "work").exists()


def test_a_failed_job_still_writes_its_report_after_cleaning_up(
        registry, fakes, fake_input, tmp_path, monkeypatch):
    """The report is written after work/ is gone: the clean-up never waits on it."""
    fakes.reset()
    seen: list[bool] = []
    write = runner_module.write_json_atomic

    def watching(final: Path, data):
        if final.name == "report.json":
            seen.append((final.parent / "work").exists())
        return write(final, data)

    monkeypatch.setattr(runner_module, "write_json_atomic", watching)
    with pytest.raises(RuntimeError):
        runner(registry, fake_input, tmp_path, "tts.fail_on=1").run()

    assert seen == [False]
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "failed" and "fake tts failed" in report["error"]


def test_a_ctrl_c_during_the_clean_up_does_not_stop_it(
        registry, fakes, fake_input, tmp_path, monkeypatch):
    """A second Ctrl-C (or the copy a wrapper like ``timeout`` forwards) lands while the job
    cleans up: work/ is still removed and the report written, and the job's own error is the
    one raised."""
    import os

    fakes.reset()
    remove = runner_module.remove_work

    def interrupted(folder: Path, *args) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        remove(folder, *args)

    monkeypatch.setattr(runner_module, "remove_work", interrupted)
    with pytest.raises(RuntimeError, match="fake tts failed"):
        runner(registry, fake_input, tmp_path, "tts.fail_on=1").run()
    assert not (tmp_path / "run" / "work").exists()
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "failed"


def test_a_run_folder_that_cannot_be_made_is_one_line(registry, fake_input, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    job = compose_job([f"input={fake_input}", "target_lang=es", "profile=speed", *FAST])

    with pytest.raises(VideodubError, match=r"^cannot create the run folder .*a_file/sub: "):
        Runner(job, blocker / "sub", registry=registry, display="quiet").run()


def test_a_job_is_refused_a_run_folder_another_job_holds(registry, fake_input, tmp_path):
    (tmp_path / "run").mkdir()
    held, release = threading.Event(), threading.Event()

    def other_job() -> None:
        with own_run_folder(tmp_path / "run"):
            held.set()
            release.wait()

    thread = threading.Thread(target=other_job)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(RunFolderBusy, match="is in use by another job") as caught:
            runner(registry, fake_input, tmp_path).run()
        assert_message("run_folder_busy", f"error: {caught.value}")
        assert sorted(p.name for p in (tmp_path / "run").iterdir()) == []  # nothing written
    finally:
        release.set()
        thread.join()
    # Once it is free, the folder is the next job's.
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    assert runner(registry, fake_input, tmp_path).run().video.is_file()


KILLED_WRITER = """import os, signal, sys
from pathlib import Path
from videodub.media import atomic_path
open_writes = [atomic_path(Path(final)) for final in sys.argv[1:]]
for write in open_writes:
    write.__enter__().write_text("half")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_later_job_removes_what_a_killed_one_left(registry, fakes, fake_input, tmp_path):
    """kill -9 mid-write leaves temporary files in the run folder and the cache; the next
    job in that folder, with that cache, removes them."""
    left = [tmp_path / "run" / "talk.es.mp4", tmp_path / "cache" / "translations" / "ab.json",
            tmp_path / "cache" / "clips" / "cd.wav"]
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, *map(str, left)])
    assert killed.returncode == -signal.SIGKILL
    leftovers = sorted(p for p in tmp_path.rglob(".*.part*"))
    assert len(leftovers) == 3, leftovers
    fakes.reset()

    runner(registry, fake_input, tmp_path).run()

    assert sorted(tmp_path.rglob(".*.part*")) == []
