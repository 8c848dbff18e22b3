"""Two decisions the tts stage makes around the synthesizer: how fast the job's voice speaks
(measured once, for aligners that predict clip lengths), and what happens to a line the
recogniser doubts."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from videodub.model import JobContext, Segment

log = logging.getLogger(__name__)

# Shortest text the voice is measured on: on a few words the rate is mostly noise.
MIN_CALIBRATION_CHARS = 40
CALIBRATION_ID = -1


def measure_speaking_rate(synth: Any, sample: Segment, ctx: JobContext) -> float | None:
    """Characters per second of the job's voice at its natural rate, measured by synthesizing
    the first line's target text (repeated up to ``MIN_CALIBRATION_CHARS``) once. The clip goes
    through the job's synthesizer as the job runs it, so the clip cache keeps it and a re-run
    does not synthesize it again. Sets ``ctx.speaking_rate``."""
    text = " ".join((sample.target_text or "").split())
    if not text:
        return None
    words = text
    while len(words) < MIN_CALIBRATION_CHARS:
        words = f"{words} {text}"
    probe = dataclasses.replace(sample, id=CALIBRATION_ID, target_text=words, tts_rate=1.0,
                                flags=[], extra={}, audio_path=None, synth_duration=None)
    probe = synth.synthesize(probe, ctx)
    if not probe.synth_duration or probe.synth_duration <= 0:
        return None
    ctx.speaking_rate = round(len(words) / probe.synth_duration, 3)
    log.info("tts voice speaks %.1f characters/s (measured)", ctx.speaking_rate)
    ctx.note(f"align: the voice speaks {ctx.speaking_rate:.1f} characters/s (measured)")
    return ctx.speaking_rate


def is_suspect(segment: Segment) -> bool:
    return any(f.startswith("suspect_") for f in segment.flags)


def apply_on_suspect(segment: Segment, mode: str) -> bool:
    """Whether ``segment`` is to be dubbed. A doubtful line (``suspect_*`` flags) is not, unless
    ``mode`` is ``dub``: it is flagged ``kept_original`` (the mixer leaves the original audio
    there) or ``dropped_suspect`` (silence)."""
    if mode == "dub" or not is_suspect(segment):
        return True
    segment.flags.append("kept_original" if mode == "keep_original" else "dropped_suspect")
    return False
