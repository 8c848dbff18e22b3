"""ffmpeg and PyAV helpers: running ffmpeg safely, probing inputs, writing files atomically."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from videodub.errors import Cancelled, VideodubError, no_space
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
    return Ffmpeg(args, ctx, what).wait()


class Ffmpeg:
    """One ffmpeg process started with ``args`` (no shell) and tracked by ``ctx``; its stderr
    goes to a temporary file, so several can run side by side without filling a pipe."""

    def __init__(self, args: list[str], ctx: JobContext | None, what: str) -> None:
        self.args, self.ctx, self.what = args, ctx, what
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        if ctx is not None:
            ctx.track_process(self.proc)

    def wait(self) -> str:
        """Its stderr once it has ended; a failure is one VideodubError line."""
        try:
            self.proc.wait()
            self.log.seek(0)
            stderr = self.log.read().decode("utf-8", "replace")
        finally:
            self.stop()
        if self.ctx is not None and self.ctx.cancel_event.is_set():
            raise Cancelled()
        args = self.args
        if self.proc.returncode != 0 and "No space left on device" in stderr:
            out = Path(args[-1]) if args and not args[-1].startswith("-") else None
            raise no_space(OSError(errno.ENOSPC, "No space left on device",
                                   str(out) if out else None), self.what)
        if self.proc.returncode != 0:
            last = [ln for ln in stderr.strip().splitlines() if ln.strip()][-1:] or ["no output"]
            raise VideodubError(f"{self.what} failed: {last[0].strip()}")
        return stderr

    def stop(self) -> None:
        """Killed if still running, and forgotten (harmless once it has ended)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.ctx is not None:
            self.ctx.untrack_process(self.proc)
        self.log.close()


def probe(path: Path) -> dict[str, Any]:
    """Streams and duration of a media file, via PyAV. Raises VideodubError for non-media."""
    import av

    try:
        with av.open(str(path)) as container:
            streams = []
            for s in container.streams:
                # The codec's own name (av1, mp3), not its decoder's (libdav1d, mp3float).
                context = s.codec_context
                entry = {"index": s.index, "type": s.type,
                         "codec": context.codec.canonical_name if context else None}
                if s.type == "audio":
                    entry["sample_rate"] = s.codec_context.sample_rate
                    entry["channels"] = s.codec_context.channels
                if s.type in ("audio", "subtitle"):
                    entry["language"] = s.metadata.get("language")
                    entry["default"] = bool(s.disposition & av.stream.Disposition.default)
                if s.type == "video":
                    entry["width"] = s.codec_context.width
                    entry["height"] = s.codec_context.height
                    # Cover art (a music file's picture), not a video stream.
                    entry["attached_pic"] = bool(s.disposition & av.stream.Disposition.attached_pic)
                entry["duration"] = (float(s.duration * s.time_base)
                                     if s.duration is not None and s.time_base else None)
                entry["start"] = (float(s.start_time * s.time_base)
                                  if s.start_time is not None and s.time_base else None)
                streams.append(entry)
            duration = container.duration / 1_000_000 if container.duration else None
            if duration is None:
                durations = [s["duration"] for s in streams if s["duration"]]
                duration = max(durations) if durations else None
            start = container.start_time / 1_000_000 if container.start_time is not None else 0.0
            return {"format": container.format.name, "duration": duration, "start": start,
                    "streams": streams}
    except av.error.FFmpegError as exc:
        raise VideodubError(f"{path}: not a readable media file ({exc.strerror or exc})") from exc


def decode_check(path: Path, ctx: JobContext | None = None,
                 streams: tuple[str, ...] = ("0",)) -> None:
    """Decode fully the ``streams`` (ffmpeg ``-map`` specifiers, ``-0:a:0`` to leave one
    out; every stream by default); raises VideodubError at the first corrupt packet.
    Pictures and sound are decoded; subtitle, data and attachment streams are only read (the
    null output has no encoder for them: mapping them fails on any file that has one)."""
    maps = [arg for spec in streams for arg in ("-map", spec)]
    run_ffmpeg(["-v", "error", "-xerror", "-i", str(path), *maps, "-map", "-0:t?", "-sn", "-dn",
                "-f", "null", "-"],
               ctx, what=f"decoding {path.name}")


# Temporary names: ".<stem>.<pid>-<host>-<random>.part<suffix>". The pid and host say whose
# it is, so a later job can tell one a killed job left from one a live job is writing.
_TEMP = re.compile(r"^\..+\.(?:(\d+)-([0-9a-f]{6})-)?[A-Za-z0-9_]+\.part(\.[^.]+)?$")
# A temporary file of a job that cannot be told dead (another host, no pid in the name) is
# stale after this long: no single output takes hours to write.
STALE_AFTER_S = 6 * 3600


# The longest file name most filesystems take (bytes), and the random characters mkstemp adds.
NAME_MAX = 255
_MKSTEMP_CHARS = 8


def fit_bytes(name: str, limit: int) -> str:
    """``name`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    data = name.encode("utf-8", "surrogateescape")
    if len(data) <= limit:
        return name
    end = limit
    while end > 0 and data[end] & 0xC0 == 0x80:  # a continuation byte: back to the start
        end -= 1
    return data[:end].decode("utf-8", "surrogateescape")


@cache
def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(folder: Path, recursive: bool = False,
                             older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporary files of :func:`atomic_path` in ``folder`` whose job is gone: a
    process of this host that no longer runs, or any owner after ``older_than_s``. A live
    job's files are left alone. Returns what was removed. (The run folder and the cache are
    swept when a job starts; a cache-pruning command calls this on the cache.)"""
    if not folder.is_dir():
        return []
    removed = []
    now = time.time()
    for path in (folder.rglob(".*.part*") if recursive else folder.glob(".*.part*")):
        match = _TEMP.match(path.name)
        if not match or not path.is_file():
            continue
        pid, host = match.group(1), match.group(2)
        with contextlib.suppress(FileNotFoundError):
            if pid and host == _host_tag():
                stale = int(pid) != os.getpid() and not _pid_alive(int(pid))
            else:
                stale = now - path.stat().st_mtime > older_than_s
            if stale:
                path.unlink()
                removed.append(path)
    return removed


# Less room than this on a filesystem counts as full (a write that failed there failed for it).
FULL_BELOW_BYTES = 1 << 20


def full_folder(folders: list[Path | None]) -> Path | None:
    """The first of ``folders`` whose filesystem is out of space or of inodes. Libraries
    that write files (libsndfile) report a full disk only as "System error"; this tells it."""
    for folder in folders:
        if folder is None:
            continue
        try:
            st = os.statvfs(folder)
        except OSError:
            continue
        if st.f_bavail * st.f_frsize < FULL_BELOW_BYTES or (st.f_files and not st.f_favail):
            return folder
    return None


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it into place only on success. The
    temporary name holds as much of ``final``'s as fits in a file name."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tag, suffix = f".{os.getpid()}-{_host_tag()}-", f".part{final.suffix}"
    room = NAME_MAX - 1 - len(tag) - _MKSTEMP_CHARS - len(suffix.encode())
    fd, tmp = tempfile.mkstemp(prefix=f".{fit_bytes(final.stem, room)}{tag}", suffix=suffix,
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
