"""Reading and writing subtitle files (SRT via ``srt``, WebVTT via ``webvtt-py``), and the
layout of a cue: lines of a readable length, at most two of them, a long line split into
several cues timed by their share of its text."""

from __future__ import annotations

import html
import logging
import functools
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import srt

from videodub.errors import VideodubError
from videodub.languages import primary
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
# full-width character taking two) and count a half-width character as half a character.
WIDE_LINE_COLUMNS = {"ja": 26, "zh": 32, "ko": 32}
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

    def width(self, lang: str | None) -> int:
        """The longest line in ``lang``, in columns; 0: no wrapping."""
        if not self.max_line_chars:
            return 0
        return self.line_columns_by_lang.get(_subtag(lang), self.max_line_chars)

    def cps(self, lang: str | None) -> float:
        return self.fast_cps_by_lang.get(_subtag(lang), self.fast_cps)


def _subtag(lang: str | None) -> str:
    return primary((lang or "").lower().replace("_", "-"))


def reading_chars(text: str, lang: str | None) -> float:
    """Characters as the reading speed counts them: in Chinese, Japanese and Korean a
    half-width character (Latin, a space, ASCII punctuation) as half of one."""
    return _width(text) / 2 if _subtag(lang) in WIDE_LINE_COLUMNS else float(len(text))


# Text in Thai script: broken between words found by a dictionary (``_thai_words``).
_THAI = re.compile(r"[\u0e00-\u0e7f]")
# Punctuation that ends a clause: a cue preferably ends after one.
_CLAUSE_END = re.compile(r"[.!?;:,、。，！？؟،।]$")


