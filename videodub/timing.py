"""What every aligner does before choosing a rate: put the line on the speech actually heard in
the source, and give it its slot (its own time, plus the silence before the next line); and
what the aligners that measure clips decide once a clip exists (``refit_rate``).

Shared by the align implementations (they are built-ins and may not import each other).
"""

from __future__ import annotations

import math

from videodub.languages import primary
from videodub.model import JobContext, Segment, WorkerHint
from videodub.speech_regions import Regions, nucleus, snap_end, snap_start, source_levels
from videodub.voice_activity import source_regions_of_file, source_regions_until

# Characters per second of natural speech (spaces included), by language: the fallback until
# the job's own voice has been measured (``JobContext.speaking_rate``). espeak-ng speaks
# 17-20 (English) and 17-18 (Spanish); people speak 13-16.
CHARS_PER_SECOND = {
    "en": 16.0, "es": 16.5, "fr": 15.5, "it": 15.5, "pt": 15.5, "de": 14.5, "nl": 14.5,
    "ru": 14.0, "pl": 14.0, "tr": 14.5, "sv": 14.5, "ja": 8.0, "zh": 5.5, "ko": 7.0,
}
DEFAULT_CPS = 14.5
# How far after the recogniser's start a line's speech onset is looked for: 0.6 s, and up to
# 1.5 s for a long line (never more than 60 % of it, so it is the line's own speech).
LATE_MIN_S = 0.6
LATE_MAX_S = 1.5
# A line's nucleus (``speech_regions.nucleus``) is looked for this far after its onset at most.
MAX_NUCLEUS_S = 0.2


def text_chars(text: str | None) -> int:
    return len(" ".join((text or "").split()))


def speaking_rate(ctx: JobContext, override: float = 0.0) -> float:
    """Characters per second the voice speaks at its natural rate: the configured override,
    the job's measured rate, or the language's table value."""
    if override:
        return override
    if ctx.speaking_rate:
        return ctx.speaking_rate
    return CHARS_PER_SECOND.get(primary(ctx.target_lang), DEFAULT_CPS)


def source_regions(ctx: JobContext, until: float = math.inf) -> Regions | None:
    """The source's speech regions, good up to ``until`` seconds at least (found once per
    job, a minute at a time on long media), or None before ingest."""
    if ctx.media is None:
        return None
    if math.isinf(until):
        return source_regions_of_file(ctx.media.speech_audio)
    return source_regions_until(ctx.media.speech_audio, until)[0]


def speech_onset(start: float, end: float, regions: Regions,
                 previous_end: float | None = None) -> float:
    """The speech onset of a line the recogniser put at ``start``..``end`` (the previous
    line's speech ending at ``previous_end``, when known). A line that starts in silence has
    its speech later, before its end: without word timing, Whisper's lines often start where
    the previous sentence stopped, a second early. A line that starts where no voice is
    heard (regions found by voice), with none in its first ``LATE_MAX_S`` either, has its
    speech anywhere in its first 60 %: a recogniser that hears the audio whole puts a first
    line over a music intro at 0.0 s, seconds before the speaker."""
    late = min(LATE_MAX_S, max(LATE_MIN_S, 0.6 * (end - start)))
    if regions.by_voice and not regions.overlap(start, start + late):
        late = max(late, 0.6 * (end - start))
    return snap_start(start, regions, late=late, previous_end=previous_end)


def speaker_nucleus(db, onset: float) -> float | None:
    """Where the source's line that starts at ``onset`` becomes loud (frame levels ``db``):
    its nucleus, at most ``MAX_NUCLEUS_S`` after the onset; None past the levels' end."""
    lead = nucleus(db, onset)
    return None if lead is None else onset + min(lead, MAX_NUCLEUS_S)


