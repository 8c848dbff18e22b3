"""ingest=url: a video or audio at a URL, fetched with yt-dlp, then read like a local file.

yt-dlp knows a thousand sites and, through its generic extractor, any direct media URL and
any page that embeds one. The download is kept in the cache under a hash of the URL, so a
re-run (or another job of the same video) does not fetch it again; an interrupted download
leaves yt-dlp's ``.part`` file, which the next run continues. Once the file is on disk the
ingester the job's registry has under ``local_ingest`` (the built-in ``local``) probes it and
extracts the audio, so a URL gets exactly the same checks as a file. A local path given to
``ingest=url`` goes straight to that ingester: a list mixing files and URLs runs with one
config.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videodub import hookimpl
from videodub.cachefiles import use
from videodub.errors import VideodubError
from videodub.inputs import is_url
from videodub.media import ffmpeg_exe, write_json_atomic
from videodub.model import JobContext, JobScope, MediaInfo, WorkerHint
from videodub.providers.secrets import redact
from videodub.tracks import check_track_choice

log = logging.getLogger(__name__)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# What a finished download leaves beside the media: the title and the file's name.
INFO_FILE = "download.json"


@dataclass
class UrlIngestOptions:
    # yt-dlp format selector: the best single file with audio, else best video + best audio.
    format: str = "b/bv*+ba"
    # Seconds to wait for the server before giving up.
    timeout_s: float = 30.0
    # The ingester that reads the downloaded file (and local paths).
    local_ingest: str = "local"
    # Sample rate of the mixing track, passed to that ingester.
    mix_sample_rate: int = 48000
    # The audio track to dub, passed to that ingester (ingest=local: auto, a number or a
    # language).
    audio_track: str = "auto"

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.local_ingest == "url":
            raise ValueError("local_ingest must name another ingester than url")
        check_track_choice(self.audio_track)


class _QuietLogger:
    """yt-dlp's messages go to our log; its errors come back to us as exceptions."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", ANSI.sub("", msg))

    def error(self, msg: str) -> None:
        log.debug("yt-dlp: %s", ANSI.sub("", msg))


def explain_download_error(url: str, exc: BaseException) -> str:
    """yt-dlp's error as the one line a user needs."""
    text = ANSI.sub("", str(exc)).strip()
    text = re.sub(r"^ERROR:\s*", "", text)
    text = re.sub(r"^\[[\w:]+\]\s*(\S+:\s*)?", "", text)
    text = re.sub(r"\s*\(caused by .*$", "", text, flags=re.S).splitlines()[0] if text else ""
    low = text.lower()
    if "unsupported url" in low or "no video formats" in low or "no media" in low:
        return f"no video or audio found at {url}"
    if "404" in low:
        return f"{url} was not found (HTTP 404)"
    if any(w in low for w in ("private", "sign in", "login", "members-only", "403")):
        return f"{url} is private or needs a login ({text})"
    if any(w in low for w in ("connection refused", "name or service", "timed out",
                              "unreachable", "urlopen error", "failed to resolve",
                              "temporary failure", "errno")):
        return f"cannot reach {url} ({text})"
    return f"cannot download {url}: {text or type(exc).__name__}"


