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
from videodub.model import JobContext, Segment
from videodub.timing import PredictingAligner, refit_rate


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


class SemanticAligner(PredictingAligner):
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
