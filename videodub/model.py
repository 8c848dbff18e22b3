"""The data that flows between stages, and the small interfaces stages implement.

Data moves one way: ingest -> transcribe -> translate -> align -> tts -> mix -> mux. Stages
exchange :class:`Segment` objects; a stage never reaches back into another."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from videodub.errors import Cancelled
from videodub.scope import JobScope

if TYPE_CHECKING:
    from videodub.plugins import Registry
    from videodub.providers.usage import ProviderStats, Usage

STAGES = ("ingest", "transcribe", "translate", "align", "tts", "mix", "mux")


@dataclass
class Segment:
    """One line of speech, from its transcription to its place in the dubbed track."""

    id: int
    start: float  # seconds, in the input's timeline
    end: float
    source_text: str = ""
    target_text: str | None = None
    # Set by align: the window the dubbed line may occupy (end may borrow following silence).
    slot_start: float | None = None
    slot_end: float | None = None
    # Set by align: the speech rate the TTS is asked for (1.0 = natural), from the text length,
    # and the largest total speed-up (TTS rate x mix stretch) allowed for this line.
    tts_rate: float = 1.0
    max_speed: float = 1.0
    audio_path: str | None = None  # set by tts, with:
    synth_duration: float | None = None
    # Set by mix: the pitch-preserving speed-up applied to the clip, and what still did not fit.
    stretch: float | None = None
    overflow: float = 0.0
    flags: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def speed_factor(self) -> float | None:
        """Total speed-up relative to natural speech: the TTS rate times the mix stretch."""
        return None if self.stretch is None else round(self.tts_rate * self.stretch, 4)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "speed_factor": self.speed_factor}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Segment:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class MediaInfo:
    """What ingest found out about the input, and the audio it extracted for later stages."""

    path: Path  # the original input file
    duration: float
    has_video: bool
    audio_streams: int
    audio_codec: str | None  # the dubbed track's
    video_codec: str | None
    speech_audio: Path  # 16 kHz mono WAV for speech recognition
    full_audio: Path  # the original audio track as 48 kHz stereo WAV, for mixing
    sample_rate: int = 48000
    channels: int = 2  # the dub's: 1 for a mono original (or one signal in both channels)
    audio_stream: int = 0  # which of the input's audio tracks is dubbed (0: the first)
    # A surround original's front-centre channel as ``full_audio`` carries it (mono WAV),
    # when its voice is there alone: the mix takes the voice out by taking this out.
    centre_audio: Path | None = None
    # ... and the stretches (start, end seconds) where its voice is in the other channels
    # too (a score or an upmix in the centre): taken out of the whole downmix there.
    centre_shared: list[tuple[float, float]] = field(default_factory=list)
    # The original in its own channels (a WAV at the mix rate) and their FFmpeg layout ("5.1"),
    # for a surround dub (``JobContext.surround``) of a voice in the centre alone.
    surround_audio: Path | None = None
    surround_layout: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkerHint:
    """What a stage tells the runner about its work, so the runner can size its pool."""

    cpu_bound: bool = True  # True: at most one worker per usable CPU
    memory_mb: float = 100.0  # estimated resident memory per worker
    max_concurrency: int | None = None  # a hard cap (library not reentrant, provider limit)
    reason: str = ""  # why the cap exists, shown in the report


class JobContext:
    """Per-job state shared with the stages: directories, languages, cancellation, subprocesses."""

    def __init__(self, run_dir: Path, target_lang: str, source_lang: str | None,
                 cache_dir: Path | None = None, verbose: bool = False) -> None:
        self.run_dir = run_dir
        self.work_dir = run_dir / "work"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.target_lang = target_lang
        self.source_lang = source_lang  # None until detected by transcribe
        self.cache_dir = cache_dir
        self.verbose = verbose
        self.cancel_event = threading.Event()
        self.media: MediaInfo | None = None
        # Set before any stage runs; ingest's check() fills in the duration from a probe.
        self.input_path: Path | None = None
        self.input: str | None = None  # as given (a URL stays one: a Path folds its "//")
        self.input_duration: float | None = None
        # A name for the outputs better than the input's (a download's title), set by ingest.
        self.output_name: str | None = None
        self.notes: list[str] = []  # warnings worth showing in the report
        # A progress line worth showing live (a download's share); the runner shows it.
        self.progress: Callable[[str], None] = lambda text: None
        # Ingest hands on its speech while still extracting it (``ReadsGrowingSpeech``).
        self.speech_started: Callable[[MediaInfo], None] = lambda media: None
        # What a step hands a later one: the mixer's dub-only track, the transcript's SRT ...
        self.artifacts: dict[str, Any] = {}
        self.speaking_rate: float | None = None  # the TTS voice's natural characters/s, measured
        self.surround = False  # the mixer dubs surround in surround (``MixesSurround``)
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def note(self, message: str) -> None:
        with self._lock:
            self.notes.append(message)

    def track_process(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.add(proc)

    def untrack_process(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def child_pids(self) -> list[int]:
        """The job's running child processes (for the memory and CPU they add)."""
        with self._lock:
            return [proc.pid for proc in self._procs]

    def kill_processes(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


@runtime_checkable
class Ingester(Protocol):
    def ingest(self, input_path: Path, ctx: JobContext) -> MediaInfo: ...


@runtime_checkable
class Transcriber(Protocol):
    """Yields segments as they are recognised; sets ``ctx.source_lang`` when it detects it."""

    def transcribe(self, media: MediaInfo, ctx: JobContext) -> Iterator[Segment]: ...


@runtime_checkable
class Translator(Protocol):
    """Translates a batch; may return different segments when the target lines differ.

    ``batch_size``: how many segments one call takes; ``None`` means the whole transcript.
    """

    batch_size: int | None

    def translate(self, segments: list[Segment], ctx: JobContext) -> list[Segment]: ...


@runtime_checkable
class Aligner(Protocol):
    """Plans one segment's slot; ``next_start`` is the following segment's start (or the media end)."""

    def align(self, segment: Segment, next_start: float, ctx: JobContext) -> Segment: ...


@runtime_checkable
class Synthesizer(Protocol):
    def synthesize(self, segment: Segment, ctx: JobContext) -> Segment: ...


@runtime_checkable
class Mixer(Protocol):
    """Consumes segments in start order as their clips become ready; returns the mixed audio file."""

    def mix(self, segments: Iterable[Segment], media: MediaInfo, ctx: JobContext) -> Path: ...


@runtime_checkable
class Muxer(Protocol):
    def mux(self, media: MediaInfo, dubbed_audio: Path, subtitles: Path, out_path: Path,
            ctx: JobContext) -> Path: ...


STAGE_PROTOCOLS: dict[str, type] = dict(zip(STAGES, (
    Ingester, Transcriber, Translator, Aligner, Synthesizer, Mixer, Muxer)))


# -- optional capabilities ---------------------------------------------------------------
# A stage object may implement any of these besides its stage's interface; the runner checks
# with isinstance and uses what is there.


@runtime_checkable
class Checked(Protocol):
    """Checks, before any media work, what can be known from the job alone (a voice for the
    target language, a model for the source language, a provider's key and endpoint), and
    raises a one-line VideodubError."""

    def check(self, ctx: JobContext) -> None: ...


@runtime_checkable
class KnowsSourceLanguage(Protocol):
    """A transcriber that knows its text's language before it hears anything (an English-only
    model): ``ctx.source_lang`` is set from it before the checks."""

    def source_language(self, ctx: JobContext) -> str | None: ...


@runtime_checkable
class HintsWorkers(Protocol):
    """Tells the runner how to size the stage's worker pool."""

    def worker_hint(self) -> WorkerHint: ...


@runtime_checkable
class Scoped(Protocol):
    """Is given the job's :class:`JobScope` once, right after it is created: what it shares
    with the job's other stages (clients, rate limiters), and the registry the job uses."""

    def attach(self, scope: JobScope) -> None: ...


@dataclass(frozen=True)
class DubEncoding:
    """How the muxer would encode the dub track: ffmpeg output arguments, file suffix, other
    arguments for mono; the same for an in-process encoder (codec, bit/s mono and stereo,
    codec options), which a streaming mixer may run on several CPUs (``parallel_encode``)."""

    args: tuple[str, ...]
    suffix: str
    mono_args: tuple[str, ...] | None = None
    codec: str | None = None
    bit_rates: tuple[int, int] | None = None
    codec_options: tuple[tuple[str, str], ...] = ()
    # Bit/s for each full-range channel of a surround dub (not the LFE); None: stereo only.
    surround_bit_rate: int | None = None

    def args_for(self, channels: int, lfe: int = 0) -> tuple[str, ...]:
        if channels == 1:
            return self.mono_args or self.args
        if channels > 2 and self.surround_bit_rate and "-b:a" in self.args:
            at = self.args.index("-b:a") + 1
            return (*self.args[:at], str(self.bit_rate(channels, lfe)), *self.args[at + 1:])
        return self.args

    def bit_rate(self, channels: int, lfe: int = 0) -> int | None:
        """Bit/s of a dub of ``channels`` (``lfe`` of them low-frequency effects)."""
        if channels > 2:
            return self.surround_bit_rate and self.surround_bit_rate * (channels - lfe)
        return self.bit_rates and self.bit_rates[0 if channels == 1 else 1]


@runtime_checkable
class EncodesDub(Protocol):
    """A muxer that copies a dub track already encoded its way; None when it cannot."""

    def dub_encoding(self) -> DubEncoding | None: ...


@runtime_checkable
class StreamsEncoded(Protocol):
    """A mixer that encodes the track as it finishes it, while clips arrive (``run/tail.py``)."""

    def encode_as(self, encoding: DubEncoding) -> None: ...


@runtime_checkable
class MixesSurround(Protocol):
    """A mixer that can dub a surround original in its own channels (``MediaInfo.surround_audio``);
    asked before ingest, which extracts them only then."""

    def keeps_surround(self) -> bool: ...


@runtime_checkable
class CallsProvider(Protocol):
    """Calls a remote service; its counters go to the live display and the report."""

    provider_stats: ProviderStats


@runtime_checkable
class EstimatesUsage(Protocol):
    """What a job this long will use (calls, tokens, audio): the estimate before a paid run."""

    provider_stats: ProviderStats

    def estimate_usage(self, duration_s: float) -> Usage: ...


@runtime_checkable
class ResumableTranslator(Protocol):
    """A translator whose answers are worth keeping between runs (they are paid for): the
    runner caches every finished batch, and tells the translator about batches answered from
    the cache, so that later batches still get the lines before them as context."""

    def remember(self, segments: list[Segment]) -> Any: ...


@runtime_checkable
class UsesSpeakingRate(Protocol):
    """An aligner that predicts a clip's length from the voice's speaking rate: before the
    first line is aligned, the runner measures the job's voice once (a line synthesized at its
    natural rate, cached with the clips) and sets ``JobContext.speaking_rate``, unless
    ``wants_measured_rate`` is False (a rate set in its options)."""

    @property
    def wants_measured_rate(self) -> bool: ...

    def predicted_duration(self, text: str, ctx: JobContext) -> float: ...


@runtime_checkable
class RefitsClips(Protocol):
    """An aligner that looks at each synthesized clip (align=hybrid). ``refit`` returns
    ``keep``; ``resynthesize`` (it changed the segment's rate); or ``shorten`` (the line does
    not fit even at the speed cap: the runner asks a :class:`ShortensLines` translator for at
    most ``segment.extra["char_budget"]`` characters, or records that none could)."""

    def refit(self, segment: Segment, ctx: JobContext) -> str: ...


@runtime_checkable
class RegroupsLines(Protocol):
    """An aligner that decides what a line is (align=semantic): the recogniser's segments go
    through ``regroup`` before translation, as a stream."""

    def regroup(self, segments: Iterable[Segment]) -> Iterator[Segment]: ...


@runtime_checkable
class ReadsGrowingSpeech(Protocol):
    """A transcriber that may start while ingest is still extracting the speech (see
    ``JobContext.speech_started``): true ``reads_growing_speech`` means it reads
    ``media.extra["speech_growing"]`` (an ``audio.GrowingWav``) when that is there."""

    reads_growing_speech: bool


@runtime_checkable
class StreamsLines(Protocol):
    """A translator whose lines need some context, not a fixed batch (translate=subtitles):
    it gets the lines as they are recognised and yields translations in start order."""

    def translate_stream(self, segments: Iterable[Segment], ctx: JobContext) -> Iterator[Segment]: ...


@runtime_checkable
class ShortensLines(Protocol):
    """A translator that can say a line again in at most ``max_chars`` characters, or None."""

    def shorten(self, segment: Segment, max_chars: int, ctx: JobContext) -> str | None: ...


def worker_hint(stage_obj: Any) -> WorkerHint:
    """The stage's own hint, or a conservative default."""
    return stage_obj.worker_hint() if isinstance(stage_obj, HintsWorkers) else WorkerHint()


__all__ = [
    "STAGES", "Segment", "MediaInfo", "WorkerHint", "JobContext", "JobScope", "Cancelled",
    "Ingester", "Transcriber", "Translator", "Aligner", "Synthesizer", "Mixer", "Muxer",
    "Checked", "KnowsSourceLanguage", "HintsWorkers", "Scoped", "CallsProvider", "EstimatesUsage", "ResumableTranslator",
    "UsesSpeakingRate", "RefitsClips", "RegroupsLines", "ShortensLines", "ReadsGrowingSpeech",
]
