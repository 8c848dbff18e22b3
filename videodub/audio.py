"""Audio helpers that several stages share (built-ins import these, never each other)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# 16-bit samples at or below this (about -54 dBFS) count as silence at a clip's ends.
SILENCE_THRESHOLD = 64


def trim_silence(audio: np.ndarray, threshold: int = SILENCE_THRESHOLD) -> np.ndarray:
    """16-bit speech without the silence before its first and after its last loud sample."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio[:0]
    return audio[loud[0]: loud[-1] + 1]


def read_mono(path: str | Path) -> tuple[np.ndarray, int]:
    """A sound file as float64 mono samples and its sample rate."""
    import soundfile

    audio, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    return audio.mean(axis=1), rate


def read_clip(path: Path, rate: int, stretch: float = 1.0, fine: bool = True) -> np.ndarray:
    """A clip as mono float32 at ``rate``, played ``stretch`` times faster (pitch kept; see
    :func:`time_stretch` for ``fine``).

    The clip is stretched at its own rate and resampled after: Rubber Band's cost grows
    faster than the sample rate (its finer engine takes 3.3x as long on a clip at 48 kHz as
    on the same clip at 24 kHz), and a synthesized clip has nothing above its own Nyquist
    frequency to lose. Polyphase resampling (scipy) is ~20x faster than a windowed-sinc
    stream resampler at the same quality for short clips."""
    import math

    import soundfile
    from scipy.signal import resample_poly

    audio, clip_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    audio = time_stretch(audio.mean(axis=1), clip_rate, stretch, fine)
    if clip_rate != rate:
        g = math.gcd(clip_rate, rate)
        audio = resample_poly(audio, rate // g, clip_rate // g).astype(np.float32)
    return audio


def time_stretch(audio: np.ndarray, rate: int, stretch: float, fine: bool = True) -> np.ndarray:
    """``audio`` played ``stretch`` times faster, pitch kept (Rubber Band via pedalboard).

    ``fine`` picks Rubber Band's finer engine (R3); otherwise its classic faster engine (R2),
    which takes a half to a third of the time on speech, with slightly more phasiness."""
    if abs(stretch - 1.0) < 0.005 or audio.size == 0:
        return audio
    import pedalboard

    return pedalboard.time_stretch(audio.reshape(1, -1).astype(np.float32), rate,
                                   stretch_factor=float(stretch), high_quality=fine)[0]
