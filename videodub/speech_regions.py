"""Where speech is in an audio track, measured from its energy: the source's speech onsets
that align snaps lines to, the regions the mixer clears of the original voice, and what the
quality figures compare the dub against.

An energy detector on 10 ms frames, with a threshold set from the track's own noise floor,
is used rather than Silero VAD (shipped with faster-whisper): it is exact to a frame where
Silero works in 32 ms windows with padding around each region, and it costs a few
milliseconds per minute of audio where Silero costs about a second, so it can stay on in every
profile. Recognising *whose* speech it is is not its job: it is only ever run on one track at
a time (the source, or the dub alone).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FRAME_S = 0.01
# Speech is this far above the track's noise floor (its quietest 10 % of frames) ...
ABOVE_FLOOR_DB = 12.0
# ... and no more than this far below its loudest frames (so a noisy track is not all speech).
BELOW_PEAK_DB = 40.0
# An absolute floor: nothing quieter than this is speech (digital silence, dither).
ABSOLUTE_DB = -60.0
# Frames this quiet are digital silence (zeros, dither): an audio stream that starts after its
# picture (ingest puts silence before it), a gap in it, a muted intro. When the rest of the
# track has a steady floor (a room, a hum: its quietest 30 % of sound within STEADY_DB), that
# is the noise floor, not the silence: on a 10 s clip whose audio starts 1.5 s late, the
# silence was the quietest 10 % and the hum under the speech counted as speech.
DIGITAL_SILENCE_DB = -90.0
STEADY_DB = 3.0
# A region found at the threshold is extended outward while frames stay this far above the
# floor, up to EXTEND_S: the quiet first and last sounds of a sentence (fricatives, a fading
# vowel) sit only a few dB over the room, and they are part of the voice.
EDGE_ABOVE_FLOOR_DB = 4.0
EXTEND_S = 0.3
# At a region's end, a dip under the edge level no longer than this (a 10 ms frame between
# the sounds of a fading word) does not stop the extension.
EDGE_DIP_S = 0.03
# Files are measured this many frames at a time (a minute of audio): memory stays the same
# whatever the media's length.
BLOCK_FRAMES = 6000
# A line's nucleus, the strong sound a listener hears it start on: its first frame within
# NUCLEUS_DB of the loudest frame of its first NUCLEUS_WINDOW_S (a vowel after a soft
# fricative or breath: "Th|ird" 85 ms into espeak-ng's line, "Se|cond" 5 ms).
NUCLEUS_DB = 20.0
NUCLEUS_WINDOW_S = 0.5


@dataclass(frozen=True)
class Regions:
    """Speech regions of one track, as sorted, non-overlapping (start, end) seconds."""

    spans: tuple[tuple[float, float], ...]
    duration: float
    threshold_db: float
    # Found by voice (``voice_activity``): between the spans is no voice, whatever is loud.
    by_voice: bool = False

    def starts(self) -> np.ndarray:
        return np.array([s for s, _ in self.spans], dtype=float)

    def ends(self) -> np.ndarray:
        return np.array([e for _, e in self.spans], dtype=float)

    def total(self) -> float:
        return float(sum(e - s for s, e in self.spans))

    def overlap(self, start: float, end: float) -> float:
        """Seconds of speech between ``start`` and ``end``."""
        return float(sum(max(0.0, min(e, end) - max(s, start)) for s, e in self.spans))

    def mask(self, n_frames: int, frame_s: float = FRAME_S) -> np.ndarray:
        """A boolean mask of ``n_frames`` frames of ``frame_s`` seconds, True in speech."""
        out = np.zeros(n_frames, dtype=bool)
        for s, e in self.spans:
            out[int(s / frame_s): int(np.ceil(e / frame_s))] = True
        return out


def frame_db(audio: np.ndarray, rate: int, frame_s: float = FRAME_S) -> np.ndarray:
    """RMS level of each ``frame_s`` frame, dBFS."""
    hop = max(1, int(round(rate * frame_s)))
    n = len(audio) // hop
    if n == 0:
        return np.zeros(0)
    frames = np.ascontiguousarray(audio[: n * hop], dtype=np.float32).reshape(n, hop)
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / hop
    return 10.0 * np.log10(power + 1e-12)


def detect(audio: np.ndarray, rate: int, *, merge_gap: float = 0.25, min_speech: float = 0.06,
           threshold_db: float | None = None) -> Regions:
    """Speech regions of mono ``audio`` (see :func:`detect_levels`)."""
    return detect_levels(frame_db(audio, rate), len(audio) / rate if rate else 0.0,
                         merge_gap=merge_gap, min_speech=min_speech, threshold_db=threshold_db)


def detect_levels(db: np.ndarray, duration: float, *, merge_gap: float = 0.25,
                  min_speech: float = 0.06, threshold_db: float | None = None) -> Regions:
    """Speech regions of a track of ``duration`` seconds from its frame levels ``db``: frames
    above the threshold, gaps shorter than ``merge_gap`` bridged (the pauses between words),
    blips shorter than ``min_speech`` dropped."""
    if db.size == 0:
        return Regions((), duration, ABSOLUTE_DB)
    if threshold_db is None:
        floor = noise_floor(db)
        peak = float(np.percentile(db, 99.5))
        threshold_db = max(floor + ABOVE_FLOOR_DB, peak - BELOW_PEAK_DB, ABSOLUTE_DB)
        edge_db = max(min(floor + EDGE_ABOVE_FLOOR_DB, threshold_db), ABSOLUTE_DB)
    else:
        edge_db = threshold_db
    loud = db > threshold_db
    edges = np.diff(np.concatenate([[0], loud.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    reach = int(EXTEND_S / FRAME_S)
    dip = int(round(EDGE_DIP_S / FRAME_S))
    for i in range(len(starts)):
        lo = max(starts[i] - reach, ends[i - 1] if i else 0)
        while starts[i] > lo and db[starts[i] - 1] > edge_db:
            starts[i] -= 1
        hi = min(ends[i] + reach, starts[i + 1] if i + 1 < len(starts) else len(db))
        while ends[i] < hi and db[ends[i]:min(hi, ends[i] + dip + 1)].max() > edge_db:
            ends[i] += 1
    spans: list[list[float]] = []
    for s, e in zip(starts * FRAME_S, ends * FRAME_S):
        if spans and s - spans[-1][1] < merge_gap:
            spans[-1][1] = e
        else:
            spans.append([s, e])
    kept = tuple((round(float(s), 3), round(float(min(e, duration)), 3)) for s, e in spans
                 if e - s >= min_speech)
    return Regions(kept, duration, float(threshold_db))


def noise_floor(db: np.ndarray) -> float:
    """The track's noise floor from its frame levels: the quietest 10 % of its frames, or of
    its sound when digital silence is that quietest part and the sound has a steady floor."""
    floor = float(np.percentile(db, 10))
    sound = db[db > DIGITAL_SILENCE_DB]
    if floor <= DIGITAL_SILENCE_DB and sound.size:
        low, steady = np.percentile(sound, [10, 30])
        if steady - low <= STEADY_DB:
            return float(low)
    return floor


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Frames x channels as one channel (their mean); a matrix product is ten times faster
    than ``mean(axis=1)`` on long audio."""
    if audio.shape[1] == 1:
        return audio[:, 0]
    return audio @ np.full(audio.shape[1], 1.0 / audio.shape[1], dtype=audio.dtype)


