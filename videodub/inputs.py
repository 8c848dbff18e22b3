"""What ``input=`` names: one file, one URL, or many inputs (a folder, a glob, a list file).

A URL is kept as the string the user gave: a ``Path`` would fold ``http://`` into ``http:/``.
Many inputs become one job each, through Hydra's multirun (``videodub.cli``), so every
launcher (joblib, Ray, SLURM) applies to them.
"""

from __future__ import annotations

import glob
import hashlib
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from videodub.errors import VideodubError

URL_SCHEMES = ("http://", "https://")
# Files a folder or a glob contributes: what people keep their videos and talks in.
MEDIA_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".ts", ".mts", ".flv", ".wmv", ".mpg",
    ".mpeg", ".m4a", ".mp3", ".wav", ".flac", ".ogg", ".opus", ".aac", ".wma"})
# A list file: one path or URL a line; blank lines and lines starting with # are skipped.
LIST_SUFFIXES = frozenset({".txt", ".list"})
GLOB_CHARS = re.compile(r"[*?\[]")


def is_url(value: str) -> bool:
    return value.strip().lower().startswith(URL_SCHEMES)


def input_stem(value: str) -> str:
    """The name outputs are called after: a file's stem, or a URL path's last part (``video``
    when it has none), without characters a file name cannot hold."""
    if not is_url(value):
        return Path(value).stem
    name = Path(unquote(urlsplit(value).path)).stem
    name = re.sub(r"[^\w.\-]+", "_", name).strip("._")
    return name or "video"


def input_slug(value: str) -> str:
    """A run folder name for one input of many: its stem and a short hash of the whole
    input, so ``a/talk.mp4`` and ``b/talk.mp4`` do not share a folder."""
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]
    stem = re.sub(r"[^\w.\-]+", "_", input_stem(value)).strip("._") or "input"
    return f"{stem[:60]}-{digest}"


def is_many(value: str) -> bool:
    """Whether ``input=value`` names several inputs (a folder, a glob, a list file)."""
    if is_url(value) or not value.strip():  # an empty input is one (refused) input, not "."
        return False
    if GLOB_CHARS.search(value) and not Path(value).exists():
        return True
    path = Path(value)
    return path.is_dir() or (path.suffix.lower() in LIST_SUFFIXES and path.is_file())


def expand(value: str) -> list[str]:
    """The inputs ``value`` names, in a stable order; one-line errors when it names none."""
    path = Path(value)
    if is_url(value) or not is_many(value):
        return [value]
    if path.is_dir():
        # Hidden files are left out, as a glob leaves them: among them the "._talk.mp4"
        # that macOS writes beside each file on a USB disk (a few KB of metadata, no media).
        found = sorted(str(p) for p in path.iterdir() if p.is_file()
                       and not p.name.startswith(".") and p.suffix.lower() in MEDIA_SUFFIXES)
        if not found:
            raise VideodubError(f"no media files in folder {value} (looked for "
                                f"{', '.join(sorted(MEDIA_SUFFIXES))})")
        return found
    if path.suffix.lower() in LIST_SUFFIXES and path.is_file():
        try:
            # utf-8-sig: Notepad starts a UTF-8 file with a byte order mark.
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise VideodubError(f"cannot read the input list {value}: {exc}") from exc
        items = [list_item(ln) for ln in lines if ln.strip() and not ln.strip().startswith("#")]
        if not items:
            raise VideodubError(f"the input list {value} names no input")
        base = path.parent
        # Relative paths in a list are relative to the list, as in a playlist.
        return [i if is_url(i) or Path(i).is_absolute() else str(base / i) for i in items]
    found = sorted(p for p in glob.glob(value, recursive=True)
                   if Path(p).is_file() and Path(p).suffix.lower() in MEDIA_SUFFIXES)
    if not found:
        raise VideodubError(f"no media files match {value}")
    return found


def list_item(line: str) -> str:
    """One line of a list file as an input: a path pasted in quotes (Windows' "Copy as path")
    loses them, and ``~`` is the home folder, as on the command line."""
    item = line.strip()
    if len(item) > 1 and item[0] == item[-1] and item[0] in "\"'":
        item = item[1:-1].strip()
    return item if is_url(item) else str(Path(item).expanduser())


def with_ingest_for(overrides: list[str]) -> list[str]:
    """``overrides`` plus ``ingest=url`` when ``input=`` holds a URL and no ingester was
    chosen: a link works without naming how to fetch it (``ingest=url`` also reads local
    files, so a sweep mixing both runs with it)."""
    values = [o.split("=", 1)[1] for o in overrides if o.startswith(("input=", "+input="))]
    chosen = any(o.split("=", 1)[0].lstrip("+~") == "ingest" for o in overrides if "=" in o)
    if chosen or not any(re.search(r"(?i)\bhttps?://", v) for v in values):
        return list(overrides)
    return [*overrides, "ingest=url"]
