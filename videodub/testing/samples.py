"""Synthesized sample media: a talk (espeak-ng speech over an ffmpeg test pattern) with its
script and a matching translated subtitle file. Used by the demo, the tests and the benchmarks,
so nothing large is committed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from videodub.media import run_ffmpeg

ENGLISH_TALK = [
    ("Welcome to this short talk about making videos for everyone.",
     "Bienvenidos a esta breve charla sobre videos para todos."),
    ("Today we will look at three simple ideas.",
     "Hoy veremos tres ideas sencillas."),
    ("First, speak slowly and clearly to your audience.",
     "Primero, hablen despacio y con claridad."),
    ("Second, show one thing at a time on the screen.",
     "Segundo, muestren una sola cosa a la vez."),
    ("Third, always add subtitles in every language you can.",
     "Tercero, agreguen siempre subtítulos en cada idioma."),
    ("Thank you for watching, and see you next time.",
     "Gracias por mirar, y hasta la próxima."),
]


@dataclass
class SampleLine:
    start: float
    end: float
    text: str
    translation: str


def speak(text: str, lang: str = "en", wpm: int = 165) -> tuple[np.ndarray, int]:
    """Speech for ``text`` from espeak-ng, as float32 mono and its sample rate."""
    from videodub.audio import trim_silence
    from videodub.builtin.tts_espeak import VOICE_FOR_LANG, engine

    eng = engine()
    audio = trim_silence(eng.synth(text, VOICE_FOR_LANG.get(lang, lang), wpm, 50))
    return audio.astype(np.float32) / 32768.0, eng.sample_rate


def make_talk(path: Path, lines: list[tuple[str, str]] | None = None, *, lang: str = "en",
              lead_in: float = 1.0, pause: float = 1.2, min_duration: float = 0.0,
              video: bool = True, size: str = "320x240", fps: int = 15,
              audio_codec: str = "aac") -> list[SampleLine]:
    """Write a talk video (or audio file when ``video`` is False) and return its timed script."""
    import soundfile

    lines = lines or ENGLISH_TALK
    pieces: list[np.ndarray] = []
    script: list[SampleLine] = []
    rate = 0
    t = lead_in
    for text, translation in lines:
        audio, rate = speak(text, lang)
        if not pieces:
            pieces.append(np.zeros(int(lead_in * rate), dtype=np.float32))
        dur = len(audio) / rate
        script.append(SampleLine(round(t, 3), round(t + dur, 3), text, translation))
        pieces += [audio * 0.8, np.zeros(int(pause * rate), dtype=np.float32)]
        t += dur + pause
    speech = np.concatenate(pieces)
    if len(speech) < min_duration * rate:
        speech = np.concatenate([speech, np.zeros(int(min_duration * rate) - len(speech),
                                                  dtype=np.float32)])
    duration = len(speech) / rate
    # A quiet hum stands in for the background (music, room tone) the mix must keep.
    tt = np.arange(len(speech)) / rate
    mixed = speech + 0.02 * np.sin(2 * np.pi * 110 * tt).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = path.with_suffix(".src.wav")
    soundfile.write(str(wav), mixed, rate, subtype="PCM_16")
    try:
        args = []
        if video:
            args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={duration:.3f}"]
        args += ["-i", str(wav)]
        if video:
            args += ["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
                     "-pix_fmt", "yuv420p", "-g", str(fps * 2)]
        args += ["-c:a", audio_codec, "-ar", "44100", "-ac", "2", "-shortest", str(path)]
        run_ffmpeg(["-v", "error", *args], what="making the sample video")
    finally:
        wav.unlink(missing_ok=True)
    return script


def write_translation_srt(script: list[SampleLine], path: Path) -> Path:
    import srt

    subs = [srt.Subtitle(i + 1, timedelta(seconds=line.start), timedelta(seconds=line.end),
                         line.translation) for i, line in enumerate(script)]
    path.write_text(srt.compose(subs), encoding="utf-8")
    return path
