"""Where each dubbed clip goes in the speech track, and at what speed: the rules that keep a
dub in sync without two voices at once.

- A clip that fits its slot is never sped up; one much shorter than its line may be slowed
  down to ``min_speed`` (so the dub does not stop seconds before the speaker), and it starts
  at the line's measured onset.
- A clip longer than its slot is sped up (pitch-preserving) within ``max_speed``.
- A clip never starts before the previous one has ended (plus a short gap): when the previous
  line ran long, this one is pushed later, and the push is recorded with the line. A clip
  runs at most ``MAX_PUSH_S`` past its slot: what is left beyond is cut with a fade and
  recorded (``truncated_s``), so one long line cannot drag every later line out of sync.
- The last clip ends before the media does: it is moved earlier into the silence before it,
  and sped up by at most a quarter beyond the cap; only then is it cut.
- A clip's nucleus (its first strong sound, ``speech_regions.nucleus``) is laid on the
  speaker's (``nucleus_s``, found by align), within ``MAX_NUCLEUS_SHIFT_S``: a line whose
  voice opens softly ("Th|ird") starts that much earlier, so it is not heard late; the shift
  never changes the clip's speed, never starts it before the previous clip has ended, and
  moves it later only into its own slot's spare time.

Mixers share this module (it is not one mixer's business), and the quality figures read what
it records on each segment (``placed_start``, ``pushed_s``, ``natural_s``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videodub.audio import time_stretch
from videodub.model import JobContext, Segment
from videodub.speech_regions import ABSOLUTE_DB, NUCLEUS_WINDOW_S, frame_db, nucleus, to_mono

# Silence kept between two dubbed clips, seconds.
GAP_S = 0.08
# Slow a clip down only when it is shorter than this share of its line.
SLOW_BELOW = 0.9
# How far past its slot a clip may run (pushing the next line): beyond it, it is cut.
MAX_PUSH_S = 0.5
# The last line may go this much over the speed cap to end with the media.
END_STRETCH = 1.25
FADE_S = 0.05
# How far a clip is moved to lay its nucleus on the speaker's, at most.
MAX_NUCLEUS_SHIFT_S = 0.15


@dataclass
class Placement:
    start: float
    stretch: float  # >1 sped up, <1 slowed down (the clip's own speed change)
    overflow: float  # seconds past the slot's end
    pushed: float  # seconds the start was moved later than the slot's start
    cut_at_end: float  # seconds that would still run past the media's end
    truncated: float = 0.0  # seconds of the clip left out to keep the next line in sync


class ClipPlacer:
    """Places clips in start order; remembers where the previous one ended."""

    def __init__(self, media_end: float, gap: float = GAP_S) -> None:
        self.media_end = media_end
        self.gap = gap
        self.busy_until = 0.0

    def plan(self, segment: Segment, duration: float, lead: float | None = None) -> Placement:
        """Where and how fast the clip of ``segment`` (``duration`` seconds as synthesized,
        its nucleus ``lead`` seconds in: :func:`clip_nucleus`) plays."""
        slot_start = segment.slot_start if segment.slot_start is not None else segment.start
        slot_end = segment.slot_end if segment.slot_end is not None else segment.end
        rate = max(segment.tts_rate, 1e-3)
        max_stretch = max(1.0, segment.max_speed / rate)
        min_speed = float(segment.extra.get("min_speed", 1.0))
        after_previous = self.busy_until + self.gap if self.busy_until else 0.0
        earliest = max(slot_start, after_previous)
        room = max(slot_end - earliest, 1e-3)
        line = max(segment.end - segment.start, 1e-3)
        if duration > room:
            stretch = min(duration / room, max_stretch)
        elif duration < SLOW_BELOW * line and min_speed < 1.0 and rate <= 1.0:
            stretch = max(duration / line, min_speed / rate)
        else:
            stretch = 1.0
        length = duration / stretch
        start = earliest
        nucleus_at = segment.extra.get("nucleus_s")
        if nucleus_at is not None and lead is not None:
            want = nucleus_at - lead / stretch - start
            shift = min(MAX_NUCLEUS_SHIFT_S, max(-MAX_NUCLEUS_SHIFT_S, want))
            room_after = min(slot_end, self.media_end) - (start + length)
            shift = max(shift, after_previous - start) if shift < 0 else min(
                shift, max(0.0, room_after))
            start += shift
            segment.extra["nucleus_shift_s"] = round(float(shift), 3)
        if start + length > self.media_end:
            # The last line: earlier into the silence before it, then a little faster.
            start = max(after_previous, self.media_end - length)
            if start + length > self.media_end:
                stretch = min(duration / max(self.media_end - start, 1e-3),
                              max_stretch * END_STRETCH)
                if stretch > max_stretch:
                    segment.extra["beyond_cap_for_media_end"] = True
                length = duration / stretch
        # Never later than the push bound (nor the media's end): the rest is cut, with a fade,
        # so one long line cannot drag every later line out of sync.
        limit = min(max(slot_end, slot_start) + MAX_PUSH_S, self.media_end)
        truncated = max(0.0, start + length - max(limit, start))
        length -= truncated
        end = start + length
        self.busy_until = max(self.busy_until, end)
        # Plain floats: these go into segments.json and the report.
        return Placement(start=round(float(start), 4), stretch=round(float(stretch), 4),
                         overflow=round(float(max(0.0, end - slot_end)), 3),
                         pushed=round(float(max(0.0, earliest - slot_start)), 3),
                         cut_at_end=round(float(max(0.0, end - self.media_end)), 3),
                         truncated=round(float(truncated), 3))

    def place(self, segment: Segment, audio: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
        """The clip as it will play and its start; the decision is recorded on ``segment``."""
        p = self.plan(segment, audio.shape[-1] / rate, audio_nucleus(audio, rate))
        return render(segment, time_stretch(audio, rate, p.stretch), rate, p), p.start


def audio_nucleus(audio: np.ndarray, rate: int) -> float | None:
    """Seconds from the start of mono ``audio`` to its nucleus; None when it starts silent
    for longer than the nucleus is looked for."""
    db = frame_db(audio[: int(NUCLEUS_WINDOW_S * rate)], rate)
    return nucleus(db, 0.0) if db.size and db.max() > ABSOLUTE_DB else None


def clip_nucleus(path: Path) -> tuple[float, float | None]:
    """A clip file's duration and :func:`audio_nucleus` (its head alone is read)."""
    import soundfile

    with soundfile.SoundFile(str(path)) as f:
        rate, frames = f.samplerate, f.frames
        head = f.read(int(NUCLEUS_WINDOW_S * rate), dtype="float32", always_2d=True)
    return frames / rate, audio_nucleus(to_mono(head), rate)


