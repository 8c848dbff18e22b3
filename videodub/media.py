"""ffmpeg and PyAV helpers: running ffmpeg safely, probing inputs, writing files atomically."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from videodub.errors import Cancelled, VideodubError
from videodub.model import JobContext


@cache
def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped in the imageio-ffmpeg wheel (or IMAGEIO_FFMPEG_EXE)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], ctx: JobContext | None = None, what: str = "ffmpeg") -> str:
    """Run ffmpeg with ``args`` (no shell); return its stderr. Raises VideodubError on failure.

    The process is tracked by ``ctx`` so that cancelling the job kills it at once.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if ctx is not None:
        ctx.track_process(proc)
    try:
        _, err = proc.communicate()
    finally:
        if ctx is not None:
            ctx.untrack_process(proc)
    if ctx is not None and ctx.cancel_event.is_set():
        raise Cancelled()
    stderr = err.decode("utf-8", "replace")
    if proc.returncode != 0:
        last = [ln for ln in stderr.strip().splitlines() if ln.strip()][-1:] or ["no output"]
        raise VideodubError(f"{what} failed: {last[0].strip()}")
    return stderr


def probe(path: Path) -> dict[str, Any]:
    """Streams and duration of a media file, via PyAV. Raises VideodubError for non-media."""
    import av

    try:
        with av.open(str(path)) as container:
            streams = []
            for s in container.streams:
                entry = {"index": s.index, "type": s.type,
                         "codec": s.codec_context.name if s.codec_context else None}
                if s.type == "audio":
                    entry["sample_rate"] = s.codec_context.sample_rate
                    entry["channels"] = s.codec_context.channels
                if s.type == "video":
                    entry["width"] = s.codec_context.width
                    entry["height"] = s.codec_context.height
                entry["duration"] = (float(s.duration * s.time_base)
                                     if s.duration is not None and s.time_base else None)
                streams.append(entry)
            duration = container.duration / 1_000_000 if container.duration else None
            if duration is None:
                durations = [s["duration"] for s in streams if s["duration"]]
                duration = max(durations) if durations else None
            return {"format": container.format.name, "duration": duration, "streams": streams}
    except av.error.FFmpegError as exc:
        raise VideodubError(f"{path}: not a readable media file ({exc.strerror or exc})") from exc


def decode_check(path: Path, ctx: JobContext | None = None) -> None:
    """Decode every stream fully; raises VideodubError at the first corrupt packet."""
    run_ffmpeg(["-v", "error", "-xerror", "-i", str(path), "-map", "0", "-f", "null", "-"],
               ctx, what=f"decoding {path.name}")


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it into place only on success."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".part{final.suffix}",
                               dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give it the usual mode
        os.replace(tmp_path, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_text_atomic(final: Path, text: str) -> Path:
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return final


def write_json_atomic(final: Path, data: Any) -> Path:
    return write_text_atomic(final, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
