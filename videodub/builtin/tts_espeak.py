"""tts=espeak: espeak-ng speech through its C library, shipped with its voice data in the
``espeakng-loader`` wheel (no system package). Called through ctypes: the PyPI bindings that
exist shell out to an ``espeak-ng`` executable, which a wheel-only install does not have.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from functools import cache

import numpy as np

from videodub import hookimpl
from videodub.audio import trim_silence
from videodub.errors import VideodubError
from videodub.languages import primary
from videodub.model import JobContext, Segment, WorkerHint

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE = 1
ESPEAK_PITCH = 3

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.c_void_p)

# espeak-ng keeps one global synthesizer per process: every call goes through this lock.
_lock = threading.Lock()


class _Engine:
    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if self.sample_rate <= 0:
            raise VideodubError("espeak-ng failed to initialise (espeakng-loader data missing?)")
        self.lib = lib
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, _events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def has_voice(self, voice: str) -> bool:
        with _lock:
            return self.lib.espeak_SetVoiceByName(voice.encode()) == 0

    def synth(self, text: str, voice: str, wpm: int, pitch: int) -> np.ndarray:
        with _lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise VideodubError(f"espeak-ng has no voice {voice!r}")
            self.lib.espeak_SetParameter(ESPEAK_RATE, wpm, 0)
            self.lib.espeak_SetParameter(ESPEAK_PITCH, pitch, 0)
            data = text.encode("utf-8")
            self._chunks = []
            err = self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, ESPEAK_CHARS_UTF8, None, None)
            if err != 0:
                raise VideodubError(f"espeak-ng synthesis failed (code {err})")
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks)


@cache
def engine() -> _Engine:
    return _Engine()


# espeak-ng voice names for languages whose plain code is not a voice.
VOICE_FOR_LANG = {"en": "en-us", "pt": "pt-br", "zh": "cmn", "yue": "yue", "no": "nb", "jw": "jv"}


@dataclass
class EspeakOptions:
    # espeak-ng voice name (e.g. en-gb, es, de, fr-fr); empty picks one from target_lang.
    voice: str = ""
    # Voice variant appended as voice+variant (e.g. f3, m2, klatt); empty for the default.
    variant: str = ""
    # Natural speaking rate in words per minute; align's rate multiplies it.
    words_per_minute: int = 175
    # Base pitch, 0-99.
    pitch: int = 50

    def __post_init__(self) -> None:
        if not 80 <= self.words_per_minute <= 450:
            raise ValueError(f"words_per_minute must be 80-450, got {self.words_per_minute}")
        if not 0 <= self.pitch <= 99:
            raise ValueError(f"pitch must be 0-99, got {self.pitch}")


class EspeakSynthesizer:
    def __init__(self, options) -> None:
        self.options = options
        self._voices: dict[str, str] = {}

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=30, max_concurrency=1,
                          reason="espeak-ng has one global synthesizer per process")

    def voice(self, lang: str) -> str:
        """The espeak-ng voice for ``lang`` that the engine has: the configured or mapped name,
        else the primary language subtag. One rule for check() and synthesize()."""
        if lang not in self._voices:
            base = self.options.voice or VOICE_FOR_LANG.get(primary(lang), lang)
            candidates = [base] if self.options.voice else [base, primary(lang)]
            suffix = f"+{self.options.variant}" if self.options.variant else ""
            found = next((c + suffix for c in candidates if engine().has_voice(c + suffix)), None)
            if found is None:
                what = f"tts.voice={self.options.voice}" if self.options.voice else f"target_lang={lang}"
                raise VideodubError(f"espeak-ng has no voice for {what}; set tts.voice to one it "
                                    f"has (e.g. es, en-gb, fr-fr) or choose another tts")
            self._voices[lang] = found
        return self._voices[lang]

    def check(self, ctx: JobContext) -> None:
        self.voice(ctx.target_lang)

    def synthesize(self, segment: Segment, ctx: JobContext) -> Segment:
        import soundfile

        eng = engine()
        wpm = int(round(min(450, self.options.words_per_minute * segment.tts_rate)))
        audio = eng.synth(segment.target_text or "", self.voice(ctx.target_lang), wpm,
                          self.options.pitch)
        audio = trim_silence(audio)
        clips = ctx.work_dir / "clips"
        clips.mkdir(exist_ok=True)
        path = clips / f"{segment.id:05d}.wav"
        soundfile.write(str(path), audio, eng.sample_rate, subtype="PCM_16")
        segment.audio_path = str(path)
        segment.synth_duration = round(len(audio) / eng.sample_rate, 4)
        return segment


@hookimpl
def register_tts(register):
    register("espeak", EspeakSynthesizer, EspeakOptions,
             description="espeak-ng, offline, voice chosen from target_lang.")
