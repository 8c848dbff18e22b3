"""ingest=local: a file ffmpeg can read. Probes it, checks it, extracts the audio later stages use."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from videodub import hookimpl
from videodub.config import Validation
from videodub.errors import VideodubError
from videodub.media import decode_check, probe, run_ffmpeg
from videodub.model import JobContext, MediaInfo, WorkerHint


@dataclass
class LocalIngestOptions:
    # Sample rate of the mixing track (the dubbed audio is written at this rate).
    mix_sample_rate: int = 48000


# A URL that went through Path(): "http://host/x" became "http:/host/x".
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/+(?=[^/])")


def as_url(path: Path | str) -> str | None:
    """The URL ``path`` was made from (with its ``//`` back), or None for a file path."""
    text = str(path)
    match = _URL.match(text)
    if not match or text.startswith("/"):
        return None
    return f"{match.group(1)}://{text[match.end():]}"


class LocalIngester:
    def __init__(self, options) -> None:
        self.options = options

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=150, max_concurrency=1,
                          reason="one input file")

    def _probe(self, input_path: Path) -> tuple[Path, dict]:
        url = as_url(input_path)
        if url:
            raise VideodubError(f"input {url} is a URL; ingest=local reads files on this machine "
                                f"(download it first)")
        if not input_path.exists():
            raise VideodubError(f"input not found: {input_path}")
        if not input_path.is_file():
            raise VideodubError(f"input is not a file: {input_path}")
        # Absolute, so that ffmpeg never reads a name like "concat:x" or "a:b.mp4" as a protocol.
        input_path = input_path.resolve()
        info = probe(input_path)
        if not info["streams"]:
            raise VideodubError(f"{input_path.name} is damaged: its container lists no streams "
                                f"(a garbled header?)")
        if not any(s["type"] == "audio" for s in info["streams"]):
            raise VideodubError(f"{input_path.name} has no audio stream to dub")
        if not info["duration"]:
            raise VideodubError(f"{input_path.name}: cannot tell its duration")
        return input_path, info

    def check(self, ctx: JobContext) -> None:
        """Readable media with an audio stream, and room on disk for the run, before any work."""
        if ctx.input_path is None:
            return
        path, info = self._probe(ctx.input_path)
        duration = float(info["duration"])
        ctx.input_duration = duration
        # Extracted WAVs (16 kHz mono + stereo at the mix rate), the mixed track, the output
        # (about the input's size) and a margin.
        need = duration * (32000 + 2 * 2 * 2 * self.options.mix_sample_rate) + path.stat().st_size
        need = int(need * 1.2) + 50 * 2**20
        free = shutil.disk_usage(ctx.run_dir).free
        if free < need:
            raise VideodubError(
                f"not enough disk space in {ctx.run_dir}: the run needs about {need / 2**20:.0f} "
                f"MiB, {free / 2**20:.0f} MiB are free; free space or set hydra.run.dir elsewhere")

    def ingest(self, input_path: Path, ctx: JobContext) -> MediaInfo:
        input_path, info = self._probe(input_path)
        audio = [s for s in info["streams"] if s["type"] == "audio"]
        video = [s for s in info["streams"] if s["type"] == "video"
                 and s["codec"] not in ("mjpeg", "png")]  # cover art is not a video stream
        validation = self.options.validation
        if validation == Validation.full:
            decode_check(input_path, ctx)
        speech = ctx.work_dir / "speech16k.wav"
        full = ctx.work_dir / "original.wav"
        rate = self.options.mix_sample_rate
        # One decode, two outputs: 16 kHz mono for recognition, the mixing rate in stereo.
        run_ffmpeg(["-v", "error", "-i", str(input_path), "-map", "0:a:0", "-vn", "-sn", "-dn",
                    "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(speech),
                    "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "2", "-ar", str(rate),
                    "-c:a", "pcm_s16le", str(full)],
                   ctx, what=f"extracting audio from {input_path.name}")
        return MediaInfo(
            path=input_path, duration=float(info["duration"]), has_video=bool(video),
            audio_streams=len(audio), audio_codec=audio[0]["codec"],
            video_codec=video[0]["codec"] if video else None, speech_audio=speech,
            full_audio=full, sample_rate=rate, extra={"format": info["format"]})


@hookimpl
def register_ingesters(register):
    register("local", LocalIngester, LocalIngestOptions,
             description="Any file ffmpeg reads; probes, validates and extracts audio.")
