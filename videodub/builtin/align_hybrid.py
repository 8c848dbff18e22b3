"""align=hybrid: predict, synthesize, measure, then re-rate (the balanced profile's aligner).

Each line is placed on the speech measured in the source and given its slot as align=length
does, and the TTS is first asked for the rate the voice's measured speaking rate predicts.
Then every clip is measured (``refit``, called by the runner after synthesis):

- a clip that fits its slot at natural speed is made again at natural speed if it was sped up
  on a wrong guess;
- a clip that does not fit is made again at exactly the rate it needs, within ``max_speed``
  (the synthesizer's own rate sounds better than stretching the audio afterwards);
- a clip that would not fit even at ``max_speed`` is sent back to the translator, once, for a
  shorter line within a character budget (``translate=openai`` can; others decline), and made
  again. What still does not fit is left to the mixer, which pushes the next line rather than
  overlap it and reports the overflow with the line's id.
"""

from __future__ import annotations

from dataclasses import dataclass

from videodub import hookimpl
from videodub.model import JobContext, Segment
from videodub.timing import PredictingAligner, refit_rate


@dataclass
class HybridAlignOptions:
    # Seconds kept free before the next line when borrowing silence.
    gap: float = 0.1
    # Override the speaking rate (characters per second) for the first guess; 0 = measured.
    chars_per_second: float = 0.0
    # Ask the translator for a shorter line when a clip does not fit even at max_speed.
    shorten: bool = True


class HybridAligner(PredictingAligner):
    def refit(self, segment: Segment, ctx: JobContext) -> str:
        return refit_rate(segment, self.options.shorten)


@hookimpl
def register_aligners(register):
    register("hybrid", HybridAligner, HybridAlignOptions,
             description="Synthesize, measure, re-rate within align.max_speed; shorten via the "
                         "translator when it can.")