def _width(text: str) -> int:
    """Columns: East Asian wide characters take two, combining marks (Thai vowels and tone
    marks above and below a consonant) none."""
    return sum(0 if unicodedata.combining(c) or unicodedata.category(c) == "Mn"
               else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


# Line breaking in text written without spaces (Chinese, Japanese), after the kinsoku rules:
# these never start a line (closing marks, small kana, the long-vowel mark) ...
_NO_START = set("、。，．・：；！？）」』】〉》〕］｝”’ー〜…ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々")
# ... and these never end one (opening marks).
_NO_END = set("（「『【〈《〔［｛“‘")
# Chinese characters and kana: a word holding them is broken between phrases (``_units``).
_HAN_OR_KANA = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _kana(c: str) -> bool:
    return "\u3041" <= c <= "\u30ff"


@functools.cache
def _phrases(model: str):
    """BudouX's parser for ``model`` (``ja``, ``zh-hans``, ``zh-hant``): where a line of that
    language breaks well, learnt from its text ("皆さんの|ための|ビデオ作りに|ついての")."""
    import budoux

    return {"ja": budoux.load_default_japanese_parser,
            "zh-hans": budoux.load_default_simplified_chinese_parser,
            "zh-hant": budoux.load_default_traditional_chinese_parser}[model]()


def _model(text: str, lang: str | None) -> str:
    """Japanese for text with kana (or a line of a Japanese track without any); Chinese
    otherwise, in traditional characters when the language tag says so (zh-Hant, zh-TW)."""
    tag = (lang or "").lower().replace("_", "-")
    if any(_kana(c) for c in text) or primary(tag) == "ja":
        return "ja"
    if primary(tag) == "zh" and any(part in ("hant", "tw", "hk", "mo") for part in tag.split("-")):
        return "zh-hant"
    return "zh-hans"


def _units(text: str, lang: str | None = None, phrases: bool = True) -> list[str]:
    """Spaceless text as the pieces a line may break between: phrases (``_phrases``), or
    with ``phrases`` off characters; kinsoku marks kept with their neighbours."""
    units: list[str] = []
    for piece in _phrases(_model(text, lang)).parse(text) if phrases else text:
        if units and (piece[0] in _NO_START or units[-1][-1] in _NO_END):
            units[-1] += piece
        else:
            units.append(piece)
    return units


def _thai_words(text: str) -> list[str]:
    """Thai, written without spaces between words (a space ends a phrase), as its words
    (PyThaiNLP's dictionary-based ``newmm``); a word after a space carries it, which marks a
    phrase's end to :func:`_chunks`. The repetition mark ``ๆ`` and closing punctuation stay
    with the word before them."""
    from pythainlp.tokenize import word_tokenize

    words: list[str] = []
    space = False
    for piece in word_tokenize(text, engine="newmm", keep_whitespace=True):
        if piece.isspace():
            space = True
            continue
        if words and not space and (piece[0] in "ๆฯ" or piece[0] in _NO_START
                                    or unicodedata.category(piece[0]) in ("Pe", "Pf", "Po")):
            words[-1] += piece
        else:
            words.append((" " if space and words else "") + piece)
        space = False
    return words


def _tokens(text: str, width: int, lang: str | None = None) -> tuple[list[str], str]:
    """Words and the glue between them. Text with Chinese characters or kana is broken
    between phrases too (:func:`_units`), a phrase wider than a line between its characters,
    and Thai between its words (:func:`_thai_words`): their pieces are glued with nothing, a
    piece after a space carrying it (a cue preferably ends there, :func:`_chunks`)."""
    if _THAI.search(text):
        return _thai_words(text), ""
    words = text.split()
    if not _HAN_OR_KANA.search(text):
        return words, " "
    tokens: list[str] = []
    for word in words:
        pieces = [piece for unit in _units(word, lang)
                  for piece in (_units(unit, lang, phrases=False) if _width(unit) > width
                                else [unit])] if _HAN_OR_KANA.search(word) else [word]
        tokens += [(" " if tokens else "") + pieces[0], *pieces[1:]]
    return tokens, ""


def _wrap(tokens: list[str], glue: str, width: int) -> list[str]:
    lines: list[str] = []
    for token in tokens:
        if lines and _width(lines[-1] + glue + token) <= width:
            lines[-1] += glue + token
        else:
            lines.append(token.lstrip())  # a Thai word after a phrase's space
    return lines


def _balanced(tokens: list[str], glue: str, width: int, most: int) -> list[str] | None:
    """The lines of ``tokens`` in at most ``most`` lines of ``width``, as even as they can
    be (the narrowest width that still takes ``most`` lines); None when they do not fit."""
    whole = _width(glue.join(tokens).lstrip())
    if whole <= width:
        return [glue.join(tokens).lstrip()]  # a line that fits stays one line
    for narrow in range(min(width, math.ceil(whole / most)), width + 1):
        lines = _wrap(tokens, glue, narrow)
        if len(lines) <= most and all(_width(x) <= narrow for x in lines):
            return lines
    lines = _wrap(tokens, glue, width)  # a word wider than a line: it stands alone
    return lines if len(lines) <= most else None


def layout_cue(text: str, layout: SubtitleLayout, lang: str | None = None) -> list[str]:
    """``text`` (in language ``lang``, when known) as the content of one or more cues: lines
    of ``layout.width(lang)`` at most, ``max_lines`` a cue, as few cues as fit, ending after a
    clause where one ends within half a cue of the even point (else as even as they can be)."""
    text = " ".join(text.split())
    width, most = layout.width(lang), layout.max_lines
    if not width or not text:
        return [text]
    tokens, glue = _tokens(text, width, lang)
    for count in range(max(1, math.ceil(_width(text) / (width * most))), len(tokens) + 1):
        for leeway in (0.5, 0.0):
            laid = [_balanced(c, glue, width, most) for c in _chunks(tokens, glue, count, leeway)]
            if all(x is not None for x in laid):
                return ["\n".join(x) for x in laid if x]
    return [text]  # not reached: one token a cue always fits


def _chunks(tokens: list[str], glue: str, count: int, leeway: float) -> list[list[str]]:
    """``tokens`` in ``count`` runs of about equal width; each cut moves to a clause's end
    within ``leeway`` of a run of the even point."""
    if count == 1:
        return [tokens]
    ends, total = [], 0
    for token in tokens:
        total += _width(token) + len(glue)
        ends.append(total)
    run = total / count
    cuts, start = [], 0
    for k in range(1, count):
        goal = run * k
        candidates = range(start + 1, len(tokens) - (count - k) + 1)
        if not candidates:
            break
        best = min(candidates, key=lambda i: abs(ends[i - 1] - goal))
        clause = [i for i in candidates
                  if (_CLAUSE_END.search(tokens[i - 1]) or tokens[i].startswith(" "))
                  and abs(ends[i - 1] - goal) <= run * leeway]
        cut = min(clause, key=lambda i: abs(ends[i - 1] - goal)) if clause else best
        cuts.append(cut)
        start = cut
    bounds = [0, *cuts, len(tokens)]
    return [tokens[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def write_srt(segments: list[Segment], path: Path, target: bool,
              layout: SubtitleLayout | None = None, lang: str | None = None) -> Path:
    """The source or target text of ``segments`` (in ``lang``) as SRT, each laid out by
    ``layout``: a line split into several cues shares its time between them by their share
    of its text."""
    layout = layout or SubtitleLayout()
    subs = []
    for seg in segments:
        text = (seg.target_text if target else seg.source_text) or ""
        if not text.strip():
            continue
        end = max(seg.end, seg.start + 0.01)
        cues = layout_cue(text, layout, lang)
        weights = [_width(c.replace("\n", "")) for c in cues]
        at = seg.start
        for cue, weight in zip(cues, weights):
            until = at + (end - seg.start) * weight / sum(weights)
            subs.append(srt.Subtitle(index=0, start=timedelta(seconds=at),
                                     end=timedelta(seconds=until), content=cue))
            at = until
    return write_text_atomic(path, srt.compose(subs, reindex=True))


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
            "longest_line_columns": max((_width(x) for x in lines), default=0),
            "most_lines_a_cue": max((len(c.content.split("\n")) for c in cues), default=0),
            "cps_p95": None if p95 is None else round(p95, 1),
            "cps_max": round(cps[-1], 1) if cps else None,
            "fast_cps": fast,
            "cues_over_fast_cps": sum(v > fast for v in cps)}
