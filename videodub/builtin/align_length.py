"""align=length: fit each line to its time slot by predicting its spoken length from the text.

The slot runs from the line's start to its end, or on into the silence before the next line
when ``borrow_silence`` is on. The predicted duration (characters / the language's speaking
rate) sets the rate the TTS is asked for, never above ``max_speed``; the mixer later measures
the real clip and stretches what is left, still within ``max_speed``. What does not fit even
then is recorded as overflow, never squeezed by an uncapped speed-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from videodub import hookimpl
from videodub.languages import primary
from videodub.model import JobContext, Segment, WorkerHint

# Characters per second of natural speech (spaces included), by language; measured on
# espeak-ng at its default rate and in line with published speaking-rate studies.
CHARS_PER_SECOND = {
    "en": 14.5, "es": 15.5, "fr": 15.0, "it": 15.0, "pt": 15.0, "de": 14.0, "nl": 14.0,
    "ru": 13.5, "pl": 13.5, "tr": 14.0, "sv": 14.0, "ja": 8.0, "zh": 5.5, "ko": 7.0,
}
DEFAULT_CPS = 14.0


@dataclass
class LengthAlignOptions:
    # Seconds kept free before the next line when borrowing silence.
    gap: float = 0.1
    # Override the speaking rate (characters per second) for the target language; 0 = table.
    chars_per_second: float = 0.0


class LengthAligner:
    def __init__(self, options) -> None:
        self.options = options

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=1, max_concurrency=1,
                          reason="needs each line's successor, in order")

    def predicted_duration(self, text: str, lang: str) -> float:
        cps = self.options.chars_per_second or CHARS_PER_SECOND.get(primary(lang), DEFAULT_CPS)
        return len(" ".join(text.split())) / cps

    def align(self, segment: Segment, next_start: float, ctx: JobContext) -> Segment:
        opts = self.options
        end = segment.end
        if opts.borrow_silence and next_start - opts.gap > end:
            end = next_start - opts.gap
        end = min(end, max(next_start, segment.start + 0.05)) if next_start > segment.start else end
        segment.slot_start = segment.start
        segment.slot_end = round(max(end, segment.start + 0.05), 3)
        slot = segment.slot_end - segment.slot_start
        predicted = self.predicted_duration(segment.target_text or "", ctx.target_lang)
        needed = predicted / slot if slot > 0 else opts.max_speed
        segment.tts_rate = round(min(max(needed, 1.0), opts.max_speed), 3)
        segment.max_speed = opts.max_speed
        segment.extra["predicted_s"] = round(predicted, 3)
        return segment


@hookimpl
def register_aligners(register):
    register("length", LengthAligner, LengthAlignOptions,
             description="Predict spoken length from text; speed up within align.max_speed.")
