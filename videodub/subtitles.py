"""Reading and writing subtitle files (SRT via ``srt``, WebVTT via ``webvtt-py``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import srt

from videodub.errors import VideodubError
from videodub.media import write_text_atomic
from videodub.model import Segment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def decode_text(data: bytes, path: Path) -> str:
    """UTF-8 (with or without a BOM), else the encoding the bytes tell (subtitle files saved
    by older editors are often Latin-1 or Windows-1252); one line asking for UTF-8 when they
    tell none."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise VideodubError(f"{path}: cannot tell the subtitle file's text encoding; save it as "
                            f"UTF-8")
    log.info("%s: read as %s", path, best.encoding)
    return str(best)


def read_cues(path: Path) -> list[Cue]:
    """Cues of an .srt or .vtt file, sorted by start. One-line VideodubError if unreadable."""
    if not path.is_file():
        raise VideodubError(f"subtitle file not found: {path}")
    try:
        text = decode_text(path.read_bytes(), path)
    except OSError as exc:
        raise VideodubError(f"{path}: cannot read subtitle file ({exc.strerror or exc})") from exc
    try:
        if path.suffix.lower() == ".vtt" or text.lstrip().startswith("WEBVTT"):
            import webvtt

            cues = [Cue(_vtt_seconds(c.start), _vtt_seconds(c.end), " ".join(c.text.split()))
                    for c in webvtt.from_string(text)]
        else:
            cues = [Cue(s.start.total_seconds(), s.end.total_seconds(), " ".join(s.content.split()))
                    for s in srt.parse(text)]
    except Exception as exc:  # noqa: BLE001 - both parsers raise their own error types
        raise VideodubError(f"{path}: not a valid SRT/WebVTT file ({str(exc).splitlines()[0]})") from exc
    cues = [c for c in cues if c.text and c.end > c.start]
    if not cues:
        raise VideodubError(f"{path}: subtitle file has no cues")
    return sorted(cues, key=lambda c: c.start)


def _vtt_seconds(stamp: str) -> float:
    parts = [float(p) for p in stamp.replace(",", ".").split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    h, m, s = parts
    return h * 3600 + m * 60 + s


def write_srt(segments: list[Segment], path: Path, target: bool) -> Path:
    subs = []
    for i, seg in enumerate(segments, start=1):
        text = (seg.target_text if target else seg.source_text) or ""
        if not text.strip():
            continue
        subs.append(srt.Subtitle(index=i, start=timedelta(seconds=seg.start),
                                 end=timedelta(seconds=max(seg.end, seg.start + 0.01)),
                                 content=text.strip()))
    return write_text_atomic(path, srt.compose(subs, reindex=True))
