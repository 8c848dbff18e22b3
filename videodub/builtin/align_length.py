"""align=length: fit each line to its time slot by predicting its spoken length from the text,
in one pass (the speed profile's aligner).

Each line is first moved onto the speech measured in the source (``videodub.timing``). The slot
runs from that onset to the line's end, or on into the silence before the next line when
``borrow_silence`` is on. The predicted duration (characters / the voice's speaking rate,
measured on this job's voice once, else a table) sets the rate the TTS is asked for. The TTS is
only asked to speed up beyond a margin for the prediction's error; the mixer measures the real
clip and speeds up the rest, still within ``max_speed``, so a clip that fits at natural speed is
not sped up on a wrong guess. What does not fit is recorded as overflow, never squeezed by an
uncapped speed-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from videodub import hookimpl
from videodub.model import JobContext, Segment, WorkerHint
from videodub.timing import set_slot, snap, speaking_rate, text_chars

# How far a prediction from the speaking rate may be off (one sentence against the voice's
# average): the TTS is asked for a speed-up only beyond it.
PREDICTION_MARGIN = 1.12


@dataclass
class LengthAlignOptions:
    # Seconds kept free before the next line when borrowing silence.
    gap: float = 0.1
    # Override the speaking rate (characters per second) for the target language; 0 = measured.
    chars_per_second: float = 0.0


class LengthAligner:
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
        needed = predicted / slot if slot > 0 else opts.max_speed
        segment.tts_rate = round(min(max(needed / PREDICTION_MARGIN, 1.0), opts.max_speed), 3)
        segment.max_speed = opts.max_speed
        segment.extra["predicted_s"] = round(predicted, 3)
        segment.extra["min_speed"] = opts.min_speed
        return segment


@hookimpl
def register_aligners(register):
    register("length", LengthAligner, LengthAlignOptions,
             description="Predict spoken length from the voice's measured rate; one pass.")
