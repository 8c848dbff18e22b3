"""Throwaway stage plugins for the runner tests (``integration/test_runner.py``, and the
Ctrl-C test in ``e2e/test_interrupt.py``), registered in code (nothing is installed).

``FakeStages`` registers a transcriber, a translator, a tts and a recording mixer whose
behaviour is set from the command line like any plugin's (``transcribe.segments=200``,
``tts.fail_on=2``...). They record what happened, and when, in ``FakeStages.recorder``, so the
tests can check how the runner scheduled them. Ingest, mix and mux stay real.

Run as a script, this module is the videodub command line with the fakes installed
(``python tests/helpers_runner.py input=... transcribe=fake ...``): the Ctrl-C test needs
a real process to interrupt.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videodub import hookimpl
from videodub.builtin.mix_duck import DuckMixer, DuckMixOptions
from videodub.errors import VideodubError
from videodub.model import JobContext, MediaInfo, Segment, WorkerHint

BUILTIN_MODULES = (
    "videodub.builtin.ingest_local",
    "videodub.builtin.transcribe_faster_whisper",
    "videodub.builtin.translate_none",
    "videodub.builtin.translate_subtitles",
    "videodub.builtin.align_length",
    "videodub.builtin.tts_espeak",
    "videodub.builtin.mix_duck",
    "videodub.builtin.mux_ffmpeg",
)

# Long enough that a runner that does not stream, or does not cancel, fails the test
# instead of the test depending on how fast the machine is.
DEADLOCK_BREAKER_S = 20.0


class Recorder:
    """What the fake stages did: (event, segment id, monotonic time) and a few signals."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, int, float]] = []
        self.batches: list[list[int]] = []
        self.tts_started = threading.Event()
        self.transcribe_started = threading.Event()
        self.transcribe_finished = threading.Event()
        self.media_at_start: list[tuple[MediaInfo | None, MediaInfo]] = []
        self.tts_done: defaultdict[int, threading.Event] = defaultdict(threading.Event)

    def log(self, event: str, seg_id: int) -> None:
        with self.lock:
            self.events.append((event, seg_id, time.monotonic()))

    def ids(self, event: str) -> list[int]:
        with self.lock:
            return [i for e, i, _ in self.events if e == event]

    def times(self, event: str) -> list[float]:
        with self.lock:
            return [t for e, _, t in self.events if e == event]

    def done_event(self, seg_id: int) -> threading.Event:
        with self.lock:
            return self.tts_done[seg_id]


def wait_or_cancel(event: threading.Event, ctx: JobContext, timeout: float) -> bool:
    """Wait for ``event``, giving up when the job is cancelled; False if it never came."""
    deadline = time.monotonic() + timeout
    while not event.wait(0.02):
        ctx.check_cancelled()
        if time.monotonic() > deadline:
            return False
    return True


# -- transcribe ------------------------------------------------------------------------

@dataclass
class FakeTranscribeOptions:
    # Segments to yield, spread evenly over the input.
    segments: int = 8
    # Pause before each segment, seconds (recognition takes time).
    delay: float = 0.02
    # Hold the last segment back until the first clip is being synthesized.
    hold_last: bool = False
    # Raise a VideodubError after yielding this many segments (-1: never).
    fail_after: int = -1
    # Start on the speech ingest hands on while still extracting it (ReadsGrowingSpeech).
    reads_growing: bool = False


class FakeTranscriber:
    def __init__(self, options, recorder: Recorder) -> None:
        self.options = options
        self.recorder = recorder
        self.reads_growing_speech = options.reads_growing

    def transcribe(self, media: MediaInfo, ctx: JobContext):
        opts = self.options
        self.recorder.log("transcribe_start", 0)
        self.recorder.media_at_start.append((ctx.media, media))
        self.recorder.transcribe_started.set()
        ctx.source_lang = ctx.source_lang or "en"
        step = media.duration / opts.segments
        for i in range(opts.segments):
            if i == opts.fail_after:
                raise VideodubError("fake transcriber: lost the audio")
            time.sleep(opts.delay)
            if opts.hold_last and i == opts.segments - 1:
                self.recorder.log("transcribe_held", i)
                if not wait_or_cancel(self.recorder.tts_started, ctx, DEADLOCK_BREAKER_S):
                    self.recorder.log("transcribe_hold_timed_out", i)
            self.recorder.log("transcribe_yield", i)
            start = round(i * step + 0.05 * step, 3)
            yield Segment(id=i, start=start, end=round(start + 0.6 * step, 3),
                          source_text=f"This is test line number {i}.")
        self.recorder.transcribe_finished.set()


# -- translate -------------------------------------------------------------------------