class UrlIngester:
    def __init__(self, options: Any) -> None:
        self.options = options
        self.local: Any = None

    def attach(self, scope: JobScope) -> None:
        registry = scope.registry
        if registry is None:
            raise VideodubError("ingest=url needs the job's registry")
        impl = registry.get("ingest", self.options.local_ingest)
        fields = {k: getattr(self.options, k) for k in ("mix_sample_rate", "audio_track",
                                                        "validation", "workers", "effort")}
        known = getattr(impl.config, "__dataclass_fields__", {})
        self.local = impl.create(impl.config(**{k: v for k, v in fields.items() if k in known}),
                                 scope)

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=False, memory_mb=150, max_concurrency=1,
                          reason="one input")

    # -- yt-dlp ------------------------------------------------------------------------
    def _ydl(self, folder: Path | None, progress: Any = None) -> Any:
        import yt_dlp

        opts: dict[str, Any] = {
            "quiet": True, "no_warnings": True, "noprogress": True, "noplaylist": True,
            "logger": _QuietLogger(), "format": self.options.format,
            "socket_timeout": self.options.timeout_s, "retries": 2,
            "ffmpeg_location": ffmpeg_exe(), "color": {"stderr": "no_color", "stdout": "no_color"},
            # The file's time is when it was fetched, never the server's Last-Modified: a
            # cached download's modification time is its last use, and pruning goes by it.
            "updatetime": False,
        }
        if folder is not None:
            opts["outtmpl"] = {"default": str(folder / "media.%(ext)s")}
            opts["paths"] = {"home": str(folder), "temp": str(folder)}
        if progress is not None:
            opts["progress_hooks"] = [progress]
        return yt_dlp.YoutubeDL(opts)

    def _info(self, url: str) -> dict[str, Any]:
        import yt_dlp

        try:
            with self._ydl(None) as ydl:
                info = ydl.extract_info(url, download=False)
        except yt_dlp.utils.YoutubeDLError as exc:
            raise VideodubError(explain_download_error(url, exc)) from exc
        if not info or info.get("_type") == "playlist" and not info.get("entries"):
            raise VideodubError(f"no video or audio found at {url}")
        return info

    @staticmethod
    def _folder(url: str, ctx: JobContext) -> Path:
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]
        root = ctx.cache_dir / "downloads" if ctx.cache_dir is not None else ctx.work_dir / "download"
        return root / digest

    @staticmethod
    def cached(folder: Path, cache_root: Path | None = None) -> dict[str, Any] | None:
        """The finished download in ``folder`` (its record and file both there), or None;
        marked as used, so pruning the cache keeps it while this job runs."""
        import json

        try:
            record = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        media = folder / str(record.get("file") or INFO_FILE)
        if not media.is_file() or not use(cache_root, folder / INFO_FILE, media):
            return None
        return record

    def download(self, url: str, ctx: JobContext) -> tuple[Path, dict[str, Any]]:
        """The media file for ``url``: from the cache, or fetched now with progress logged."""
        import yt_dlp

        folder = self._folder(url, ctx)
        record = self.cached(folder, ctx.cache_dir)
        if record is not None:
            log.info("%s: using the download cached in %s", url, folder)
            ctx.note(f"download of {url} reused from the cache")
            return folder / record["file"], record
        folder.mkdir(parents=True, exist_ok=True)
        last = [0.0]

        def progress(d: dict[str, Any]) -> None:
            ctx.check_cancelled()
            now = time.monotonic()
            if d.get("status") == "downloading" and now - last[0] >= 1.0:  # the first, then 1/s
                last[0] = now
                total = d.get("total_bytes") or d.get("total_bytes_estimate")
                done = d.get("downloaded_bytes") or 0
                share = f"{100 * done / total:.0f}% of {total / 2**20:.1f} MiB" if total \
                    else f"{done / 2**20:.1f} MiB"
                log.info("downloading %s: %s", url, share)
                ctx.progress(f"[ingest] downloading {url}: {share}")

        try:
            with self._ydl(folder, progress) as ydl:
                info = ydl.extract_info(url, download=True)
                downloads = info.get("requested_downloads") or [{}]
                path = Path(downloads[0].get("filepath") or ydl.prepare_filename(info))
        except yt_dlp.utils.YoutubeDLError as exc:
            raise VideodubError(explain_download_error(url, exc)) from exc
        if not path.is_file():
            raise VideodubError(f"yt-dlp reported a download of {url} but wrote no file")
        record = {"url": redact(url), "title": info.get("title"), "extractor": info.get("extractor"),
                  "file": path.name, "bytes": path.stat().st_size}
        write_json_atomic(folder / INFO_FILE, record)
        log.info("downloaded %s (%.1f MiB)", url, record["bytes"] / 2**20)
        ctx.progress(f"[ingest] downloaded {url} ({record['bytes'] / 2**20:.1f} MiB)")
        return path, record

    # -- the stage ---------------------------------------------------------------------
    def check(self, ctx: JobContext) -> None:
        """For a URL: that it answers and has media (one request, no download); a cached
        download is not asked for again. A local path: the local ingester's checks."""
        url = ctx.input or ""
        if not is_url(url):
            self.local.check(ctx)
            return
        if self.cached(self._folder(url, ctx), ctx.cache_dir) is not None:
            return
        info = self._info(url)
        if info.get("duration"):
            ctx.input_duration = float(info["duration"])

    def ingest(self, input_path: Path, ctx: JobContext) -> MediaInfo:
        url = ctx.input or str(input_path)
        if not is_url(url):
            return self.local.ingest(input_path, ctx)
        path, record = self.download(url, ctx)
        if record.get("title"):
            from yt_dlp.utils import sanitize_filename

            ctx.output_name = sanitize_filename(record["title"])  # not the URL's "watch"
        media = self.local.ingest(path, ctx)
        media.extra.update({"url": url, "title": record.get("title")})
        return media


@hookimpl
def register_ingesters(register):
    register("url", UrlIngester, UrlIngestOptions,
             description="A URL yt-dlp can fetch (any supported site, a direct media link); "
                         "cached by URL, then read as a local file.")
