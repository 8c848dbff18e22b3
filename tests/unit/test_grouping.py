"""videodub.grouping: fragments regrouped into sentences, long ones split at pauses."""

from __future__ import annotations

from videodub.grouping import sentences, split_at_pauses
from videodub.model import Segment


def frag(i: int, start: float, end: float, text: str, words=None) -> Segment:
    seg = Segment(id=i, start=start, end=end, source_text=text)
    if words:
        seg.extra["words"] = words
    return seg


def test_fragments_of_one_sentence_become_one_line():
    out = list(sentences([frag(0, 0.0, 1.0, "So what did you"), frag(1, 1.1, 2.0, "see there?"),
                          frag(2, 2.2, 3.0, "Nothing at all.")]))
    assert [s.source_text for s in out] == ["So what did you see there?", "Nothing at all."]
    assert (out[0].start, out[0].end) == (0.0, 2.0)
    assert out[0].extra["fragments"] == 2


def test_a_long_pause_ends_a_line_without_punctuation():
    out = list(sentences([frag(0, 0.0, 1.0, "and then"), frag(1, 2.5, 3.0, "we left")],
                         pause_s=0.7))
    assert [s.source_text for s in out] == ["and then", "we left"]


def test_lines_stream_out_as_each_sentence_completes():
    given = []

    def fragments():
        for f in (frag(0, 0, 1, "One."), frag(1, 1.1, 2, "Two")):
            given.append(f.id)
            yield f

    it = sentences(fragments())
    first = next(it)
    assert first.source_text == "One." and given == [0]


def test_a_long_sentence_is_split_at_its_longest_pause():
    words = [[i * 1.0, i * 1.0 + 0.8, f"w{i}"] for i in range(8)]
    words[5:] = [[w[0] + 1.5, w[1] + 1.5, w[2]] for w in words[5:]]  # a 1.7 s pause before w5
    seg = frag(0, 0.0, words[-1][1], " ".join(w[2] for w in words), words)
    parts = split_at_pauses(seg, max_s=6.0)
    assert [p.source_text for p in parts] == ["w0 w1 w2 w3 w4", "w5 w6 w7"]
    assert parts[0].end == 4.8 and parts[1].start == 6.5


def test_without_word_timing_a_long_line_stays_whole():
    seg = frag(0, 0.0, 20.0, "a very long line")
    assert split_at_pauses(seg, max_s=6.0) == [seg]


def test_every_line_has_its_own_id_when_a_sentence_is_split():
    # The translator matches its answers by id: two halves of one sentence must not share one.
    words = [[i * 1.0, i * 1.0 + 0.8, f"w{i}"] for i in range(8)]
    words[5:] = [[w[0] + 1.5, w[1] + 1.5, w[2]] for w in words[5:]]
    out = list(sentences([frag(0, 0.0, words[-1][1], " ".join(w[2] for w in words) + ".", words),
                          frag(1, 12.0, 13.0, "Done.")], max_s=6.0))
    assert [s.id for s in out] == [0, 1, 2]
    assert [s.source_text for s in out] == ["w0 w1 w2 w3 w4", "w5 w6 w7", "Done."]
