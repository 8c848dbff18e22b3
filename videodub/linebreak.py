"""Where a subtitle line breaks: at spaces, and in text written without them between
phrases (Chinese and Japanese: BudouX) or words (Thai: PyThaiNLP), after the kinsoku rules;
lines as even as they can be, a cue ending after a clause where one ends near the even
point. Widths are in columns: a full-width character takes two, a combining mark none."""

from __future__ import annotations

import functools
import math
import re
import unicodedata

from videodub.languages import primary

# Text in Thai script: broken between words found by a dictionary (``_thai_words``).
_THAI = re.compile(r"[\u0e00-\u0e7f]")
# Punctuation that ends a clause: a cue preferably ends after one.
_CLAUSE_END = re.compile(r"[.!?;:,、。，！？؟،।]$")


def columns(text: str) -> int:
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


def subtag(lang: str | None) -> str:
    """The primary subtag of a language tag as written anywhere (``zh_TW``: ``zh``)."""
    return primary((lang or "").lower().replace("_", "-"))


def _model(text: str, lang: str | None) -> str:
    """Japanese for text with kana (or a line of a Japanese track without any); Chinese
    otherwise, in traditional characters when the language tag says so (zh-Hant, zh-TW;
    Cantonese, yue, is written in them)."""
    first = subtag(lang)
    if any(_kana(c) for c in text) or first == "ja":
        return "ja"
    if first == "yue" or first == "zh" and any(
            part in ("hant", "tw", "hk", "mo") for part in (lang or "").lower().replace("_", "-")
            .split("-")):
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
                  for piece in (_units(unit, lang, phrases=False) if columns(unit) > width
                                else [unit])] if _HAN_OR_KANA.search(word) else [word]
        tokens += [(" " if tokens else "") + pieces[0], *pieces[1:]]
    return tokens, ""


def break_lines(text: str, width: int, most: int, lang: str | None = None) -> list[str]:
    """``text`` (in language ``lang``, when known) as the content of one or more cues: lines
    of ``width`` columns at most, ``most`` a cue, as few cues as fit, ending after a clause
    where one ends within half a cue of the even point (else as even as they can be)."""
    text = " ".join(text.split())
    if not width or not text:
        return [text]
    tokens, glue = _tokens(text, width, lang)
    for count in range(max(1, math.ceil(columns(text) / (width * most))), len(tokens) + 1):
        for leeway in (0.5, 0.0):
            laid = [_balanced(c, glue, width, most) for c in _chunks(tokens, glue, count, leeway)]
            if all(x is not None for x in laid):
                return ["\n".join(x) for x in laid if x]
    return [text]  # not reached: one token a cue always fits


def _wrap(tokens: list[str], glue: str, width: int) -> list[str]:
    lines: list[str] = []
    for token in tokens:
        if lines and columns(lines[-1] + glue + token) <= width:
            lines[-1] += glue + token
        else:
            lines.append(token.lstrip())  # a Thai word after a phrase's space
    return lines


def _balanced(tokens: list[str], glue: str, width: int, most: int) -> list[str] | None:
    """The lines of ``tokens`` in at most ``most`` lines of ``width``, as even as they can
    be (the narrowest width that still takes ``most`` lines); None when they do not fit."""
    whole = columns(glue.join(tokens).lstrip())
    if whole <= width:
        return [glue.join(tokens).lstrip()]  # a line that fits stays one line
    for narrow in range(min(width, math.ceil(whole / most)), width + 1):
        lines = _wrap(tokens, glue, narrow)
        if len(lines) <= most and all(columns(x) <= narrow for x in lines):
            return lines
    lines = _wrap(tokens, glue, width)  # a word wider than a line: it stands alone
    return lines if len(lines) <= most else None


def _chunks(tokens: list[str], glue: str, count: int, leeway: float) -> list[list[str]]:
    """``tokens`` in ``count`` runs of about equal width; each cut moves to a clause's end
    within ``leeway`` of a run of the even point."""
    if count == 1:
        return [tokens]
    ends, total = [], 0
    for token in tokens:
        total += columns(token) + len(glue)
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