class FakeTranslator:
    """Marks the text as translated and records each batch it was given."""

    def __init__(self, options, recorder: Recorder) -> None:
        self.options = options
        self.recorder = recorder
        self.batch_size = options.batch_size

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=False, memory_mb=1)

    def translate(self, segments: list[Segment], ctx: JobContext) -> list[Segment]:
        with self.recorder.lock:
            self.recorder.batches.append([s.id for s in segments])
        for seg in segments:
            seg.target_text = f"[{ctx.target_lang}] {seg.source_text}"
        return segments


# -- tts -------------------------------------------------------------------------------

@dataclass
class FakeTTSOptions:
    # Length of each clip (a quiet tone), seconds.
    clip_s: float = 0.3
    # Raise on this segment id (-1: never).
    fail_on: int = -1
    # The first ``hold_pairs`` even segments finish only after the odd one that follows.
    hold_pairs: int = 0
    # Segments synthesized normally before every later one waits for cancellation.
    block_after: int = -1


class FakeSynthesizer:
    """Writes a tone per line; can fail, finish out of order, or hang until cancelled."""

    rate = 24000

    def __init__(self, options, recorder: Recorder) -> None:
        self.options = options
        self.recorder = recorder
        self.calls = 0
        self.lock = threading.Lock()

    def worker_hint(self) -> WorkerHint:
        # Like a network provider: not limited by CPUs, so ``tts.workers`` decides.
        return WorkerHint(cpu_bound=False, memory_mb=1)

    def synthesize(self, segment: Segment, ctx: JobContext) -> Segment:
        import soundfile

        opts = self.options
        rec = self.recorder
        rec.log("tts_start", segment.id)
        rec.tts_started.set()
        with self.lock:
            self.calls += 1
            call = self.calls
        if segment.id == opts.fail_on:
            raise RuntimeError(f"fake tts failed on segment {segment.id}")
        if 0 <= opts.block_after < call:
            wait_or_cancel(threading.Event(), ctx, DEADLOCK_BREAKER_S * 3)
        if segment.id % 2 == 0 and segment.id // 2 < opts.hold_pairs:
            if not wait_or_cancel(rec.done_event(segment.id + 1), ctx, DEADLOCK_BREAKER_S):
                rec.log("tts_hold_timed_out", segment.id)
        t = np.arange(int(opts.clip_s * self.rate)) / self.rate
        audio = (0.3 * np.sin(2 * np.pi * (300 + 20 * segment.id) * t)).astype(np.float32)
        clips = ctx.work_dir / "fake_clips"
        clips.mkdir(exist_ok=True)
        path = clips / f"{segment.id:05d}.wav"
        soundfile.write(str(path), audio, self.rate)
        segment.audio_path = str(path)
        segment.synth_duration = opts.clip_s
        rec.log("tts_done", segment.id)
        rec.done_event(segment.id).set()
        return segment


# -- mix -------------------------------------------------------------------------------

class RecordingMixer(DuckMixer):
    """The real duck mixer, noting the order in which clips reach it."""

    def __init__(self, options, recorder: Recorder) -> None:
        super().__init__(options)
        self.recorder = recorder

    def mix(self, segments, media: MediaInfo, ctx: JobContext) -> Path:
        def noted():
            for seg in segments:
                self.recorder.log("mix_received", seg.id)
                yield seg

        return super().mix(noted(), media, ctx)


class FakeStages:
    """The plugin object: registers the fakes; each job's stages share ``self.recorder``."""

    def __init__(self) -> None:
        self.recorder = Recorder()

    def reset(self) -> Recorder:
        self.recorder = Recorder()
        return self.recorder

    @hookimpl
    def register_transcribers(self, register):
        register("fake", lambda o: FakeTranscriber(o, self.recorder), FakeTranscribeOptions,
                 description="test: timed fake segments")

    @hookimpl
    def register_translators(self, register):
        register("fake", lambda o: FakeTranslator(o, self.recorder), None,
                 description="test: records batches")

    @hookimpl
    def register_tts(self, register):
        register("fake", lambda o: FakeSynthesizer(o, self.recorder), FakeTTSOptions,
                 description="test: tones, failures, out-of-order finishes")

    @hookimpl
    def register_mixers(self, register):
        register("recording_duck", lambda o: RecordingMixer(o, self.recorder), DuckMixOptions,
                 description="test: duck mixer that records arrival order")


PLUGIN_NAME = "videodub-test-fakes"


def register_builtins_and_fakes(pm, fakes: FakeStages) -> None:
    for module in BUILTIN_MODULES:
        pm.register(importlib.import_module(module), name=module.rsplit(".", 1)[1])
    pm.register(fakes, name=PLUGIN_NAME)
    pm.check_pending()


def main() -> None:
    """The videodub command line, with the fake stages added to the installed plugins."""
    import signal

    from videodub import cli
    from videodub.plugins import get_plugin_manager

    # A background job may start with SIGINT ignored; a user's terminal never does.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    get_plugin_manager().register(FakeStages(), name=PLUGIN_NAME)
    cli.main()


if __name__ == "__main__":
    main()
