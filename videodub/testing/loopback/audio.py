"""Fake audio for the loopback server: where an upload's speech is (the voiced regions a VAD
would find), and a speech-like tone for the speech route, decoded and encoded with PyAV and
soundfile."""

from __future__ import annotations

import io
import math
import zlib

import numpy as np

TRANSCRIPTION_RATE = 16_000
FRAME_S = 0.02
REGION_THRESHOLD_DB = -30.0  # relative to the loudest frames
SILENCE_FLOOR_DB = -60.0  # nothing quieter is ever voiced
MERGE_GAP_S = 0.5  # Whisper's VAD keeps pauses under half a second inside a segment
MIN_REGION_S = 0.15
MAX_REGION_S = 30.0

SPEECH_RATE = 24_000
SPEECH_FORMATS = {"pcm": "audio/pcm", "wav": "audio/wav", "flac": "audio/flac",
                  "mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac"}
CHARS_PER_SECOND = 15.0
MIN_SPEECH_S = 0.3
SPEECH_DBFS = -18.0
SYLLABLES_PER_S = 4.0


def decode_audio(data: bytes, rate: int = TRANSCRIPTION_RATE) -> np.ndarray:
    """An uploaded file (any format FFmpeg reads) as float32 mono samples at ``rate``."""
    import av

    chunks: list[np.ndarray] = []
    with av.open(io.BytesIO(data)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(audio=0):
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def voiced_regions(audio: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """(start, end) seconds of the loud stretches of ``audio``, the way a VAD would cut speech.

    20 ms frames are voiced when their RMS is within 30 dB of the loudest frames, above
    -60 dBFS and 12 dB above the quietest tenth of the frames (a steady background); gaps
    under 0.5 s are bridged, regions under 0.15 s dropped, and regions over 30 s split
    evenly, as Whisper never emits longer segments.
    """
    frame = int(rate * FRAME_S)
    count = len(audio) // frame
    if count == 0:
        return []
    frames = np.asarray(audio[:count * frame], dtype=np.float64).reshape(count, frame)
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    ordered = np.sort(rms)
    loudest = ordered[-max(1, count // 50):].mean()
    # Steady background (room tone, hum) is not speech: stay 12 dB above the quietest tenth,
    # but never within 6 dB of the loudest frames (audio that is speech throughout).
    floor = ordered[count // 10]
    threshold = max(loudest * 10 ** (REGION_THRESHOLD_DB / 20), 10 ** (SILENCE_FLOOR_DB / 20),
                    min(floor * 4.0, loudest * 0.5))
    voiced = np.concatenate(([0], (rms > threshold).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(voiced))
    runs = [(start * FRAME_S, end * FRAME_S) for start, end in zip(edges[::2], edges[1::2])]
    merged: list[tuple[float, float]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] < MERGE_GAP_S:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [piece for start, end in merged if end - start >= MIN_REGION_S
            for piece in _split_region(start, end)]


def _split_region(start: float, end: float) -> list[tuple[float, float]]:
    pieces = math.ceil((end - start) / MAX_REGION_S)
    step = (end - start) / pieces
    return [(start + i * step, start + (i + 1) * step) for i in range(pieces)]


def _voice_pitch(voice: str) -> float:
    """A fixed pitch per voice name, 110-150 Hz."""
    return 110.0 + zlib.crc32(voice.encode()) % 41


def _smooth(signal: np.ndarray, width: int) -> np.ndarray:
    """A centred moving average (linear in the length, unlike a convolution)."""
    sums = np.cumsum(np.concatenate((np.zeros(width // 2 + 1), signal,
                                     np.zeros(width - width // 2))))
    return (sums[width:] - sums[:-width])[:len(signal)] / width


def synthesize_speech(text: str, speed: float = 1.0, voice: str = "alloy") -> np.ndarray:
    """A speech-like int16 signal at 24 kHz lasting ``max(0.3, len(text) / 15) / speed`` seconds.

    A harmonic tone with a slow vibrato, gated off at spaces and punctuation and shaped by a
    syllable-rate envelope, at about -18 dBFS RMS where voiced. The same input gives the same
    samples.
    """
    duration = max(MIN_SPEECH_S, len(text) / CHARS_PER_SECOND) / speed
    t = np.arange(round(duration * SPEECH_RATE)) / SPEECH_RATE
    frequency = _voice_pitch(voice) * (1 + 0.04 * np.sin(2 * np.pi * 0.8 * t))
    phase = 2 * np.pi * np.cumsum(frequency) / SPEECH_RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 6))
    voiced_chars = np.array([ch.isalnum() for ch in text] or [True])
    if not voiced_chars.any():
        voiced_chars[:] = True
    index = np.minimum((t / duration * len(voiced_chars)).astype(int), len(voiced_chars) - 1)
    gate = _smooth(voiced_chars[index].astype(np.float64), int(0.01 * SPEECH_RATE))
    syllables = 0.55 + 0.45 * np.sin(np.pi * SYLLABLES_PER_S * speed * t) ** 2
    signal = tone * gate * syllables
    loud = signal[gate > 0.5]
    rms = np.sqrt(np.mean(loud ** 2)) if loud.size else 1.0
    signal *= 10 ** (SPEECH_DBFS / 20) / max(rms, 1e-9)
    return (np.clip(signal, -1.0, 1.0) * 32767).astype(np.int16)


def _encode_compressed(pcm: np.ndarray, fmt: str) -> bytes:
    import av

    container_format, codec = {"mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus"),
                               "aac": ("adts", "aac")}[fmt]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=SPEECH_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SPEECH_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


def encode_speech(pcm: np.ndarray, fmt: str) -> bytes:
    """24 kHz mono int16 samples as a ``response_format`` of the speech route."""
    if fmt == "pcm":
        return pcm.astype("<i2").tobytes()
    if fmt in ("wav", "flac"):
        import soundfile

        buffer = io.BytesIO()
        soundfile.write(buffer, pcm, SPEECH_RATE, format=fmt.upper(), subtype="PCM_16")
        return buffer.getvalue()
    return _encode_compressed(pcm, fmt)
