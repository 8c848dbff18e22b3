"""The streaming runner, driven by throwaway stage plugins registered in code.

Ingest, mix and mux are the real built-ins on a synthesized talk; transcribe, translate and
tts are fakes from ``helpers_runner`` that record what the runner asked of them and when.
Where an order of events matters, a fake waits for the event it needs (with a generous
deadlock breaker), so a slow machine cannot fail the test and a wrong runner cannot pass it.
One duration is itself the promise: after a failure, every thread of the job is gone within a
second (they check for cancellation every 0.1 s; measured here: 0.1-0.25 s on a loaded
2-core machine). Outputs are whole or absent: a write that fails halfway leaves neither a
file under the final name nor a temporary one.
"""

from __future__ import annotations

import errno
import json
import math
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers_runner import (
    DEADLOCK_BREAKER_S,
    FakeStages,
    Recorder,
    RecordingMixer,
    register_builtins_and_fakes,
    wait_or_cancel,
)

from videodub.api import compose_job
from videodub.builtin import ingest_local, mux_ffmpeg
from videodub.errors import NoSpace, VideodubError
from videodub.plugins import collect, make_plugin_manager, register_configs
from videodub.run.quality import summary_line
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
    # A set speaking rate: measuring the voice would add a tts call these tests do not expect.
    job = compose_job([f"input={media}", "target_lang=es", "profile=speed",
                       f"cache_dir={tmp / 'cache'}", "align.chars_per_second=15", *overrides])
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


def test_the_report_gives_each_stage_its_place_in_the_job(streamed):
    stages = streamed.report["stages"]
    for name, st in stages.items():
        assert 0 <= st["start_s"] <= st["end_s"] <= streamed.report["wall_s"], name
        assert st["end_s"] - st["start_s"] == pytest.approx(st["wall_s"], abs=0.002), name
    # In order, overlapping: each starts once the one before it has, mux after mix's end.
    order = ["ingest", "transcribe", "translate", "align", "tts", "mix"]
    assert [stages[n]["start_s"] for n in order] == sorted(stages[n]["start_s"] for n in order)
    assert stages["tts"]["start_s"] < stages["transcribe"]["end_s"]
    assert stages["mux"]["start_s"] >= stages["mix"]["end_s"] - 0.002


def test_first_clip_is_synthesized_before_the_last_segment_is_transcribed(streamed):
    rec = streamed.recorder
    # The fake transcriber holds its last segment until a clip is being synthesized; a
    # runner that waited for the whole transcript would make that hold time out.
    assert rec.ids("transcribe_hold_timed_out") == []
    assert min(rec.times("tts_start")) < max(rec.times("transcribe_yield"))
    assert rec.ids("transcribe_yield") == list(range(8))


def test_recognition_starts_on_the_speech_while_ingest_is_still_extracting(
        registry, fakes, fake_input, tmp_path, monkeypatch):
    """A transcriber that reads growing speech starts before ingest returns; one that does
    not, and the aligner (lines are placed on the source's speech), wait for all of it."""
    from videodub import timing

    held: list[bool] = []  # per job: did recognition run while ingest was held?
    real_same_channels = ingest_local.same_channels

    def ingest_holds_until_recognition_ends(path):
        # Ingest's last step, after the speech is out: held until the transcriber has given
        # every line (or the breaker), so which came first does not depend on timing, and
        # the lines reach align while ingest is still running.
        held.append(wait_or_cancel(fakes.recorder.transcribe_finished, ctx_stub,
                                   DEADLOCK_BREAKER_S if expect_early else 1.0))
        return real_same_channels(path)

    class ctx_stub:  # wait_or_cancel's ctx: this hold is never cancelled
        @staticmethod
        def check_cancelled() -> None:
            pass

    aligned_without_media: list[float] = []
    real_source_regions = timing.source_regions

    def source_regions(ctx, until=math.inf):
        if ctx.media is None:
            aligned_without_media.append(time.monotonic())
        return real_source_regions(ctx, until)

    monkeypatch.setattr(ingest_local, "same_channels", ingest_holds_until_recognition_ends)
    monkeypatch.setattr(timing, "source_regions", source_regions)
    for expect_early in (True, False):
        run = run_job(registry, fakes, fake_input, tmp_path / str(expect_early),
                      "transcribe=fake", f"transcribe.reads_growing={str(expect_early).lower()}",
                      "translate=fake", "tts=fake")
        assert run.error is None, run.error
        ((media_then, given),) = run.recorder.media_at_start
        if expect_early:
            assert media_then is None  # ingest had not returned
            assert given.extra["speech_growing"].path == given.speech_audio
        else:
            assert media_then is given and "speech_growing" not in given.extra
    assert held == [True, False]
    assert aligned_without_media == []


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


# -- what a plain display prints ------------------------------------------------------

