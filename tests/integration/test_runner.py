"""The streaming runner, driven by throwaway stage plugins registered in code.

Ingest, mix and mux are the real built-ins on a synthesized talk; transcribe, translate and
tts are fakes from ``helpers_runner`` that record what the runner asked of them and when.
Nothing here asserts a duration: where an order of events matters, a fake waits for the
event it needs (with a generous deadlock breaker), so a slow machine cannot fail the test
and a wrong runner cannot pass it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from helpers_runner import FakeStages, Recorder, register_builtins_and_fakes

from videodub.api import compose_job
from videodub.errors import VideodubError
from videodub.plugins import collect, make_plugin_manager, register_configs
from videodub.run.runner import Runner
from videodub.subtitles import read_cues
from videodub.testing.samples import ENGLISH_TALK, make_talk


@pytest.fixture(scope="module")
def fakes() -> FakeStages:
    return FakeStages()


@pytest.fixture(scope="module")
def registry(fakes):
    pm = make_plugin_manager()
    register_builtins_and_fakes(pm, fakes)
    reg = collect(pm)
    register_configs(reg)  # compose_job needs the fakes' configs in Hydra's store
    return reg


@pytest.fixture(scope="module")
def fake_input(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("runner_media") / "talk.mp4"
    make_talk(path, ENGLISH_TALK[:2], pause=0.5, min_duration=8.0)
    return path


class Run:
    """One finished (or failed) job: its outcome, what the fakes recorded, its report."""

    def __init__(self, run_dir: Path, recorder: Recorder, result=None,
                 error: BaseException | None = None) -> None:
        self.run_dir = run_dir
        self.recorder = recorder
        self.result = result
        self.error = error
        self.report = json.loads((run_dir / "report.json").read_text())


def run_job(registry, fakes: FakeStages, media: Path, tmp: Path, *overrides: str) -> Run:
    recorder = fakes.reset()
    run_dir = tmp / "run"
    job = compose_job([f"input={media}", "target_lang=es", "profile=speed",
                       f"cache_dir={tmp / 'cache'}", *overrides])
    runner = Runner(job, run_dir, registry=registry, display="quiet")
    try:
        result = runner.run()
    except BaseException as exc:  # noqa: BLE001 - the tests inspect it
        return Run(run_dir, recorder, error=exc)
    return Run(run_dir, recorder, result=result)


STREAMING = ("transcribe=fake", "transcribe.segments=8", "transcribe.hold_last=true",
             "translate=fake", "translate.batch_size=3",
             "tts=fake", "tts.workers=4", "tts.hold_pairs=2", "mix=recording_duck")


@pytest.fixture(scope="module")
def streamed(registry, fakes, fake_input, tmp_path_factory) -> Run:
    run = run_job(registry, fakes, fake_input, tmp_path_factory.mktemp("streamed"), *STREAMING)
    if run.error is not None:
        raise run.error
    return run


def read_cue_texts(path: Path) -> list[str]:
    return [cue.text for cue in read_cues(path)]


def stage_threads_alive(before: set[threading.Thread]) -> list[str]:
    return [t.name for t in threading.enumerate()
            if t not in before and t.name.startswith("videodub-") and t.is_alive()]


def wait_for_threads_to_end(before: set[threading.Thread], bound: float = 10.0) -> list[str]:
    deadline = time.monotonic() + bound
    while stage_threads_alive(before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return stage_threads_alive(before)


# -- a successful streamed job ---------------------------------------------------------

def test_streamed_job_writes_the_video_and_a_complete_report(streamed):
    assert streamed.report["status"] == "ok"
    assert streamed.report["error"] is None
    assert streamed.result.video.is_file() and streamed.result.video.suffix == ".mp4"
    assert streamed.report["job"]["segments"] == {"source": 8, "target": 8}
    sources = [f"This is test line number {i}." for i in range(8)]
    assert [s.target_text for s in streamed.result.segments] == [f"[es] {t}" for t in sources]
    assert streamed.report["outputs"]["source_srt"] == "talk.en.srt"
    assert streamed.report["outputs"]["target_srt"] == "talk.es.srt"
    assert read_cue_texts(streamed.run_dir / "talk.en.srt") == sources
    assert read_cue_texts(streamed.run_dir / "talk.es.srt") == [f"[es] {t}" for t in sources]
    assert all(s.stretch is not None for s in streamed.result.segments)  # the real mixer ran


def test_first_clip_is_synthesized_before_the_last_segment_is_transcribed(streamed):
    rec = streamed.recorder
    # The fake transcriber holds its last segment until a clip is being synthesized; a
    # runner that waited for the whole transcript would make that hold time out.
    assert rec.ids("transcribe_hold_timed_out") == []
    assert min(rec.times("tts_start")) < max(rec.times("transcribe_yield"))
    assert rec.ids("transcribe_yield") == list(range(8))


def test_translator_gets_batches_of_batch_size_in_order(streamed):
    batches = streamed.recorder.batches
    assert all(1 <= len(b) <= 3 for b in batches)
    assert [i for b in batches for i in b] == list(range(8))
    assert batches == [[0, 1, 2], [3, 4, 5], [6, 7]]


def test_translator_without_batch_size_gets_the_whole_transcript(registry, fakes, fake_input,
                                                                 tmp_path):
    run = run_job(registry, fakes, fake_input, tmp_path, "transcribe=fake",
                  "transcribe.segments=8", "translate=fake", "translate.batch_size=null",
                  "tts=fake")
    assert run.error is None
    assert run.recorder.batches == [list(range(8))]


def test_clips_reach_the_mixer_in_order_when_they_finish_out_of_order(streamed):
    rec = streamed.recorder
    assert rec.ids("tts_hold_timed_out") == []
    finished = rec.ids("tts_done")
    assert sorted(finished) == list(range(8))
    assert finished.index(1) < finished.index(0) and finished.index(3) < finished.index(2)
    assert rec.ids("mix_received") == list(range(8))
    segments = json.loads((streamed.run_dir / "segments.json").read_text())["segments"]
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts)


def test_report_says_how_each_pool_was_sized(streamed):
    stages = streamed.report["stages"]
    assert stages["tts"]["workers"] == 4
    assert stages["tts"]["worker_reason"] == "configured workers=4"
    # Ingest, mix and mux each declare that they work one item at a time.
    for stage in ("ingest", "mix", "mux"):
        assert stages[stage]["workers"] == 1
        assert stages[stage]["worker_reason"].startswith("implementation limit 1")
    for stage, info in stages.items():
        assert info["workers"] >= 1 and info["worker_reason"], stage


def test_runner_max_workers_caps_a_pool(registry, fakes, fake_input, tmp_path):
    run = run_job(registry, fakes, fake_input, tmp_path, "transcribe=fake", "translate=fake",
                  "tts=fake", "runner.max_workers=2")
    assert run.error is None
    assert run.report["stages"]["tts"]["workers"] == 2
    assert run.report["stages"]["tts"]["worker_reason"] == "runner.max_workers=2"


# -- failures --------------------------------------------------------------------------

def test_first_failure_cancels_the_job(registry, fakes, fake_input, tmp_path):
    before = set(threading.enumerate())
    # Many segments and short queues: the transcriber cannot finish unless the job goes on.
    run = run_job(registry, fakes, fake_input, tmp_path, "cache=false", "runner.queue_size=2",
                  "transcribe=fake", "transcribe.segments=200", "transcribe.delay=0.005",
                  "translate=fake", "translate.batch_size=1", "tts=fake", "tts.workers=2",
                  "tts.fail_on=2", "mix=recording_duck")
    assert isinstance(run.error, RuntimeError)
    assert str(run.error) == "fake tts failed on segment 2"
    assert run.report["status"] == "failed"
    assert run.report["error"] == "fake tts failed on segment 2"
    assert not list(run.run_dir.rglob("*.mp4*"))
    assert not (run.run_dir / "work").exists()
    assert len(run.recorder.ids("transcribe_yield")) < 200
    assert set(run.recorder.ids("mix_received")) <= {0, 1}
    assert wait_for_threads_to_end(before) == []


def test_videodub_error_in_transcribe_fails_cleanly(registry, fakes, fake_input, tmp_path):
    before = set(threading.enumerate())
    run = run_job(registry, fakes, fake_input, tmp_path, "transcribe=fake",
                  "transcribe.fail_after=3", "translate=fake", "translate.batch_size=1",
                  "tts=fake")
    assert isinstance(run.error, VideodubError)
    assert str(run.error) == "fake transcriber: lost the audio"
    assert run.report["status"] == "failed"
    assert run.report["error"] == "fake transcriber: lost the audio"
    assert "source_srt" not in run.report["outputs"]  # the transcript never completed
    assert not list(run.run_dir.rglob("*.mp4*"))
    assert not list(run.run_dir.glob("*.srt"))
    assert wait_for_threads_to_end(before) == []


def test_a_stage_that_cannot_start_leaves_nothing_behind(registry, fakes, fake_input, tmp_path):
    run_dir = tmp_path / "run"
    job = compose_job([f"input={fake_input}", "target_lang=es", "cache=false",
                       "translate=subtitles", f"translate.file={tmp_path / 'missing.srt'}"])
    with pytest.raises(VideodubError, match="subtitle file not found"):
        Runner(job, run_dir, registry=registry, display="quiet").run()
    assert not (run_dir / "work").exists()
