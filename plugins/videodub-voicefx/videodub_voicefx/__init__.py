"""tts=voicefx: another videodub voice run through a pedalboard effect chain.

A character voice for a dub: the base implementation (``tts.base``, espeak by default)
speaks each line, then the clip is pitch-shifted (duration kept), given a room, and
levelled. The processed clip is written next to the base clip, and the segment points at it.

    python -m videodub input=talk.mp4 target_lang=es tts=voicefx tts.pitch_semitones=5

Installed, this module is found through the ``videodub`` entry-point group (see
pyproject.toml); nothing in videodub names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import videodub
from videodub.errors import VideodubError
from videodub.model import JobContext, JobScope, Segment, Synthesizer, WorkerHint, worker_hint

__version__ = "0.1.0"

NAME = "voicefx"
# Below this level (about -54 dBFS, espeak's own silence threshold) a reverb tail is cut off.
TAIL_THRESHOLD = 64 / 32768
# Seconds of silence appended before the reverb, per unit of room size, so the tail can ring out.
TAIL_SECONDS = 0.6


@dataclass
class VoiceFxOptions:
    # The tts implementation that speaks the line (any registered name except voicefx).
    base: str = "espeak"
    # Pitch shift in semitones, -12 to 12; the clip keeps its duration.
    pitch_semitones: float = 0.0
    # Reverb room size, 0 to 1; 0 turns the reverb off.
    reverb_room: float = 0.0
    # Gain applied last, in dB, -24 to 24.
    gain_db: float = 0.0

    def __post_init__(self) -> None:
        # Raised as ValueError so videodub reports them as one line naming the stage.
        if self.base == NAME:
            raise ValueError("base cannot be voicefx itself; choose another tts (e.g. espeak)")
        if not -12.0 <= self.pitch_semitones <= 12.0:
            raise ValueError(
                f"pitch_semitones must be between -12 and 12, got {self.pitch_semitones}")
        if not 0.0 <= self.reverb_room <= 1.0:
            raise ValueError(f"reverb_room must be between 0 and 1, got {self.reverb_room}")
        if not -24.0 <= self.gain_db <= 24.0:
            raise ValueError(f"gain_db must be between -24 and 24, got {self.gain_db}")


def apply_effects(audio: np.ndarray, rate: int, options: VoiceFxOptions) -> np.ndarray:
    """The effect chain on float audio shaped (channels, samples); returns the same layout."""
    import pedalboard

    if audio.shape[-1] == 0:
        return audio
    board = pedalboard.Pedalboard()
    if options.pitch_semitones:
        board.append(pedalboard.PitchShift(semitones=options.pitch_semitones))
    if options.reverb_room > 0:
        board.append(pedalboard.Reverb(room_size=options.reverb_room))
        pad = np.zeros((audio.shape[0], int(TAIL_SECONDS * options.reverb_room * rate)),
                       dtype=audio.dtype)
        audio = np.concatenate([audio, pad], axis=1)
    if options.gain_db:
        board.append(pedalboard.Gain(gain_db=options.gain_db))
    # A new board per clip: pedalboard plugins keep state between calls, and clips may be
    # processed on several worker threads at once.
    out = board(audio, rate) if len(board) else audio
    if options.reverb_room > 0:
        loud = np.flatnonzero(np.abs(out).max(axis=0) > TAIL_THRESHOLD)
        out = out[:, : loud[-1] + 1] if loud.size else out[:, :0]
    return np.clip(out, -1.0, 1.0)


class VoiceFxSynthesizer:
    """Wraps the base synthesizer; its own work is the effect chain on each finished clip.

    The base voice comes from the registry the job was composed from (given with the job's
    scope), so a voice from another plugin, or one registered only in a test, works too."""

    def __init__(self, options: VoiceFxOptions) -> None:
        self.options = options
        self.base: Synthesizer | None = None

    def attach(self, scope: JobScope) -> None:
        assert scope.registry is not None, "a job's scope carries its registry"
        impl = scope.registry.get("tts", self.options.base)  # "unknown tts ...; choices"
        base_options = impl.config()
        # Profiles set the stage-wide effort; the wrapped voice should follow it too.
        base_options.effort = getattr(self.options, "effort", base_options.effort)
        self.base = impl.create(base_options, scope)

    def worker_hint(self) -> WorkerHint:
        # The base voice sets the limits (espeak-ng allows one worker per process);
        # the effect chain itself is reentrant and adds a little memory per worker.
        assert self.base is not None, "attach() gives voicefx its base voice"
        hint = worker_hint(self.base)
        return WorkerHint(cpu_bound=True, memory_mb=hint.memory_mb + 40,
                          max_concurrency=hint.max_concurrency,
                          reason=f"{self.options.base}: {hint.reason}" if hint.reason else "")

    def synthesize(self, segment: Segment, ctx: JobContext) -> Segment:
        import soundfile

        assert self.base is not None, "attach() gives voicefx its base voice"
        ctx.check_cancelled()
        segment = self.base.synthesize(segment, ctx)
        # The base clip can take a while; do not process (or write) anything for a job
        # that was cancelled meanwhile.
        ctx.check_cancelled()
        if not segment.audio_path:
            return segment
        src = Path(segment.audio_path)
        try:
            audio, rate = soundfile.read(str(src), dtype="float32", always_2d=True)
        except RuntimeError as exc:
            raise VideodubError(f"tts=voicefx: cannot read the {self.options.base} clip {src}: "
                                f"{exc}") from exc
        out = apply_effects(audio.T, rate, self.options)
        dst = src.with_name(f"{src.stem}.{NAME}.wav")
        soundfile.write(str(dst), out.T, rate, subtype="PCM_16")
        segment.audio_path = str(dst)
        segment.synth_duration = round(out.shape[-1] / rate, 4)
        segment.extra["voicefx_base_clip"] = str(src)
        return segment


@videodub.hookimpl
def register_tts(register):
    register(NAME, VoiceFxSynthesizer, VoiceFxOptions,
             description="Another tts through pitch, reverb and gain effects.")