def plain_display_lines(registry, fakes, media: Path, tmp: Path, capsys, *overrides: str
                        ) -> list[str]:
    """What a job shows on a plain display (``runner.display=plain``), line by line. The
    fake transcriber takes ~6 s, longer than the display's 5 s between progress lines."""
    fakes.reset()
    job = compose_job([f"input={media}", "target_lang=es", "profile=speed",
                       f"cache_dir={tmp / 'cache'}", "runner.display=plain", "transcribe=fake",
                       "transcribe.segments=4", "transcribe.delay=1.5", "translate=fake",
                       "tts=fake", "align.chars_per_second=15", *overrides])
    capsys.readouterr()
    Runner(job, tmp / "run", registry=registry).run()
    return capsys.readouterr().err.splitlines()


@pytest.mark.slow  # two jobs that each outlast a progress interval
def test_minimal_logging_shows_only_stage_start_and_end_lines(registry, fakes, fake_input,
                                                              tmp_path, capsys):
    """`runner.minimal_logging=true`, which the speed profile sets, leaves only each
    stage's start and end lines on a plain display; without it a progress line comes every
    5 s."""
    minimal = plain_display_lines(registry, fakes, fake_input, tmp_path / "minimal", capsys)
    full = plain_display_lines(registry, fakes, fake_input, tmp_path / "full", capsys,
                               "runner.minimal_logging=false")

    for lines in (minimal, full):
        for stage in ("ingest", "transcribe", "translate", "align", "tts", "mix", "mux"):
            assert sum(ln.startswith(f"[{stage}] started (") for ln in lines) == 1, lines
            assert sum(ln.startswith(f"[{stage}] done ") for ln in lines) == 1, lines
    assert any(ln.startswith("progress: ") for ln in full), full
    assert not any(ln.startswith(("progress: ", "  ")) for ln in minimal), minimal


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


def test_a_full_disk_stops_the_job_before_any_media_work(registry, fakes, fake_input, tmp_path,
                                                        monkeypatch):
    """ingest's check looks at the free space where the run is written before anything else
    happens; too little fails the job in one line, before a stage has started."""
    real = shutil.disk_usage
    monkeypatch.setattr(ingest_local.shutil, "disk_usage",
                        lambda path: real(path)._replace(free=2**20))
    run = run_job(registry, fakes, fake_input, tmp_path, "transcribe=fake", "translate=fake",
                  "tts=fake")

    assert isinstance(run.error, VideodubError)
    message = str(run.error)
    assert message.startswith(f"not enough disk space in {run.run_dir}: the run needs about ")
    assert message.endswith(" MiB, 1 MiB are free; free space or set hydra.run.dir elsewhere")
    assert run.report["status"] == "failed" and run.report["error"] == message
    assert run.recorder.events == []
    assert all(stage["items"] == 0 for stage in run.report["stages"].values())
    assert not (run.run_dir / "work").exists()
    assert not list(run.run_dir.glob("*.srt")) and not list(run.run_dir.rglob("*.mp4*"))


def test_a_stage_that_cannot_start_leaves_nothing_behind(registry, fakes, fake_input, tmp_path):
    run_dir = tmp_path / "run"
    job = compose_job([f"input={fake_input}", "target_lang=es", "cache=false",
                       "translate=subtitles", f"translate.file={tmp_path / 'missing.srt'}"])
    with pytest.raises(VideodubError, match="subtitle file not found"):
        Runner(job, run_dir, registry=registry, display="quiet").run()
    assert not (run_dir / "work").exists()


# -- outputs are whole or absent -------------------------------------------------------
# Each output is written under a temporary name and renamed into place. A write that fails
# halfway (a full disk, an ffmpeg that dies) must leave no file under the final name, keep
# the one an earlier run left there byte for byte, and leave no temporary file behind.


def partial_files(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.rglob("*") if ".part" in p.name)


def mux_dies_halfway(args: list[str], ctx=None, what: str = "ffmpeg") -> str:
    """ffmpeg that writes the start of an MP4 to the path it was given, then fails."""
    Path(args[-1]).write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(4096))
    raise VideodubError(f"{what} failed: No space left on device")


@pytest.mark.parametrize("earlier_run", [False, True], ids=["new", "over-an-earlier-run"])
def test_a_video_whose_mux_fails_halfway_is_never_left_under_its_name(
        registry, fakes, fake_input, tmp_path, monkeypatch, earlier_run):
    video = tmp_path / "run" / "talk.es.mp4"
    fast = ("transcribe=fake", "translate=fake", "tts=fake")
    before = None
    if earlier_run:
        first = run_job(registry, fakes, fake_input, tmp_path, *fast)
        assert first.error is None and video.is_file()
        before = video.read_bytes()
    monkeypatch.setattr(mux_ffmpeg, "run_ffmpeg", mux_dies_halfway)
    run = run_job(registry, fakes, fake_input, tmp_path, *fast)

    assert isinstance(run.error, VideodubError), run.error
    assert str(run.error) == "writing the dubbed video failed: No space left on device"
    assert run.report["status"] == "failed"
    if before is None:
        assert not video.exists()
    else:
        assert video.read_bytes() == before
    assert partial_files(run.run_dir) == []


