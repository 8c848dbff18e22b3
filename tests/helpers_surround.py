"""Surround originals for tests, made here: a stand-in for dialogue in the centre and music
stand-ins in the other channels."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile

from videodub.media import ffmpeg_exe

RATE = 48000


def spoken(seconds: float, rate: int = RATE) -> np.ndarray:
    """A stand-in for dialogue: a 300 Hz buzz with harmonics, on 1.2 s and off 0.8 s."""
    t = np.arange(int(seconds * rate)) / rate
    buzz = sum(np.sin(2 * np.pi * 300 * k * t) / k for k in range(1, 6))
    return (0.2 * buzz * (np.mod(t, 2.0) < 1.2)).astype(np.float32)


def surround(folder: Path, name: str, centre: np.ndarray, front_voice=0.0,
             codec: tuple[str, ...] = ("-c:a", "pcm_s16le"), layout: str = "5.1") -> Path:
    """5.1 (or 7.1): ``centre`` in FC, music stand-ins (other tones and noise) in the
    others, and ``front_voice`` (a gain, or one per sample) times the centre in FL and FR as
    well (an upmix)."""
    n = len(centre)
    t = np.arange(n) / RATE
    rng = np.random.default_rng(5)
    fl = 0.05 * np.sin(2 * np.pi * 5000 * t) + 0.02 * rng.standard_normal(n)
    fr = 0.05 * np.sin(2 * np.pi * 5500 * t) + 0.02 * rng.standard_normal(n)
    channels = [fl + front_voice * centre, fr + front_voice * centre, centre, np.zeros(n),
                0.5 * fl, 0.5 * fr] + ([0.3 * fr, 0.3 * fl] if layout == "7.1" else [])
    wav = folder / f"{name}.src.wav"
    soundfile.write(str(wav), np.stack(channels, 1).astype(np.float32), RATE, subtype="FLOAT")
    out = folder / name
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-af",
                    f"aformat=channel_layouts={layout}", *codec, str(out)],
                   check=True, capture_output=True, timeout=60)
    wav.unlink()
    return out