@dataclass(frozen=True)
class Levels:
    """The frame levels of a sound file (:func:`frame_db` of it mixed to mono) and its length."""

    db: np.ndarray
    rate: int
    samples: int

    @property
    def duration(self) -> float:
        return self.samples / self.rate if self.rate else 0.0


class LevelMeter:
    """The :class:`Levels` of mono audio given in pieces, as :func:`levels_of_file` finds them
    in a 16-bit WAV of it (the samples are rounded as writing one would), without writing it:
    the streaming mix measures the dub and the background it lays as it goes."""

    def __init__(self, rate: int, frame_s: float = FRAME_S) -> None:
        self.rate, self.frame_s = rate, frame_s
        self.hop = max(1, int(round(rate * frame_s)))
        self.rest = np.zeros(0, np.float32)  # samples of an unfinished frame
        self.parts: list[np.ndarray] = []
        self.samples = 0

    def add(self, audio: np.ndarray) -> None:
        # libsndfile's float -> 16-bit -> float: x * 32768 rounded down, read back / 32768.
        pcm = np.clip(np.floor(np.asarray(audio, np.float32) * 32768.0), -32768, 32767)
        pcm *= 1 / 32768
        self.samples += len(pcm)
        pcm = np.concatenate([self.rest, pcm]) if len(self.rest) else pcm
        whole = len(pcm) // self.hop * self.hop
        if whole:
            self.parts.append(frame_db(pcm[:whole], self.rate, self.frame_s))
        self.rest = pcm[whole:]

    def levels(self) -> Levels:
        return Levels(np.concatenate(self.parts) if self.parts else np.zeros(0), self.rate,
                      self.samples)


def levels_of_file(path: str | Path, scale: float = 1.0, frame_s: float = FRAME_S) -> Levels:
    """:func:`frame_db` of a sound file mixed to mono (its samples times ``scale``), read
    ``BLOCK_FRAMES`` frames at a time: the per-frame levels of a two-hour track are a few MB
    where its samples are gigabytes. Blocks are a whole number of frames long and each frame
    is summed alone, so the levels are exactly those of the whole file read at once."""
    import soundfile

    with soundfile.SoundFile(str(path)) as f:
        rate, samples = f.samplerate, f.frames
        hop = max(1, int(round(rate * frame_s)))
        blocks = f.blocks(blocksize=hop * BLOCK_FRAMES, dtype="float32", always_2d=True)
        parts = [frame_db(to_mono(block) * scale, rate, frame_s) for block in blocks]
    return Levels(np.concatenate(parts) if parts else np.zeros(0), rate, samples)