def disk_full_for(matches):
    """``Path.write_text`` that, for paths ``matches`` accepts, writes half the text and then
    fails as a full disk does; other paths are written normally."""
    write_text = Path.write_text

    def write(self: Path, data: str, *args, **kwargs) -> int:
        if not matches(self):
            return write_text(self, data, *args, **kwargs)
        write_text(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    return write


@pytest.mark.parametrize("name, earlier_run", [("segments.json", True), ("talk.es.srt", False)])
def test_a_json_or_srt_output_that_fails_halfway_is_never_left_under_its_name(
        registry, fakes, fake_input, tmp_path, monkeypatch, name, earlier_run):
    final = tmp_path / "run" / name
    stem, suffix = name.rsplit(".", 1)
    fast = ("transcribe=fake", "translate=fake", "tts=fake")
    before = None
    if earlier_run:
        first = run_job(registry, fakes, fake_input, tmp_path, *fast)
        assert first.error is None and final.is_file()
        before = final.read_bytes()
    # The output under its final name, or under a temporary name beside it.
    monkeypatch.setattr(Path, "write_text", disk_full_for(
        lambda p: p.parent == final.parent and p.suffix == f".{suffix}"
        and p.name.lstrip(".").startswith(f"{stem}.")))
    run = run_job(registry, fakes, fake_input, tmp_path, *fast)

    # The full disk is named, with where and when, as one line.
    assert isinstance(run.error, NoSpace), run.error
    assert str(run.error).startswith(f"no space left on {final.parent} while "), run.error
    assert run.report["status"] == "failed" and run.report["error"] == str(run.error)
    if before is None:
        assert not final.exists()
    else:
        assert final.read_bytes() == before
    assert partial_files(run.run_dir) == []


# -- a failure while producers wait on full pipes --------------------------------------

PRODUCERS = ("videodub-transcribe", "videodub-translate", "videodub-align")
# How soon after a failure every thread of the job must be gone ("within a second").
THREADS_GONE_S = 1.0


def waiting_in_pipe_put(thread_name: str) -> bool:
    """Whether the thread of that name is blocked in ``Pipe.put`` (its stack says so)."""
    frames = sys._current_frames()
    for thread in threading.enumerate():
        frame = frames.get(thread.ident) if thread.name == thread_name else None
        while frame is not None:
            code = frame.f_code
            if code.co_name == "put" and code.co_filename.endswith("streams.py"):
                return True
            frame = frame.f_back
    return False


def test_producers_blocked_on_full_pipes_end_within_a_second_of_a_failure(
        registry, fakes, fake_input, tmp_path, monkeypatch):
    """One-item pipes and a tts that never finishes a line: transcribe, translate and align
    all wait for room in the pipe after them. When the mixer then fails, the job raises
    that failure and, within a second of it, none of the job's threads is left."""
    release_failure = threading.Event()
    failed_at: list[float] = []

    def mix_fails_when_released(self, segments, media, ctx):
        wait_or_cancel(release_failure, ctx, DEADLOCK_BREAKER_S)
        failed_at.append(time.monotonic())
        raise VideodubError("mixer: the disk is full")

    monkeypatch.setattr(RecordingMixer, "mix", mix_fails_when_released)
    before = set(threading.enumerate())
    fakes.reset()
    job = compose_job([f"input={fake_input}", "target_lang=es", "profile=speed", "cache=false",
                       "runner.queue_size=1", "transcribe=fake", "transcribe.segments=200",
                       "transcribe.delay=0", "translate=fake", "translate.batch_size=1",
                       "tts=fake", "tts.workers=1", "tts.block_after=0",
                       "align.chars_per_second=15", "mix=recording_duck"])
    runner = Runner(job, tmp_path / "run", registry=registry, display="quiet")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            runner.run()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    job_thread = threading.Thread(target=run, name="test-job", daemon=True)
    job_thread.start()
    try:
        deadline = time.monotonic() + DEADLOCK_BREAKER_S
        while not all(waiting_in_pipe_put(name) for name in PRODUCERS):
            assert job_thread.is_alive() and time.monotonic() < deadline, (
                f"the producers never all waited on a full pipe: {outcome}")
            time.sleep(0.02)
    finally:
        release_failure.set()
    job_thread.join(DEADLOCK_BREAKER_S)

    assert not job_thread.is_alive(), "the job never ended"
    assert [str(exc) for exc in outcome] == ["mixer: the disk is full"]
    left = wait_for_threads_to_end(before, bound=failed_at[0] + THREADS_GONE_S - time.monotonic())
    assert left == [], f"{left} still alive {THREADS_GONE_S} s after the failure"


def test_the_report_reads_subtitles_by_the_target_languages_rules(registry, fakes, fake_input,
                                                                 tmp_path):
    """A Japanese dub's subtitles are laid out 13 characters a line (26 columns) and their
    reading speed judged against 4 characters a second, as the report says."""
    run = run_job(registry, fakes, fake_input, tmp_path, "transcribe=fake",
                  "transcribe.segments=3", "translate=fake", "tts=fake", "target_lang=ja")
    assert run.error is None, run.error
    figures = run.report["quality"]["subtitles"]
    assert figures["fast_cps"] == 4.0
    assert 0 < figures["longest_line_columns"] <= 26
    assert "cues over 4)" in summary_line(run.report["quality"])
