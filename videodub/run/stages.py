"""What each stage's thread does in a job: pull segments from the pipe before it, call the
stage, push the results to the pipe after it, and keep its counters.

The order is fixed: ingest -> transcribe -> translate -> align -> tts -> mix, then mux once
the mix is whole. Stages that work per item (translate batches, tts clips) run a worker pool
(``ordered_pool``) and still hand results on in input order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
import time
from pathlib import Path
from typing import Any

from videodub.errors import VideodubError
from videodub.model import (JobContext, MediaInfo, ReadsGrowingSpeech, RefitsClips,
                            RegroupsLines, Segment, StreamsLines, UsesSpeakingRate)
from videodub.run.voice import apply_on_suspect, measure_speaking_rate, refit_clip
from videodub.run.outputs import Outputs
from videodub.run.stats import StageStats
from videodub.run.streams import Pipe, ordered_pool, waited, waiting


@dataclass
class Pipeline:
    """One job's stage loops and the state they share; ``plan(stage, pending)`` sizes a
    stage's pool and ``finish(stats)`` closes a stage's counters."""

    stages: dict[str, Any]  # stage -> the object the job runs (cache wrappers included)
    ctx: JobContext
    input_path: str
    target_lang: str
    source_lang: str | None
    stats: dict[str, StageStats]
    outputs: Outputs
    plan: Callable[..., int]
    finish: Callable[[StageStats], None]
    queue_size: int = 64
    on_suspect: str = "keep_original"  # transcribe.on_suspect
    shortener: Any = None  # the translator, when it can shorten a line (ShortensLines)
    source_segments: list[Segment] = field(default_factory=list)
    target_segments: list[Segment] = field(default_factory=list)
    mixed_audio: Path | None = None

    def __post_init__(self) -> None:
        self.media_ready = threading.Event()
        # The speech audio while ingest still extracts it, for a transcriber that reads it so.
        self.speech_ready = threading.Event()
        self.early_media: MediaInfo | None = None
        self.ctx.speech_started = self._speech_started
        self.to_translate, self.to_align, self.to_tts, self.to_mix = (
            Pipe(self.ctx, self.queue_size) for _ in range(4))

    def streaming_stages(self) -> list[tuple[str, Callable[[], None]]]:
        """The stages that run at once, each in its own thread; mux runs after them."""
        return [("ingest", self.ingest), ("transcribe", self.transcribe),
                ("translate", self.translate), ("align", self.align), ("tts", self.tts),
                ("mix", self.mix)]

    def _wait_for_media(self, early: bool = False) -> MediaInfo:
        """Ingest's result; with ``early``, the media handed on while the speech is still
        being extracted may do."""
        while not (self.speech_ready if early else self.media_ready).wait(0.1):
            self.ctx.check_cancelled()
        media = self.ctx.media if self.media_ready.is_set() else self.early_media
        assert media is not None
        return media

    def _speech_started(self, media: MediaInfo) -> None:
        self.early_media = media
        self.speech_ready.set()

    def ingest(self) -> None:
        st = self.stats["ingest"]
        self.plan("ingest", pending=1)
        st.begin()
        self.ctx.media = self.stages["ingest"].ingest(Path(self.input_path), self.ctx)
        st.advance()
        self.finish(st)
        self.media_ready.set()
        self.speech_ready.set()

    def transcribe(self) -> None:
        ctx = self.ctx
        transcriber = self.stages["transcribe"]
        media = self._wait_for_media(early=isinstance(transcriber, ReadsGrowingSpeech)
                                     and transcriber.reads_growing_speech)
        st = self.stats["transcribe"]
        st.total = media.duration
        self.plan("transcribe", pending=1)
        st.begin()
        for seg in transcriber.transcribe(media, ctx):
            ctx.check_cancelled()
            self.source_segments.append(seg)
            st.done = min(seg.end, media.duration)
            st.items += 1
            self.to_translate.put(seg)
        st.done = media.duration
        if not self.source_segments:
            raise VideodubError(f"no speech found in {Path(self.input_path).name}")
        if ctx.source_lang is None:
            ctx.source_lang = self.source_lang
        self.stats["translate"].total = len(self.source_segments)
        self.outputs.write_source_srt(self.source_segments, ctx.source_lang)
        self.finish(st)
        self.to_translate.close()

    def translate(self) -> None:
        translator = self.stages["translate"]
        st = self.stats["translate"]
        batch_size = translator.batch_size

        aligner = self.stages["align"]
        lines: Iterable[Segment] = waited(self.to_translate, st)
        if isinstance(aligner, RegroupsLines):
            lines = aligner.regroup(lines)

        def batches() -> Iterator[list[Segment]]:
            batch: list[Segment] = []
            for seg in lines:
                st.begin()
                batch.append(seg)
                if batch_size is not None and len(batch) >= batch_size:
                    yield batch
                    batch = []
            if batch:
                yield batch

        def run_batch(batch: list[Segment]) -> tuple[int, list[Segment]]:
            return len(batch), translator.translate(batch, self.ctx)

        def streamed() -> Iterator[tuple[int, list[Segment]]]:
            """(lines taken in since the last line out, [that line]), from a translator that
            streams (``StreamsLines``); its last pair counts the lines it left untranslated."""
            taken = [0]

            def counted() -> Iterator[Segment]:
                for seg in lines:
                    st.begin()
                    taken[0] += 1
                    yield seg

            passed = 0
            for seg in translator.translate_stream(counted(), self.ctx):
                yield taken[0] - passed, [seg]
                passed = taken[0]
            yield taken[0] - passed, []

        if isinstance(translator, StreamsLines):
            self.plan("translate", pending=1)
            translated = streamed()
        else:
            translated = ordered_pool(run_batch, batches(), self.plan("translate"), self.ctx, st,
                                      "translate")
        try:
            for n_in, result in translated:
                for seg in result:
                    seg.id = len(self.target_segments)
                    self.target_segments.append(seg)
                    self.to_align.put(seg)
                st.advance(n_in, items=n_in)
        finally:
            # Closed now, not when a failure's traceback lets go of this frame: the pool's
            # threads end with the stage.
            translated.close()
        st.begin()
        for later in ("align", "tts", "mix"):
            self.stats[later].total = len(self.target_segments)
        self.finish(st)
        self.to_align.close()

    def align(self) -> None:
        aligner = self.stages["align"]
        st = self.stats["align"]
        self.plan("align", pending=1)
        # Lines are placed on the source's speech (``timing.source_regions``): the whole
        # extraction first, even when recognition started on part of it.
        self._wait_for_media()
        # A line's slot ends where the next one starts, so each line waits for the next.
        held: Segment | None = None
        measured = False  # the voice is measured on the first line long enough for it
        for seg in waiting(self.to_align, st):
            st.begin()
            if (isinstance(aligner, UsesSpeakingRate) and aligner.wants_measured_rate
                    and self.ctx.speaking_rate is None and not measured):
                # Waiting on the TTS (a clip of this line), not align's own work: a slow
                # voice shows as tts time, not as an align regression.
                t0 = time.monotonic()
                measured = measure_speaking_rate(self.stages["tts"], seg, self.ctx) is not None
                st.waited(time.monotonic() - t0)
            if held is not None:
                self.to_tts.put(aligner.align(held, seg.start, self.ctx))
                st.advance()
            held = seg
        st.begin()
        if held is not None:
            assert self.ctx.media is not None
            self.to_tts.put(aligner.align(held, max(self.ctx.media.duration, held.end), self.ctx))
            st.advance()
        # Written once every line has its final timing (align snaps lines to the speech;
        # with a translator that streams, earlier lines are aligned before the last is in).
        self.outputs.write_target_srt(self.target_segments, self.target_lang)
        self.finish(st)
        self.to_tts.close()

    def tts(self) -> None:
        synth = self.stages["tts"]
        st = self.stats["tts"]
        workers = self.plan("tts")

        def started(items: Iterable[Segment]) -> Iterator[Segment]:
            for seg in waited(items, st):
                st.begin()
                yield seg

        aligner = self.stages["align"]

        def one(seg: Segment) -> Segment:
            if not apply_on_suspect(seg, self.on_suspect):
                return seg  # the original plays there, or nothing
            seg = synth.synthesize(seg, self.ctx)
            if isinstance(aligner, RefitsClips):
                seg = refit_clip(seg, aligner, synth, self.shortener, self.ctx, workers > 1)
            return seg

        for seg in ordered_pool(one, started(self.to_tts), workers, self.ctx, st, "tts"):
            st.advance()
            self.to_mix.put(seg)
        st.begin()
        self.finish(st)
        self.to_mix.close()

    def mix(self) -> None:
        st = self.stats["mix"]
        self.plan("mix", pending=1)

        def feed() -> Iterator[Segment]:
            for seg in waiting(self.to_mix, st):
                st.begin()
                yield seg
                st.advance()

        self._wait_for_media()
        assert self.ctx.media is not None
        self.mixed_audio = self.stages["mix"].mix(feed(), self.ctx.media, self.ctx)
        st.begin()
        self.finish(st)

    def mux(self) -> Path:
        """The dubbed video, from the whole mix (run after every other stage has ended)."""
        assert self.ctx.media is not None and self.mixed_audio is not None
        st = self.stats["mux"]
        self.plan("mux", pending=1)
        st.begin()
        # The transcript's subtitles, for a muxer that adds them as a track of their own.
        source_srt = self.outputs.paths.get("source_srt")
        if source_srt is not None and source_srt != self.outputs.paths["target_srt"]:
            self.ctx.artifacts["source_subtitles"] = source_srt
        video = self.stages["mux"].mux(self.ctx.media, self.mixed_audio,
                                       self.outputs.paths["target_srt"],
                                       self.outputs.video_path(self.target_lang), self.ctx)
        st.advance()
        self.finish(st)
        self.outputs.paths["video"] = video
        return video
