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
from videodub.timing import PredictingAligner

# How far a prediction from the speaking rate may be off (one sentence against the voice's
# average): the TTS is asked for a speed-up only beyond it.
PREDICTION_MARGIN = 1.12


@dataclass
class LengthAlignOptions:
    # Seconds kept free before the next line when borrowing silence.
    gap: float = 0.1
    # Override the speaking rate (characters per second) for the target language; 0 = measured.
    chars_per_second: float = 0.0


class LengthAligner(PredictingAligner):
    margin = PREDICTION_MARGIN


@hookimpl
def register_aligners(register):
    register("length", LengthAligner, LengthAlignOptions,
             description="Predict spoken length from the voice's measured rate; one pass.")
