"""align=semantic: whole sentences as lines, then timed as align=hybrid does (the quality
profile's aligner).

Before translation, the recogniser's fragments are regrouped into sentences with their
punctuation and the pauses between them (``videodub.grouping``): no line starts or ends
mid-sentence, and a sentence longer than ``max_line_s`` is split at its longest pause between
words (word timing comes with ``transcribe.word_timestamps``, on unless effort is low). Each
line is then placed, predicted, measured, re-rated or shortened exactly as by align=hybrid
(``videodub.timing``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from videodub import hookimpl
from videodub.grouping import sentences
from videodub.model import JobContext, Segment, WorkerHint
from videodub.timing import refit_rate, set_slot, snap, speaking_rate, text_chars


@dataclass
class SemanticAlignOptions:
    # Seconds kept free before the next line when borrowing silence.
    gap: float = 0.1
    # Override the speaking rate (characters per second) for the first guess; 0 = measured.
    chars_per_second: float = 0.0
    # Ask the translator for a shorter line when a clip does not fit even at max_speed.
    shorten: bool = True
    # Longest line a sentence may make before it is split at a pause, seconds.
    max_line_s: float = 8.0
    # A pause at least this long between fragments ends a line, seconds.
    pause_s: float = 0.7
    # A line that does not fit even at max_speed: make the rerated and the shortened clip
    # side by side and keep the lower sync cost (false: one after the other, as hybrid).
    candidates: bool = True

    def __post_init__(self) -> None:
        if self.max_line_s < 1.0:
            raise ValueError(f"max_line_s must be >= 1.0, got {self.max_line_s}")


class SemanticAligner:
    def __init__(self, options) -> None:
        self.options = options

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=1, max_concurrency=1,
                          reason="needs each line's successor, in order")

    @property
    def wants_measured_rate(self) -> bool:
        return not self.options.chars_per_second

    def predicted_duration(self, text: str, ctx: JobContext) -> float:
        return text_chars(text) / speaking_rate(ctx, self.options.chars_per_second)

    def align(self, segment: Segment, next_start: float, ctx: JobContext) -> Segment:
        opts = self.options
        if opts.snap_to_speech:
            next_start = snap(segment, next_start, ctx)
        slot = set_slot(segment, next_start, opts.borrow_silence, opts.gap)
        predicted = self.predicted_duration(segment.target_text or "", ctx)
        segment.tts_rate = round(min(max(predicted / slot, 1.0), opts.max_speed), 3)
        segment.max_speed = opts.max_speed
        segment.extra["predicted_s"] = round(predicted, 3)
        segment.extra["min_speed"] = opts.min_speed
        return segment

    @property
    def compares_candidates(self) -> bool:
        return bool(self.options.candidates)

    def refit(self, segment: Segment, ctx: JobContext) -> str:
        return refit_rate(segment, self.options.shorten)

    def regroup(self, segments: Iterable[Segment]) -> Iterator[Segment]:
        return sentences(segments, max_s=self.options.max_line_s, pause_s=self.options.pause_s)


@hookimpl
def register_aligners(register):
    register("semantic", SemanticAligner, SemanticAlignOptions,
             description="Whole sentences as lines (split at pauses), then timed as hybrid.")
