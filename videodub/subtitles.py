"""Reading and writing subtitle files (SRT via ``srt``, WebVTT via ``webvtt-py``), and the
layout of a cue: lines of a readable length, at most two of them, a long line split into
several cues timed by their share of its text."""

from __future__ import annotations

import html
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import srt

from videodub.errors import VideodubError
from videodub.linebreak import break_lines, columns, subtag
from videodub.media import write_text_atomic
from videodub.model import Segment

log = logging.getLogger(__name__)

# What a subtitle file holds that is not said: markup (<i>, <font ...>, WebVTT's <v Name> and
# <00:00:01.500> word times), ASS override blocks ({\an8}), and, in subtitles for the deaf,
# sound descriptions in brackets ([music], [LAUGHS]) and sung lines (♪ ... ♪: the song plays on
# in the background).
MARKUP = re.compile(r"</?[A-Za-z][^<>]*>|<\d[\d:.]*>|\{\\[^{}]*\}")
SOUND_DESCRIPTION = re.compile(r"\[[^\[\]]*\]|♪[^♪]*♪|[♪♫]")
# Subtitles for the deaf also put sounds in parentheses and name speakers in capitals. Taken
# out: a parenthesis in capitals anywhere ("(LAUGHS)"), one that is a whole line
# ("(laughs)"), and a name in capitals of three letters or more that opens a line with a
# colon ("JOHN:", "- DR. LEE:"). A parenthesis in a sentence ("the API (interface)") is said.
SOUND_IN_CAPITALS = re.compile(r"\((?=[^()]*[A-ZÀ-Þ])[^()a-zß-ÿ]*\)")
WHOLE_LINE_PARENTHESIS = re.compile(r"(?m)^[\s-]*\([^()]*\)[\s.,!?]*$")
SPEAKER_LABEL = re.compile(r"(?m)^([\s-]*)(?=(?:[^a-zß-ÿ:\n]*[A-ZÀ-Þ]){3})[A-ZÀ-Þ][^a-zß-ÿ:\n]{0,30}:(?=\s)")


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


def read_cues(path: Path, spoken: bool = False) -> list[Cue]:
    """Cues of an .srt or .vtt file, sorted by start, each on one line; with ``spoken``, only
    what is said (:func:`spoken_text`), cues with nothing said left out. One-line
    VideodubError if unreadable."""
    clean = spoken_text if spoken else (lambda text: " ".join(text.split()))
    if not path.is_file():
        raise VideodubError(f"subtitle file not found: {path}")
    try:
        text = decode_text(path.read_bytes(), path)
    except OSError as exc:
        raise VideodubError(f"{path}: cannot read subtitle file ({exc.strerror or exc})") from exc
    try:
        if path.suffix.lower() == ".vtt" or text.lstrip().startswith("WEBVTT"):
            import webvtt

            cues = [Cue(_vtt_seconds(c.start), _vtt_seconds(c.end),
                        clean(c.raw_text if spoken else c.text))
                    for c in webvtt.from_string(text)]
        else:
            cues = [Cue(s.start.total_seconds(), s.end.total_seconds(), clean(s.content))
                    for s in srt.parse(text)]
    except Exception as exc:  # noqa: BLE001 - both parsers raise their own error types
        raise VideodubError(f"{path}: not a valid SRT/WebVTT file ({str(exc).splitlines()[0]})") from exc
    cues = [c for c in cues if c.text and c.end > c.start]
    if not cues:
        raise VideodubError(f"{path}: subtitle file has no cues")
    return sorted(cues, key=lambda c: c.start)


def spoken_text(text: str) -> str:
    """A cue's text as it is said: markup, sound descriptions and entities (``&amp;``) gone,
    on one line. A cue with nothing left to say is empty."""
    text = SPEAKER_LABEL.sub(r"\1", SOUND_DESCRIPTION.sub(" ", MARKUP.sub("", text)))
    text = WHOLE_LINE_PARENTHESIS.sub(" ", SOUND_IN_CAPITALS.sub(" ", text))
    return " ".join(html.unescape(text).split())