def snap(segment: Segment, next_start: float, ctx: JobContext,
         previous_end: float | None = None) -> float:
    """Move ``segment`` onto the speech measured in the source (keeping the recogniser's times
    in ``extra``; ``previous_end``: where the line before it ended, snapped) and return the
    next line's start, snapped the same way."""
    # Onsets are looked for up to LATE_MAX_S after the line's start and the next one's.
    regions = source_regions(ctx, until=max(segment.end, next_start) + LATE_MAX_S + 0.5)
    if regions is None or not regions.spans:
        return next_start
    segment.extra.setdefault("asr_start", segment.start)
    segment.extra.setdefault("asr_end", segment.end)
    start = speech_onset(segment.start, segment.end, regions, previous_end)
    end = snap_end(segment.end, regions, start)
    if end > start + 0.05:
        segment.start, segment.end = round(start, 3), round(end, 3)
    # Where the speaker's line becomes loud: the clip's own nucleus is laid there
    # (``placement``), so a line that opens softly ("Th|ird") is not heard late.
    assert ctx.media is not None
    loud = speaker_nucleus(source_levels(ctx.media.speech_audio).db, segment.start)
    if loud is not None:
        segment.extra["nucleus_s"] = round(loud, 3)
    snapped_next = snap_start(next_start, regions, late=LATE_MAX_S, previous_end=segment.end)
    return snapped_next if snapped_next >= segment.start else next_start


def set_slot(segment: Segment, next_start: float, borrow_silence: bool, gap: float) -> float:
    """Give ``segment`` its slot (its own time, plus the silence up to ``gap`` before the next
    line when borrowing) and return the slot's length."""
    end = segment.end
    if borrow_silence and next_start - gap > end:
        end = next_start - gap
    if next_start > segment.start:
        end = min(end, max(next_start, segment.start + 0.05))
    segment.slot_start = segment.start
    segment.slot_end = round(max(end, segment.start + 0.05), 3)
    return segment.slot_end - segment.slot_start


# Re-synthesize only when the rate would change by more than this (espeak-ng's rate is in
# whole words per minute; smaller changes are left to the mixer's stretch).
RATE_TOLERANCE = 0.03
# Aim a shortened line at this share of what would fit at the cap.
BUDGET_MARGIN = 0.9


def refit_rate(segment: Segment, shorten: bool) -> str:
    """What to do with a synthesized clip (see ``model.RefitsClips``): ``resynthesize`` at
    natural speed if it fits its slot, at exactly the rate it needs if not (within the cap);
    ``shorten`` (once, with ``extra["char_budget"]``) if even the cap is not enough."""
    if not segment.synth_duration or segment.slot_end is None or segment.slot_start is None:
        return "keep"
    slot = max(segment.slot_end - segment.slot_start, 1e-3)
    natural = segment.synth_duration * segment.tts_rate  # the clip at rate 1.0, near enough
    segment.extra["natural_s"] = round(natural, 3)
    needed = natural / slot
    if needed > segment.max_speed * 1.02 and shorten and not segment.extra.get("shorten_asked"):
        chars = text_chars(segment.target_text)
        segment.extra["char_budget"] = max(8, int(chars * segment.max_speed / needed
                                                  * BUDGET_MARGIN))
        return "shorten"
    want = round(min(max(needed, 1.0), segment.max_speed), 3)
    if abs(want - segment.tts_rate) > RATE_TOLERANCE:
        segment.tts_rate = want
        return "resynthesize"
    return "keep"


class PredictingAligner:
    """What align=length, hybrid and semantic share: each line snapped to the speech measured
    in the source, given its slot (borrowing silence), and a first rate from the length the
    voice's measured speaking rate predicts, divided by ``margin`` (align=length's guess is
    never checked, so it leaves some room; the others measure the clip afterwards)."""

    margin = 1.0

    def __init__(self, options) -> None:
        self.options = options
        # The job and the end of the line aligned last in it (lines come in order).
        self._previous: tuple[JobContext, float] | None = None

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
            previous = self._previous[1] if self._previous and self._previous[0] is ctx else None
            next_start = snap(segment, next_start, ctx, previous)
            self._previous = (ctx, segment.end)
        slot = set_slot(segment, next_start, opts.borrow_silence, opts.gap)
        predicted = self.predicted_duration(segment.target_text or "", ctx)
        needed = predicted / slot if slot > 0 else opts.max_speed
        segment.tts_rate = round(min(max(needed / self.margin, 1.0), opts.max_speed), 3)
        segment.max_speed = opts.max_speed
        segment.extra["predicted_s"] = round(predicted, 3)
        segment.extra["min_speed"] = opts.min_speed
        return segment
