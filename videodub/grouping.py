"""The recogniser's fragments regrouped into whole sentences before translation, so that no
dubbed line starts or ends mid-sentence ("there?", "him a different one."), and sentences too
long for one line split at their longest pause.

Streaming: a sentence is handed on as soon as it is complete (its text ends a sentence, the
next fragment starts after a pause, or it has grown to the longest line allowed), so
translation still starts while later speech is being recognised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from videodub.model import Segment

SENTENCE_END = re.compile(r"[.!?…。！？]['\")\]]*$")


def merge(parts: list[Segment]) -> Segment:
    """One line from consecutive fragments: their span, text, flags and words."""
    if len(parts) == 1:
        return parts[0]
    first, last = parts[0], parts[-1]
    flags = list(dict.fromkeys(f for p in parts for f in p.flags))
    extra = dict(first.extra)
    words = [w for p in parts for w in p.extra.get("words", [])]
    if words:
        extra["words"] = words
    extra["fragments"] = sum(p.extra.get("fragments", 1) for p in parts)
    return Segment(id=first.id, start=first.start, end=last.end,
                   source_text=" ".join(p.source_text.strip() for p in parts), flags=flags,
                   extra=extra)


def split_at_pauses(seg: Segment, max_s: float) -> list[Segment]:
    """``seg`` cut at its longest pause between words (away from its ends) until every part
    is at most ``max_s`` long; a line without word timing stays whole."""
    words = seg.extra.get("words") or []
    if seg.end - seg.start <= max_s or len(words) < 4:
        return [seg]
    n = len(words)
    candidates = range(max(1, n // 5), min(n - 1, n - n // 5) + 1)
    cut = max(candidates, key=lambda i: words[i][0] - words[i - 1][1])
    halves = []
    for part in (words[:cut], words[cut:]):
        extra = {k: v for k, v in seg.extra.items() if k != "words"}
        extra["words"] = part
        halves.append(Segment(id=seg.id, start=part[0][0], end=part[-1][1],
                              source_text=" ".join(w[2] for w in part), flags=list(seg.flags),
                              extra=extra))
    return [p for half in halves for p in split_at_pauses(half, max_s)]


def sentences(fragments: Iterable[Segment], *, max_s: float = 8.0,
              pause_s: float = 0.7) -> Iterator[Segment]:
    """Whole sentences from recogniser fragments, in order, as each one completes; numbered
    anew from 0 (a sentence split at a pause is two lines, and every line needs its own id:
    the translator matches its answers by id)."""
    return _numbered(_sentences(fragments, max_s, pause_s))


def _numbered(lines: Iterable[Segment]) -> Iterator[Segment]:
    for n, line in enumerate(lines):
        line.id = n
        yield line


def _sentences(fragments: Iterable[Segment], max_s: float, pause_s: float) -> Iterator[Segment]:
    buffer: list[Segment] = []
    for frag in fragments:
        if buffer and (frag.start - buffer[-1].end > pause_s
                       or frag.end - buffer[0].start > max_s):
            yield from split_at_pauses(merge(buffer), max_s)
            buffer = []
        buffer.append(frag)
        if SENTENCE_END.search(frag.source_text.strip()):
            yield from split_at_pauses(merge(buffer), max_s)
            buffer = []
    if buffer:
        yield from split_at_pauses(merge(buffer), max_s)
