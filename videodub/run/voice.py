"""Decisions the tts stage makes around the synthesizer: how fast the job's voice speaks
(measured once, for aligners that predict clip lengths), what happens to a line the
recogniser doubts, and a clip measured and made again for an aligner that refits clips."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from videodub.model import JobContext, RefitsClips, Segment, ShortensLines
from videodub.run.candidates import side_by_side

log = logging.getLogger(__name__)

# Shortest line the voice is measured on: on a few words the rate is mostly noise.
MIN_CALIBRATION_CHARS = 20


def measure_speaking_rate(synth: Any, sample: Segment, ctx: JobContext) -> float | None:
    """Characters per second of the job's voice at its natural rate, measured by synthesizing
    the first line of at least ``MIN_CALIBRATION_CHARS`` once, at natural speed, through the
    job's synthesizer as the job runs it: with the clip cache on, that line's clip is then
    reused when it is asked for at natural speed (as most lines are), so measuring costs no
    extra synthesis, and a re-run none at all. Sets ``ctx.speaking_rate``."""
    text = " ".join((sample.target_text or "").split())
    if len(text) < MIN_CALIBRATION_CHARS:
        return None
    probe = dataclasses.replace(sample, target_text=text, tts_rate=1.0, flags=[], extra={},
                                audio_path=None, synth_duration=None)
    probe = synth.synthesize(probe, ctx)
    if not probe.synth_duration or probe.synth_duration <= 0:
        return None
    ctx.speaking_rate = round(len(text) / probe.synth_duration, 3)
    log.info("tts voice speaks %.1f characters/s (measured)", ctx.speaking_rate)
    ctx.note(f"align: the voice speaks {ctx.speaking_rate:.1f} characters/s (measured on "
             f"line {sample.id})")
    return ctx.speaking_rate


def is_suspect(segment: Segment) -> bool:
    return any(f.startswith("suspect_") for f in segment.flags)


def apply_on_suspect(segment: Segment, mode: str) -> bool:
    """Whether ``segment`` is to be dubbed. A doubtful line (``suspect_*`` flags) is not, unless
    ``mode`` is ``dub``: it is flagged ``kept_original`` (the mixer leaves the original audio
    there) or ``dropped_suspect`` (silence)."""
    if mode == "dub" or not is_suspect(segment):
        return True
    flag = "kept_original" if mode == "keep_original" else "dropped_suspect"
    if flag not in segment.flags:  # a line refitted goes through here again
        segment.flags.append(flag)
    return False


# Synthesis passes one line may take when its aligner refits it (rate, shorter text, rate).
MAX_REFITS = 3


def refit_clip(seg: Segment, aligner: RefitsClips, synth: Any,
               shortener: ShortensLines | None, ctx: JobContext,
               concurrently: bool = False) -> Segment:
    """Let the aligner look at the clip and ask for it again: at another rate, or from a
    shorter translation when it does not fit even at the speed cap (asked of the translator
    once; when it cannot, the line is flagged and the mixer reports what still overflows).
    An aligner that ``compares_candidates`` (the quality profile's) gets both ways out made
    side by side instead (``run/candidates.py``)."""
    for _ in range(MAX_REFITS):
        action = aligner.refit(seg, ctx)
        if (action == "shorten" and shortener is not None
                and getattr(aligner, "compares_candidates", False)):
            return side_by_side(seg, aligner, synth, shortener, ctx, concurrently)
        if action == "shorten":
            budget = int(seg.extra.get("char_budget", 0))
            text = shortener.shorten(seg, budget, ctx) if shortener is not None else None
            seg.extra["shorten_asked"] = True
            if text and len(text) < len(seg.target_text or ""):
                seg.extra["longer_text"] = seg.target_text
                seg.target_text = text
                seg.tts_rate = 1.0
                seg.flags.append("shortened")
            else:
                seg.flags.append("shorten_declined")
                continue
        elif action != "resynthesize":
            break
        seg = synth.synthesize(seg, ctx)
    return seg
