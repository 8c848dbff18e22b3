"""Audio helpers that several stages share (built-ins import these, never each other)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from videodub.errors import Cancelled
from videodub.wav import data_offset

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
    frequency to lose. libsoxr (its high-quality setting) resamples a 3.5 s clip in 0.8 ms,
    scipy's polyphase resampler in 2.4 ms, and importing scipy.signal took a second of every
    job's CPU."""
    import soundfile
    import soxr

    audio, clip_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    audio = time_stretch(audio.mean(axis=1), clip_rate, stretch, fine)
    if clip_rate != rate:
        audio = soxr.resample(audio, clip_rate, rate, quality="HQ").astype(np.float32)
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


class GrowingWav:
    """A 16-bit PCM WAV that a child process may still be writing (ingest's 16 kHz speech),
    read as it grows: speech recognition starts on the first window while the rest of the
    input is still being extracted. ``finish`` is called once the writer has ended; after
    that the file is read as any other. A file that is already whole is :meth:`whole`."""

    POLL_S = 0.02

    def __init__(self, path: Path, rate: int, channels: int = 1) -> None:
        self.path, self.rate, self.channels = Path(path), rate, channels
        self.done = threading.Event()
        self.failed = False
        self.frames = 0  # the whole file's, once done
        self._data_at: int | None = None  # where the samples start in the file

    @classmethod
    def whole(cls, path: Path) -> GrowingWav:
        import soundfile

        info = soundfile.info(str(path))
        wav = cls(path, info.samplerate, info.channels)
        wav.finish(ok=True, frames=info.frames)
        return wav

    def finish(self, ok: bool, frames: int | None = None) -> None:
        """The writer has ended (``ok``: the file is whole, ``frames`` long if known)."""
        if ok:
            import soundfile

            self.frames = soundfile.info(str(self.path)).frames if frames is None else frames
        self.failed = not ok
        self.done.set()

    def _data_offset(self) -> int | None:
        """The samples' offset, once the writer has put out the header (up to ``data``)."""
        if self._data_at is None:
            try:
                with open(self.path, "rb") as f:
                    head = f.read(4096)
            except FileNotFoundError:
                return None
            self._data_at = data_offset(head)
        return self._data_at

    def available(self) -> int:
        """Frames that can be read now (all of them once done)."""
        if self.done.is_set():
            return self.frames
        at = self._data_offset()
        if at is None:
            return 0
        return max(0, self.path.stat().st_size - at) // (2 * self.channels)

    def wait(self, frames: int, check: Callable[[], None] = lambda: None) -> int:
        """Frames available once at least ``frames`` are, or the writer has ended (fewer,
        then); ``check`` is called while waiting (raises to stop). A writer that failed
        raises :class:`~videodub.errors.Cancelled`: its own error is the job's."""
        while True:
            done = self.done.is_set()
            if self.failed:
                raise Cancelled()
            have = self.available()
            if have >= frames or done:
                return have
            check()
            self.done.wait(self.POLL_S)

    def read(self, start: int, n: int) -> np.ndarray:
        """``n`` frames from ``start``, float32 (mono: 1-D), as soundfile reads them."""
        if self.done.is_set():
            import soundfile

            with soundfile.SoundFile(str(self.path)) as f:
                f.seek(start)
                return f.read(n, dtype="float32")
        at = self._data_offset()
        assert at is not None
        size = 2 * self.channels
        with open(self.path, "rb") as f:
            f.seek(at + start * size)
            raw = f.read(n * size)
        audio = np.frombuffer(raw[:len(raw) // size * size], dtype="<i2").astype(np.float32)
        audio *= 1.0 / 32768  # soundfile's scale for 16-bit samples
        return audio if self.channels == 1 else audio.reshape(-1, self.channels)