def render(segment: Segment, audio: np.ndarray, rate: int, p: Placement) -> np.ndarray:
    """The clip, already stretched as ``p`` planned, cut as planned (this part may run in a
    pool: planning is in start order, rendering need not be); the decision is recorded on
    ``segment``."""
    if p.truncated > 0:
        keep = max(0, audio.shape[-1] - int(round(p.truncated * rate)))
        audio = audio[:keep].copy()
        fade = min(keep, int(FADE_S * rate))
        if fade:
            audio[keep - fade:] *= np.linspace(1.0, 0.0, fade, dtype=audio.dtype)
        segment.extra["truncated_s"] = p.truncated
        segment.flags.append("truncated")
    segment.stretch = p.stretch
    segment.overflow = p.overflow
    segment.extra["placed_start"] = p.start
    segment.extra["placed_end"] = round(float(p.start + audio.shape[-1] / rate), 4)
    if p.pushed > 0.005:
        segment.extra["pushed_s"] = p.pushed
    if p.cut_at_end > 0:
        segment.extra["cut_at_end_s"] = p.cut_at_end
    if p.overflow > 0.05 and "overflow" not in segment.flags:
        segment.flags.append("overflow")
    return audio


def placed(segments: Iterable[Segment], rate: int, ctx: JobContext, placer: ClipPlacer,
           on_unvoiced: Callable[[Segment], None] | None = None, workers: int = 2,
           ahead: int = 8, fine: bool = True) -> Iterator[tuple[Segment, np.ndarray, float]]:
    """Clips placed (in start order, by ``placer``), then read, resampled and stretched by a
    small pool, handed on in order with their start: when clips arrive in a burst (after a
    whole-transcript translation), their preparation runs on every CPU instead of one after
    another in the mix's thread (scipy and Rubber Band release the interpreter lock); a clip
    that arrives alone is handed on as soon as it is ready. A feeder thread takes clips from
    upstream, so waiting for the next one never holds back the one before. Lines without a
    clip go to ``on_unvoiced`` as they pass (ahead of the mix). ``fine`` picks the finer
    time-stretch engine (``videodub.audio.time_stretch``)."""
    import queue
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from videodub.audio import read_clip

    end = object()
    stop = threading.Event()
    ready: queue.Queue = queue.Queue(maxsize=ahead)

    def put(item: tuple) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def prepare(seg: Segment, p: Placement) -> np.ndarray:
        return render(seg, read_clip(Path(seg.audio_path), rate, p.stretch, fine), rate, p)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="videodub-mix-clip") as pool:
        def feed() -> None:
            try:
                for seg in segments:
                    if stop.is_set():
                        return
                    if not seg.audio_path:
                        if on_unvoiced is not None:
                            on_unvoiced(seg)
                        continue
                    duration, lead = clip_nucleus(Path(seg.audio_path))
                    p = placer.plan(seg, duration, lead)
                    put((seg, pool.submit(prepare, seg, p), p.start))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                put((None, exc, 0.0))
                return
            put((None, end, 0.0))

        feeder = threading.Thread(target=feed, name="videodub-mix-feed", daemon=True)
        feeder.start()
        try:
            while True:
                try:
                    seg, job, start = ready.get(timeout=0.1)
                except queue.Empty:
                    ctx.check_cancelled()
                    continue
                if seg is None:
                    if job is end:
                        return
                    raise job
                yield seg, job.result(), start
        finally:
            stop.set()
            feeder.join(timeout=1.0)