def _vtt_seconds(stamp: str) -> float:
    parts = [float(p) for p in stamp.replace(",", ".").split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    h, m, s = parts
    return h * 3600 + m * 60 + s


# Character-based languages: where the common streaming style guides give a line fewer
# characters (Japanese 13 full-width characters, Chinese and Korean 16; in columns, a
# full-width character taking two; Cantonese is written in Chinese characters) and count a
# half-width character as half a character.
WIDE_LINE_COLUMNS = {"ja": 26, "zh": 32, "yue": 32, "ko": 32}
# Characters a second a viewer reads comfortably: 20 for most languages (the common streaming
# guideline for adults is 17 to 20); Japanese 4.
FAST_CPS = 20.0
FAST_CPS_BY_LANG = {"ja": 4.0}


@dataclass
class SubtitleLayout:
    """How cues are laid out and judged (``subtitles.*``): the common streaming rules."""

    # Longest line, in columns: a wide character (Chinese, Japanese, Korean) takes two; 0
    # leaves each line's text on one line, as before.
    max_line_chars: int = 42
    # ... and for the languages named here (by their primary subtag), in the same columns.
    line_columns_by_lang: dict[str, int] = field(default_factory=lambda: dict(WIDE_LINE_COLUMNS))
    # Lines a cue shows at once; a line of the dub that needs more becomes several cues.
    max_lines: int = 2
    # Reading speed above which the report counts a cue as fast, characters a second; and
    # for the languages named here.
    fast_cps: float = FAST_CPS
    fast_cps_by_lang: dict[str, float] = field(default_factory=lambda: dict(FAST_CPS_BY_LANG))
    # A cue too brief to read (under MIN_CUE_S, or faster than the language's fast_cps) is
    # held on after its speech by up to this much, into the silence before the next; 0: never.
    max_extend_s: float = 0.5

    def __post_init__(self) -> None:
        if self.max_line_chars < 0 or self.max_lines < 1:
            raise ValueError(f"subtitles: max_line_chars must be >= 0 and max_lines >= 1, got "
                             f"{self.max_line_chars} and {self.max_lines}")
        for lang, width in self.line_columns_by_lang.items():
            if width < 1:
                raise ValueError(f"subtitles.line_columns_by_lang.{lang} must be 1 or more, "
                                 f"got {width}")
        for key, cps in (("fast_cps", self.fast_cps), *(
                (f"fast_cps_by_lang.{lang}", v) for lang, v in self.fast_cps_by_lang.items())):
            if cps <= 0:
                raise ValueError(f"subtitles.{key} must be above 0, got {cps:g}")
        if not 0 <= self.max_extend_s <= 2:
            raise ValueError(f"subtitles.max_extend_s must be between 0 and 2, got "
                             f"{self.max_extend_s:g}")

    def width(self, lang: str | None) -> int:
        """The longest line in ``lang``, in columns; 0: no wrapping."""
        if not self.max_line_chars:
            return 0
        return self.line_columns_by_lang.get(subtag(lang), self.max_line_chars)

    def cps(self, lang: str | None) -> float:
        return self.fast_cps_by_lang.get(subtag(lang), self.fast_cps)


def reading_chars(text: str, lang: str | None) -> float:
    """Characters as the reading speed counts them: in Chinese, Japanese and Korean a
    half-width character (Latin, a space, ASCII punctuation) as half of one."""
    return columns(text) / 2 if subtag(lang) in WIDE_LINE_COLUMNS else float(len(text))


def layout_cue(text: str, layout: SubtitleLayout, lang: str | None = None) -> list[str]:
    """``text`` (in ``lang``) as the content of one or more cues, lines as wide as
    ``layout.width(lang)`` (:func:`~videodub.linebreak.break_lines`)."""
    return break_lines(text, layout.width(lang), layout.max_lines, lang)


# The streaming style guides' timing: a cue stays up 5/6 s at least, and two frames (at 24
# fps) part it from the next.
MIN_CUE_S = 5 / 6
CUE_GAP_S = 2 / 24


def write_srt(segments: list[Segment], path: Path, target: bool,
              layout: SubtitleLayout | None = None, lang: str | None = None) -> Path:
    """The source or target text of ``segments`` (in ``lang``) as SRT, each laid out by
    ``layout``: a line split into several cues shares its time between them by their share
    of its text; a cue too brief to read is held on into the silence after it (:func:`_held`)."""
    layout = layout or SubtitleLayout()
    cues: list[tuple[float, float, str]] = []
    for seg in segments:
        text = (seg.target_text if target else seg.source_text) or ""
        if not text.strip():
            continue
        end = max(seg.end, seg.start + 0.01)
        parts = layout_cue(text, layout, lang)
        weights = [columns(c.replace("\n", "")) for c in parts]
        at = seg.start
        for cue, weight in zip(parts, weights):
            until = at + (end - seg.start) * weight / sum(weights)
            cues.append((at, until, cue))
            at = until
    subs = [srt.Subtitle(index=0, start=timedelta(seconds=a), end=timedelta(seconds=b),
                         content=cue) for a, b, cue in _held(cues, layout, lang)]
    return write_text_atomic(path, srt.compose(subs, reindex=True))


def _held(cues: list[tuple[float, float, str]], layout: SubtitleLayout,
          lang: str | None) -> list[tuple[float, float, str]]:
    """Each cue ends ``CUE_GAP_S`` before the next begins, so that a viewer sees the change
    (one whose speech runs into the next line's gives way; none is cut below half the time
    to the next), and is held past its speech until it has been up ``MIN_CUE_S`` and long
    enough to read at the language's ``fast_cps`` (by ``max_extend_s`` at most for that;
    ``0`` holds none), as far as the next allows: the parts of a split line follow each
    other and are not held."""
    held = []
    for i, (start, end, text) in enumerate(cues):
        follows = cues[i + 1][0] if i + 1 < len(cues) else math.inf
        if start < follows:
            end = min(end, max(follows - CUE_GAP_S, (start + follows) / 2))
        if layout.max_extend_s:
            reading = reading_chars(text.replace("\n", " "), lang) / layout.cps(lang)
            want = start + max(MIN_CUE_S, min(reading, end - start + layout.max_extend_s))
            end = max(end, min(want, follows - CUE_GAP_S))
        held.append((start, end, text))
    return held


def reading_figures(path: Path, lang: str | None = None,
                    layout: SubtitleLayout | None = None) -> dict:
    """How readable the subtitles of ``path`` (in ``lang``) are, as written: their cues, the
    longest line (columns) and the most lines a cue has, and reading speed (characters a
    second, :func:`reading_chars`, line breaks not counted): the 95th percentile, the
    fastest, and cues over the language's ``fast_cps``."""
    layout = layout or SubtitleLayout()
    cues = list(srt.parse(path.read_text(encoding="utf-8")))
    cps = sorted(reading_chars(c.content.replace("\n", " "), lang)
                 / max((c.end - c.start).total_seconds(), 0.01) for c in cues)
    lines = [line for c in cues for line in c.content.split("\n")]
    p95 = cps[min(len(cps) - 1, int(round(0.95 * (len(cps) - 1))))] if cps else None
    fast = layout.cps(lang)
    return {"cues": len(cues),
            "longest_line_columns": max((columns(x) for x in lines), default=0),
            "most_lines_a_cue": max((len(c.content.split("\n")) for c in cues), default=0),
            "cps_p95": None if p95 is None else round(p95, 1),
            "cps_max": round(cps[-1], 1) if cps else None,
            "fast_cps": fast,
            "cues_over_fast_cps": sum(v > fast for v in cps)}
