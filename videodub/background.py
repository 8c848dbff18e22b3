"""The original audio as a dub's background when no separator is used: silent wherever the
source speaks (so no original voice is heard under, or between, the lines of a dub in another
language), unchanged elsewhere (music and room tone between sentences stay), with short fades
so the cuts do not click.

The original is processed in blocks, never held whole in memory.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable
from typing import Any
from pathlib import Path

import numpy as np

from videodub.media import atomic_path
from videodub.speech_regions import Regions
from videodub.wav import wav_format

# Margin around each speech region that is also removed: the quietest onsets and tails of a
# sentence sit within a few dB of the room and escape the detector (measured: up to 120 ms).
# Removing a little room tone next to speech is not heard; a voice's tail is.
PAD_S = 0.15
# Fade length at each cut, seconds.
FADE_S = 0.03
BLOCK = 1 << 18


def removes_original(mode: str, source_lang: str | None, target_lang: str) -> bool:
    """``auto`` removes the original voice whatever the languages: under a re-voice in the
    same language the ducked original was heard as an echo (back-transcribing the JFK sample
    gave its sentence twice). ``duck`` keeps it, lowered under the dub."""
    if mode == "auto":
        return True
    return mode == "remove"


def removal_spans(regions: Regions, keep: Iterable[tuple[float, float]] = (),
                  lines: Iterable[tuple[float, float]] = ()) -> list[tuple[float, float]]:
    """Speech regions and the dubbed lines' own spans, padded, minus the spans where the
    original is kept on purpose (lines that are not dubbed: the original plays there
    instead). The lines count because the energy detector misses speech under steady noise
    (none of a talk at -1 dB SNR, a tenth of it at 5 dB), where the recogniser still hears it;
    the original voice played on under the dub there."""
    spans = sorted((max(0.0, s - PAD_S), e + PAD_S) for s, e in [*regions.spans, *lines])
    return subtract(spans, keep)


def subtract(spans: list[tuple[float, float]],
             keep: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """``spans`` less every span of ``keep``."""
    for ks, ke in keep:
        out = []
        for s, e in spans:
            if e <= ks or s >= ke:
                out.append((s, e))
                continue
            if s < ks:
                out.append((s, ks))
            if e > ke:
                out.append((ke, e))
        spans = out
    return spans


def gain_envelope(n: int, offset: int, rate: int, spans: list[tuple[float, float]]) -> np.ndarray:
    """Gain (0..1) for samples ``offset .. offset+n``: 0 inside ``spans``, 1 outside, linear
    fades of ``FADE_S`` just outside each span's edges."""
    gain = np.ones(n, dtype=np.float32)
    fade = max(1, int(FADE_S * rate))
    t0, t1 = offset / rate, (offset + n) / rate
    for s, e in spans:
        if e + FADE_S < t0 or s - FADE_S > t1:
            continue
        a, b = int(round(s * rate)) - offset, int(round(e * rate)) - offset
        lo, hi = max(a, 0), min(b, n)
        if hi > lo:
            gain[lo:hi] = 0.0
        # fade out before the span, fade in after it
        idx = np.arange(max(a - fade, 0), min(a, n))
        if idx.size:
            gain[idx] = np.minimum(gain[idx], (a - idx) / fade)
        idx = np.arange(max(b, 0), min(b + fade, n))
        if idx.size:
            gain[idx] = np.minimum(gain[idx], (idx - b) / fade)
    return gain


