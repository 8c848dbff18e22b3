"""transcribe=openai: OpenAI's ``whisper-1`` (or an OpenAI-compatible server) with segment timestamps.

The speech track is encoded to a compressed upload (mp3 by default). Audio whose upload
would pass the 25 MiB limit (or ``max_chunk_s``) is cut at its quietest moments into
chunks that are encoded and transcribed in parallel, within the endpoint's rate limit; the
segments come back in order with each chunk's offset added. The first chunk is cut shorter
(``first_chunk_s``), so the first lines are back, and on their way to translation and
speech, while the rest is still being recognised. Segments that the API itself
marks doubtful (low ``avg_logprob``, high ``compression_ratio``, high ``no_speech_prob``)
are flagged in ``segments.json``.

Only ``whisper-1`` returns segment timestamps at OpenAI (``gpt-4o-transcribe`` answers text
only), so other OpenAI models are refused before any work. Local servers (speaches,
faster-whisper-server, LocalAI) return ``verbose_json`` segments for their Whisper models.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from videodub import hookimpl, voice_activity
from videodub.config import transport
from videodub.errors import VideodubError
from videodub.languages import code_of, primary
from videodub.media import run_ffmpeg
from videodub.model import JobContext, JobScope, MediaInfo, Segment, WorkerHint
from videodub.recognition import suspect_flags
from videodub.providers import aio
from videodub.providers.openai_api import OpenAIOptions, OpenAIProvider, RetryableError, is_openai
from videodub.providers.usage import Usage
from videodub.machine import Machine

MIB = 2**20
# Bytes per second of each upload format at 16 kHz mono (flac is an upper estimate; every
# encoded chunk is measured, and one that is still too large is cut again).
UPLOAD_FORMATS = {"mp3": "libmp3lame", "ogg": "libopus", "flac": "flac", "wav": "pcm_s16le"}
NO_TIMESTAMP_MODELS = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")
FRAME_S = 0.02
QUIET_WINDOW_S = 0.4


@dataclass
class OpenAITranscribeOptions(OpenAIOptions):
    # whisper-1 at OpenAI; a local server's Whisper model name (e.g. Systran/faster-whisper-small).
    model: str = "whisper-1"
    # Upload encoding: mp3, ogg (opus), flac or wav.
    upload_format: str = "mp3"
    # Bitrate for mp3 and ogg uploads.
    upload_kbps: int = 64
    # The server's upload limit in MiB (OpenAI: 25); longer audio is cut at silences.
    max_upload_mb: float = 25.0
    # Also cut into chunks of at most this many seconds, transcribed in parallel, so long
    # media is recognised sooner and translation starts earlier (0: only when the upload
    # limit requires it).
    max_chunk_s: float = 600.0
    # The first chunk is cut at most this long (at a silence past 60 % of it), so the first
    # lines come back after a short upload and translation and speech start while the rest is
    # still being recognised (0: as long as the others).
    first_chunk_s: float = 60.0
    # Words and names that help recognition (Whisper's prompt).
    prompt: str = ""
    # Silero finds where the source speaks (what align snaps lines to and the mix takes the
    # original voice out of), run here while the audio is away; off: the energy detector
    # alone. Not the transcript: not in its cache key.
    vad: bool = transport(True)
    # A whole upload can take minutes to transcribe (still a transport option: not in cache keys).
    timeout_s: float = transport(600.0)

    def __post_init__(self) -> None:
        if self.upload_format not in UPLOAD_FORMATS:
            raise ValueError(f"upload_format must be one of {', '.join(UPLOAD_FORMATS)}, "
                             f"got {self.upload_format!r}")
        if self.max_upload_mb <= 0:
            raise ValueError(f"max_upload_mb must be > 0, got {self.max_upload_mb}")
        if self.max_chunk_s < 0 or 0 < self.max_chunk_s < 5:
            raise ValueError(f"max_chunk_s must be 0 or at least 5, got {self.max_chunk_s}")
        if self.first_chunk_s < 0 or 0 < self.first_chunk_s < 5:
            raise ValueError(f"first_chunk_s must be 0 or at least 5, got {self.first_chunk_s}")
        if not 8 <= self.upload_kbps <= 320:
            raise ValueError(f"upload_kbps must be 8-320, got {self.upload_kbps}")


@dataclass(frozen=True)
class Chunk:
    index: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def bytes_per_second(fmt: str, kbps: int) -> float:
    if fmt == "wav":
        return 32000.0
    if fmt == "flac":
        return 32000.0 * 0.8
    return kbps * 1000 / 8 * 1.03  # container overhead


def frame_energy(audio: np.ndarray, rate: int) -> np.ndarray:
    """Mean square per 20 ms frame, a minute at a time (hours of audio stay small in memory)."""
    hop = max(1, int(rate * FRAME_S))
    n = len(audio) // hop
    if n == 0:
        return np.zeros(1)
    out = np.empty(n, dtype=np.float32)
    block = int(60 / FRAME_S)
    for first in range(0, n, block):
        last = min(n, first + block)
        frames = audio[first * hop: last * hop].astype(np.float32).reshape(last - first, hop)
        out[first:last] = np.einsum("ij,ij->i", frames, frames) / hop
    return out


def quietest_point(energy: np.ndarray, lo: float, hi: float) -> float:
    """The middle of the quietest ``QUIET_WINDOW_S`` stretch between ``lo`` and ``hi`` seconds
    (the latest one among equals, so chunks stay long)."""
    a, b = int(lo / FRAME_S), max(int(lo / FRAME_S) + 1, int(hi / FRAME_S))
    win = max(1, int(QUIET_WINDOW_S / FRAME_S))
    seg = energy[a:b]
    if len(seg) <= win:
        return (a + len(seg) / 2) * FRAME_S
    smooth = np.convolve(seg, np.ones(win) / win, mode="valid")
    best = np.flatnonzero(smooth <= smooth.min() * 1.0001 + 1e-12)[-1]
    return (a + best + win / 2) * FRAME_S


def plan_chunks(energy: np.ndarray, duration: float, max_chunk: float,
                first_chunk: float = 0.0) -> list[Chunk]:
    """Cut ``duration`` seconds into chunks of at most ``max_chunk`` at quiet points, the
    first of them at most ``first_chunk`` (when that is shorter)."""
    limit = first_chunk if 0 < first_chunk < max_chunk else max_chunk
    cuts = [0.0]
    while duration - cuts[-1] > limit:
        lo = cuts[-1] + limit * 0.6
        cuts.append(round(quietest_point(energy, lo, cuts[-1] + limit), 3))
        limit = max_chunk
    cuts.append(duration)
    return [Chunk(i, a, b) for i, (a, b) in enumerate(zip(cuts, cuts[1:]))]


class OpenAITranscriber:
    def __init__(self, options: OpenAITranscribeOptions) -> None:
        self.options = options
        self.provider = OpenAIProvider("transcribe", options, "transcriptions", options.model)
        self.provider_stats = self.provider.stats
        self.limit_bytes = int(options.max_upload_mb * MIB)
        self.scope: JobScope | None = None

    def attach(self, scope: JobScope) -> None:
        self.provider.attach(scope)
        self.scope = scope

    @property
    def finds_voice(self) -> bool:
        """The job's speech regions are found by voice: Silero runs here while the audio is
        away (``videodub.voice_activity.RunAhead``), not on align's path."""
        return bool(self.options.vad)

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=False, memory_mb=50, max_concurrency=1,
                          reason="one audio track; its chunks run concurrently inside")

    def check(self, ctx: JobContext) -> None:
        model = self.options.model
        if is_openai(self.provider.base_url) and model.startswith(NO_TIMESTAMP_MODELS):
            raise VideodubError(
                f"transcribe=openai needs segment timestamps, which {model} does not return; "
                f"set transcribe.model=whisper-1 (or use transcribe=faster_whisper)")
        self.provider.check(ctx.cancel_event)

    def estimate_usage(self, duration_s: float) -> Usage:
        first = self.options.first_chunk_s
        rest = duration_s - first if 0 < first < min(duration_s, self._max_chunk_s()) else None
        calls = (1 + math.ceil(rest / self._max_chunk_s()) if rest is not None
                 else max(1, math.ceil(duration_s / self._max_chunk_s())))
        return Usage(audio_in_s=duration_s, calls=calls)

    def _max_chunk_s(self) -> float:
        opts = self.options
        by_size = 0.9 * self.limit_bytes / bytes_per_second(opts.upload_format, opts.upload_kbps)
        return min(by_size, opts.max_chunk_s) if opts.max_chunk_s else by_size

    # -- the stage -------------------------------------------------------------------------
    def transcribe(self, media: MediaInfo, ctx: JobContext) -> Iterator[Segment]:
        import soundfile

        # Where the source speaks, found by voice while the chunks are away: the model runs
        # in a thread of its own until the job ends, and align reads what it has found.
        if self.finds_voice:
            voice_activity.by_voice(media.speech_audio)
        if self.finds_voice and self.scope is not None:
            self.scope.shared(("voice ahead", str(media.speech_audio)),
                              lambda: voice_activity.RunAhead(media.speech_audio,
                                                              ctx.cancel_event),
                              voice_activity.RunAhead.stop)
        audio, rate = soundfile.read(str(media.speech_audio), dtype="int16")
        energy = frame_energy(audio, rate)
        duration = len(audio) / rate
        chunks = plan_chunks(energy, duration, self._max_chunk_s(), self.options.first_chunk_s)
        if len(chunks) > 1:
            ctx.note(f"transcribe: {len(chunks)} chunks cut at silences "
                     f"({', '.join(f'{c.start:.1f}' for c in chunks[1:])} s)")
        folder = ctx.work_dir / "upload"
        folder.mkdir(exist_ok=True)
        next_id = 0
        encoders = ThreadPoolExecutor(max_workers=Machine.detect().cpus,
                                      thread_name_prefix="videodub-transcribe-encode")
        try:
            pending = [encoders.submit(self._encode_and_send, media.speech_audio, c, energy,
                                       folder, ctx) for c in chunks]
            for job in pending:
                for request in aio.wait(job, ctx.cancel_event):
                    for seg in aio.wait(request, ctx.cancel_event):
                        seg.id = next_id
                        next_id += 1
                        yield seg
        finally:
            encoders.shutdown(wait=False, cancel_futures=True)

    def _encode_and_send(self, source: Path, chunk: Chunk, energy: np.ndarray, folder: Path,
                         ctx: JobContext) -> list[Future]:
        """Encode a chunk (cut again where it is still too large) and start its requests."""
        opts = self.options
        path = folder / f"chunk{chunk.index:04d}-{chunk.start:09.3f}.{opts.upload_format}"
        args = ["-v", "error", "-ss", f"{chunk.start:.3f}", "-t", f"{chunk.duration:.3f}",
                "-i", str(source), "-ac", "1", "-c:a", UPLOAD_FORMATS[opts.upload_format]]
        if opts.upload_format in ("mp3", "ogg"):
            args += ["-b:a", f"{opts.upload_kbps}k"]
        if opts.upload_format == "mp3":
            # LAME's faster quantizer search: half the CPU of its default, for a recogniser
            # that does not hear the finer noise shaping.
            args += ["-compression_level", "7"]
        run_ffmpeg([*args, str(path)], ctx, what=f"encoding audio chunk {chunk.index}")
        size = path.stat().st_size
        if size > self.limit_bytes:
            if chunk.duration < 10:
                raise VideodubError(f"transcribe: {chunk.duration:.1f} s of audio encode to "
                                    f"{size / MIB:.1f} MiB, over transcribe.max_upload_mb")
            mid = quietest_point(energy, chunk.start + chunk.duration / 3,
                                 chunk.start + 2 * chunk.duration / 3)
            path.unlink()
            halves = (Chunk(chunk.index * 2, chunk.start, mid), Chunk(chunk.index * 2 + 1, mid, chunk.end))
            return [f for half in halves for f in self._encode_and_send(source, half, energy, folder, ctx)]
        return [aio.submit(self._send(path, chunk, ctx))]

    async def _send(self, path: Path, chunk: Chunk, ctx: JobContext) -> list[Segment]:
        opts = self.options
        data = path.read_bytes()
        kwargs: dict[str, Any] = {"model": opts.model, "response_format": "verbose_json",
                                  "timestamp_granularities": ["segment"]}
        if ctx.source_lang:
            kwargs["language"] = primary(ctx.source_lang)
        if opts.prompt:
            kwargs["prompt"] = opts.prompt

        async def send(client):
            return await client.audio.transcriptions.with_raw_response.create(
                file=(path.name, data), **kwargs)

        def parse(raw) -> dict:
            body = raw.http_response.json()
            if not isinstance(body, dict) or "text" not in body:
                raise RetryableError("the answer has no transcription text")
            segments = body.get("segments")
            if segments is not None and not (isinstance(segments, list) and all(
                    isinstance(s, dict) and _is_time(s.get("start")) and _is_time(s.get("end"))
                    for s in segments)):
                raise RetryableError("the answer's segments are not a list with start and end "
                                     "times")
            return body

        body = await self.provider.request(send, parse, what=f"transcribing chunk {chunk.index}")
        self.provider.stats.add(audio_in_s=float(body.get("duration") or chunk.duration))
        if ctx.source_lang is None and body.get("language"):
            ctx.source_lang = code_of(str(body["language"])) or ctx.source_lang
        return self._segments(body, chunk)

    def _segments(self, body: dict, chunk: Chunk) -> list[Segment]:
        raw = body.get("segments")
        if raw is None:
            if not str(body.get("text", "")).strip():
                return []
            raise VideodubError(
                f"transcribe: {self.provider.stats.endpoint} returned no segment timestamps for "
                f"model {self.options.model!r}; use a model that returns verbose_json segments "
                f"(whisper-1, or a Whisper model on speaches)")
        out = []
        for s in raw:
            text = str(s.get("text", "")).strip()
            if not text:
                continue
            start = chunk.start + max(0.0, float(s["start"]))
            end = min(chunk.end, chunk.start + float(s["end"]))
            logprob = float(s.get("avg_logprob", 0.0))
            compression = float(s.get("compression_ratio", 0.0))
            no_speech = float(s.get("no_speech_prob", 0.0))
            flags = suspect_flags(logprob, compression, no_speech, text)
            out.append(Segment(id=-1, start=round(start, 3), end=round(max(end, start), 3),
                               source_text=text, flags=flags,
                               extra={"avg_logprob": round(logprob, 3),
                                      "compression_ratio": round(compression, 3),
                                      "no_speech_prob": round(no_speech, 3),
                                      "chunk": chunk.index}))
        return out


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


@hookimpl
def register_transcribers(register):
    register("openai", OpenAITranscriber, OpenAITranscribeOptions,
             description="OpenAI whisper-1 or an OpenAI-compatible server; long audio cut at silences.")