def nucleus(db: np.ndarray, start: float, frame_s: float = FRAME_S) -> float | None:
    """Seconds from ``start`` to the nucleus of the speech that starts there (see
    ``NUCLEUS_DB``), from frame levels ``db``; None when there are no frames there."""
    first = int(round(start / frame_s))
    window = db[max(0, first): max(0, first) + int(round(NUCLEUS_WINDOW_S / frame_s))]
    if window.size == 0:
        return None
    return float(np.argmax(window >= window.max() - NUCLEUS_DB)) * frame_s


_cache: dict[tuple, Regions] = {}
_levels_cache: dict[tuple, Levels] = {}
_lock = threading.Lock()


def file_key(path: Path, kwargs: dict) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size, tuple(sorted(kwargs.items())))


def remember(cache: dict, key: Any, value: Any, limit: int, lock: threading.Lock) -> None:
    """Keep ``value`` under ``key`` in a per-process cache of a few files' results (emptied
    when it holds more than ``limit``: a job asks about one source, a batch one at a time)."""
    with lock:
        if len(cache) > limit:
            cache.clear()
        cache[key] = value


def source_levels(path: str | Path) -> Levels:
    """:func:`levels_of_file` of a sound file, computed once per file version (the source's
    speech: align finds each line's nucleus on it, the quality figures measure on it)."""
    p = Path(path)
    key = file_key(p, {})
    with _lock:
        if key in _levels_cache:
            return _levels_cache[key]
    levels = levels_of_file(p)
    remember(_levels_cache, key, levels, 4, _lock)
    return levels


def regions_of_file(path: str | Path, **kwargs) -> Regions:
    """:func:`detect` on a sound file (mixed to mono), computed once per file version: align,
    the mixer and the quality figures all ask for the source's regions."""
    p = Path(path)
    key = file_key(p, kwargs)
    with _lock:
        if key in _cache:
            return _cache[key]
    levels = source_levels(p)
    found = detect_levels(levels.db, levels.duration, **kwargs)
    remember(_cache, key, found, 16, _lock)
    return found


# A line's first word: a burst of speech that ends at most this long before the recognised
# start, after a pause at least this long (not the last word of the sentence before).
LEAD_GAP_S = 0.25
LEAD_PAUSE_S = 0.5
# A recognised start in the last TAIL_S of a region that began long before, or of a last
# word that follows the rest of its sentence without a pause, with a pause after it, is the
# end of the sentence before: Whisper without word timing starts a line where the previous
# one's segment ended, up to the whole pause early (1.2-1.6 s under a music bed 12 dB down,
# where the pause is no longer silence to the recogniser).
TAIL_S = 0.5
# A recogniser late inside the region that opens a line (word timing under that music bed:
# 0.46 s): the region is the line's if it began at most this long before, after a pause,
# and the previous line's speech had ended by then.
LATE_INSIDE_S = 1.0


def snap_start(start: float, regions: Regions, *, early: float = 0.4, late: float = 0.6,
               previous_end: float | None = None) -> float:
    """A recognised line's start moved to the speech onset measured near it: recognisers are
    often 150-300 ms early (Whisper puts a first word at 0.0 s), sometimes late. The onset of
    the region ``start`` falls in (if it began at most ``early`` before, or at most
    ``LATE_INSIDE_S`` before, after a pause, with the previous line ended by
    ``previous_end`` before it), unless ``start`` is the previous sentence's tail (the last
    ``TAIL_S`` of a region that began long before or follows the one before it without a
    pause, with a pause after it) and the line before had not ended before ``start``: then
    the onset after that pause within ``late`` of it; else, when the recogniser was late past
    a short first word ("First, ..."), that word's onset: a region that began at most
    ``early`` before, ended at most ``LEAD_GAP_S`` before and follows a pause of
    ``LEAD_PAUSE_S``; else the first onset within ``late`` after ``start``; else ``start``
    unchanged."""
    spans = regions.spans
    previous_region_end = -math.inf
    for i, (s, e) in enumerate(spans):
        paused = s - previous_region_end >= LEAD_PAUSE_S
        if s <= start < e:
            following = spans[i + 1][0] if i + 1 < len(spans) else math.inf
            # The tail of a sentence: a region begun long before, or one that goes on from
            # the speech before it without a pause (its last word).
            if ((s < start - early or not paused) and e - start <= TAIL_S
                    and following - e >= LEAD_PAUSE_S and following <= e + late
                    and (previous_end is None or previous_end >= start)):
                return following
            if s >= start - early:
                return s
            if (paused and s >= start - LATE_INSIDE_S and previous_end is not None
                    and previous_end <= s + 0.01):
                return s
        if (e <= start and s >= start - early and start - e <= LEAD_GAP_S and paused):
            return s
        if start <= s <= start + late:
            return s
        if s > start + late:
            break
        previous_region_end = e
    return start


def snap_end(end: float, regions: Regions, after: float, *, early: float = 0.4,
             late: float = 0.6) -> float:
    """A line's end moved to the nearest speech offset within ``late`` before and ``early``
    after it (and past ``after``, the line's start); else ``end`` unchanged."""
    near = [e for _, e in regions.spans if end - late <= e <= end + early and e > after + 0.05]
    return min(near, key=lambda e: abs(e - end)) if near else end