def take_out_centre(block: np.ndarray, centre: np.ndarray, kept: np.ndarray,
                    alone: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``block`` (samples x channels) less a surround original's ``centre`` (mono, as the
    block carries it) where ``kept`` is 0; where ``alone`` is 0 (a stretch whose voice is in
    the other channels too) the centre stays and the second value, the gain to lay on the
    whole block, takes it all out instead (None: no such stretch here)."""
    if alone is None:
        return block - ((1.0 - kept) * centre)[:, None], None
    return (block - ((1.0 - kept) * alone * centre)[:, None],
            1.0 - (1.0 - kept) * (1.0 - alone))


def write_background(original: Path, out: Path, spans: list[tuple[float, float]],
                     centre: Path | None = None, kept: Any = None,
                     shared: list[tuple[float, float]] = ()) -> Path:
    """``original`` with ``spans`` removed, written to ``out`` (atomically); given a surround
    original's ``centre`` (as ``original`` carries it in each channel), only it is removed
    there (but for the ``shared`` stretches, where its voice is in the others too), and the
    other channels play on, and what is left of the voice goes to ``kept`` (a
    ``speech_regions.LevelMeter``) for the quality figures."""
    import soundfile

    with soundfile.SoundFile(str(original)) as src, atomic_path(out) as tmp:
        with soundfile.SoundFile(str(tmp), "w", samplerate=src.samplerate,
                                 channels=src.channels, subtype="FLOAT",
                                 format=wav_format(src.frames, src.channels, 4)) as dst:
            c = soundfile.SoundFile(str(centre)) if centre is not None else None
            offset = 0
            for block in src.blocks(blocksize=BLOCK, dtype="float32", always_2d=True):
                gain = gain_envelope(len(block), offset, src.samplerate, spans)
                if c is None:
                    dst.write(block * gain[:, None])
                else:
                    voice = c.read(len(block), dtype="float32", fill_value=0.0)
                    alone = (gain_envelope(len(block), offset, src.samplerate, list(shared))
                             if shared else None)
                    left, whole = take_out_centre(block, voice, gain, alone)
                    if whole is not None:
                        left *= whole[:, None]
                    dst.write(left)
                    if kept is not None:
                        kept.add(gain * voice if alone is None else
                                 alone * gain * voice + (1.0 - alone) * left.mean(axis=1))
                offset += len(block)
            if c is not None:
                c.close()
    return out


class StreamingRemoval:
    """The same removal for a mix that streams, a stretch at a time: the source's speech
    regions are found when the mix first asks, and again as it passes where they were good
    to (``regions`` may be a function of the time they must reach, returning them and how far
    they are good: the mix thread starts with the job, and finding the voice then would
    compete with loading the recogniser, and import its package from two threads at once);
    the lines where the original is kept arrive with the segments (in start order, ahead of
    the mix, from another thread)."""

    def __init__(self, regions: Regions | Callable[[float], tuple[Regions, float]]) -> None:
        self._regions = regions
        self.spans: list[tuple[float, float]] | None = None
        self._good_to = -math.inf
        self._kept: list[tuple[float, float]] = []
        self._lines: list[tuple[float, float]] = []  # dubbed lines not yet behind the mix
        self._lock = threading.Lock()

    def _find(self, until: float) -> None:
        if callable(self._regions):
            regions, self._good_to = self._regions(until)
        else:
            regions, self._good_to = self._regions, math.inf
        self.spans = [(max(0.0, s - PAD_S), e + PAD_S) for s, e in regions.spans]
        self._starts = [s for s, _ in self.spans]
        self._ends = [e for _, e in self.spans]  # sorted too: regions do not overlap

    def keep(self, start: float, end: float) -> None:
        with self._lock:
            self._kept.append((start, end))

    def line(self, start: float, end: float) -> None:
        """A dubbed line, ahead of the mix: the original voice goes there too, whatever the
        energy detector found (see :func:`removal_spans`)."""
        with self._lock:
            self._lines.append((max(0.0, start - PAD_S), end + PAD_S))

    def gains(self, offset: int, n: int, rate: int) -> np.ndarray:
        """Gain (0..1) for samples ``offset .. offset+n``, from the spans near them only (the
        mix asks in order: lines it has passed are let go)."""
        t0, t1 = offset / rate - FADE_S, (offset + n) / rate + FADE_S
        if t1 + PAD_S > self._good_to:
            self._find(t1 + PAD_S)
        near = self.spans[bisect.bisect_left(self._ends, t0):bisect.bisect_right(self._starts, t1)]
        with self._lock:
            self._lines = [ln for ln in self._lines if ln[1] > t0]
            lines = [ln for ln in self._lines if ln[0] < t1]
            kept = [k for k in self._kept if k[1] > t0 and k[0] < t1]
        if not near and not lines:
            return np.ones(n, dtype=np.float32)
        return gain_envelope(n, offset, rate, subtract(sorted([*near, *lines]), kept))
