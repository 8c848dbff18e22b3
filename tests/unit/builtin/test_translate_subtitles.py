"""translate=subtitles: a given subtitle file's cues matched to the transcript's speech by
time (one cue per line, a cue over two lines, two cues over one line, cues over silence)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from videodub.builtin.translate_subtitles import SubtitleTranslator
from videodub.errors import VideodubError
from videodub.model import JobContext, Segment


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path



def srt_of(cues: list[tuple[float, float, str]]) -> str:
    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "\n".join(f"{i}\n{stamp(a)} --> {stamp(b)}\n{text}\n"
                     for i, (a, b, text) in enumerate(cues, start=1))


def translate(tmp_path: Path, cues, segments: list[Segment]) -> list[Segment]:
    path = write(tmp_path, "given.es.srt", srt_of(cues))
    translator = SubtitleTranslator(SimpleNamespace(file=str(path), min_overlap=0.1))
    return translator.translate(segments, JobContext(tmp_path, "es", "en"))


def test_one_cue_per_segment_keeps_the_segment_timing(tmp_path):
    segments = [Segment(0, 1.0, 2.4, "Hello everyone."), Segment(1, 3.1, 4.0, "This is a test.")]
    out = translate(tmp_path, [(0.9, 2.5, "Hola a todos."), (3.0, 4.2, "Esto es una prueba.")],
                    segments)
    assert out == segments  # the same segments, translated in place
    assert [(s.start, s.end, s.target_text) for s in out] == [
        (1.0, 2.4, "Hola a todos."), (3.1, 4.0, "Esto es una prueba.")]
    assert all("from_subtitle_cue" not in s.flags for s in out)


def test_what_is_not_said_is_not_taken_markup_and_sound_descriptions(tmp_path):
    """The translation is what the voice says: no tags, and a cue that only describes a
    sound (here over no speech) gives no line."""
    segments = [Segment(0, 1.0, 2.4, "Hello everyone."), Segment(1, 3.1, 4.0, "This is a test.")]
    out = translate(tmp_path, [(0.9, 2.5, "<i>Hola</i> a todos."), (2.6, 3.0, "[MÚSICA]"),
                               (3.0, 4.2, "{\\an8}Esto es una prueba.")], segments)
    assert [s.target_text for s in out] == ["Hola a todos.", "Esto es una prueba."]


def test_one_cue_over_two_segments_becomes_one_cue_timed_segment(tmp_path):
    segments = [Segment(0, 1.0, 2.0, "Hello"), Segment(1, 2.2, 3.5, "everyone.")]
    out = translate(tmp_path, [(1.0, 3.5, "Hola a todos.")], segments)
    assert len(out) == 1
    seg = out[0]
    assert (seg.start, seg.end, seg.target_text) == (1.0, 3.5, "Hola a todos.")
    assert seg.source_text == "Hello everyone."
    assert seg.flags == ["from_subtitle_cue"]


def test_two_cues_over_one_segment_become_two_cue_timed_segments(tmp_path):
    segments = [Segment(0, 1.0, 4.0, "Hello everyone, this is a test.")]
    out = translate(tmp_path, [(1.0, 2.8, "Hola a todos,"), (2.8, 4.0, "esto es una prueba.")],
                    segments)
    assert [(s.start, s.end, s.target_text) for s in out] == [
        (1.0, 2.8, "Hola a todos,"), (2.8, 4.0, "esto es una prueba.")]
    # The source line is attached once, to the cue it overlaps most.
    assert [s.source_text for s in out] == ["Hello everyone, this is a test.", ""]
    assert all(s.flags == ["from_subtitle_cue"] for s in out)


def test_mixed_file_keeps_start_order(tmp_path):
    segments = [Segment(0, 0.0, 1.0, "One."), Segment(1, 2.0, 4.0, "Two and three."),
                Segment(2, 5.0, 6.0, "Four."), Segment(3, 8.0, 9.0, "Not in the file.")]
    cues = [(0.0, 1.0, "Uno."), (2.0, 3.0, "Dos"), (3.0, 4.0, "y tres."), (5.0, 6.0, "Cuatro."),
            (6.5, 7.5, "Una nota sin voz.")]
    out = translate(tmp_path, cues, segments)
    assert [s.target_text for s in out] == ["Uno.", "Dos", "y tres.", "Cuatro.",
                                            "Una nota sin voz."]
    starts = [s.start for s in out]
    assert starts == sorted(starts)
    # A line the file does not translate is left out (not dubbed); a cue over silence is kept.
    assert "Not in the file." not in [s.source_text for s in out]
    assert out[-1].source_text == ""


def test_touching_intervals_do_not_count_as_overlap(tmp_path):
    segments = [Segment(0, 1.0, 2.0, "Hello."), Segment(1, 2.0, 3.0, "Bye.")]
    out = translate(tmp_path, [(1.0, 2.05, "Hola."), (1.95, 3.0, "Adiós.")], segments)
    assert out == segments
    assert [s.target_text for s in out] == ["Hola.", "Adiós."]


def test_file_far_from_the_speech_is_rejected(tmp_path):
    segments = [Segment(0, 1.0, 2.0, "Hello.")]
    with pytest.raises(VideodubError, match="no cue overlaps the speech"):
        translate(tmp_path, [(60.0, 61.0, "Hola.")], segments)


def _whole(translator: SubtitleTranslator, segments: list[Segment]) -> list[tuple]:
    """The match made over the whole transcript at once, as the batch design did."""
    return [(s.start, s.end, s.target_text, tuple(s.flags))
            for s in translator._match(segments, translator.cues)]


@pytest.mark.parametrize("seed", range(200))
def test_streamed_matching_equals_the_whole_transcript_match(tmp_path, seed):
    """Random transcripts and cue files (cues that span two lines, split one, fall on
    silence, overlap each other): matching stretch by stretch gives what matching the whole
    transcript at once gives, line for line."""
    import random

    rng = random.Random(seed)
    segments, t = [], 0.0
    for i in range(rng.randint(1, 25)):
        t += rng.uniform(0.0, 1.5)
        d = rng.choice([rng.uniform(0.02, 0.12), rng.uniform(0.3, 3.0)])
        segments.append(Segment(i, round(t, 2), round(t + d, 2), f"line {i}"))
        # negative: lines that overlap (still in start order, as a recogniser gives them)
        t = max(t + d + rng.choice([-0.6, 0.0, 0.02, 0.3]), t)
    cues, c = [], rng.uniform(-0.5, 1.0)
    while c < t + 2:
        d = rng.choice([rng.uniform(0.05, 0.3), rng.uniform(0.5, 4.0)])
        cues.append((max(0.0, round(c, 2)), round(max(0.0, c) + d, 2), f"cue {len(cues)}"))
        c += d + rng.uniform(-0.4, 1.5)  # negative: the next cue overlaps this one
    path = write(tmp_path, "given.es.srt", srt_of(cues))
    translator = SubtitleTranslator(SimpleNamespace(file=str(path), min_overlap=0.1))
    expected = _whole(translator, [Segment(s.id, s.start, s.end, s.source_text) for s in segments])
    streamed = list(translator.translate_stream(iter(segments), JobContext(tmp_path, "es", "en")))
    # Lines that start together may come in either order.
    assert sorted((s.start, s.end, s.target_text, tuple(s.flags)) for s in streamed) == sorted(expected)
    assert [s.start for s in streamed] == sorted(s.start for s in streamed)


def test_a_line_is_passed_on_before_the_transcript_ends(tmp_path):
    """Three lines, one cue each, with pauses: the first translation comes out once the
    second line is recognised, not after the last."""
    cues = [(1.0, 2.0, "Uno."), (3.0, 4.0, "Dos."), (5.0, 6.0, "Tres.")]
    path = write(tmp_path, "given.es.srt", srt_of(cues))
    translator = SubtitleTranslator(SimpleNamespace(file=str(path), min_overlap=0.1))
    given: list[int] = []

    def recognised():
        for i, (a, b, _) in enumerate(cues):
            given.append(i)
            yield Segment(i, a, b, f"line {i}")

    out = translator.translate_stream(recognised(), JobContext(tmp_path, "es", "en"))
    assert next(out).target_text == "Uno."
    assert given == [0, 1]
    assert [s.target_text for s in out] == ["Dos.", "Tres."]


def test_a_cue_over_two_lines_holds_both_until_it_ends(tmp_path):
    cues = [(1.0, 4.0, "Una frase larga."), (5.0, 6.0, "Otra.")]
    path = write(tmp_path, "given.es.srt", srt_of(cues))
    translator = SubtitleTranslator(SimpleNamespace(file=str(path), min_overlap=0.1))
    segments = [Segment(0, 1.0, 2.2, "A long"), Segment(1, 2.5, 4.0, "sentence."),
                Segment(2, 5.0, 6.0, "Another.")]
    out = list(translator.translate_stream(iter(segments), JobContext(tmp_path, "es", "en")))
    assert [(s.start, s.end, s.target_text) for s in out] == [
        (1.0, 4.0, "Una frase larga."), (5.0, 6.0, "Otra.")]
    assert out[0].source_text == "A long sentence."


def test_touching_segments_stream_though_each_cue_starts_before_its_segment(tmp_path):
    """A recogniser's segments often touch (one ends where the next starts) and each cue
    starts a little before its segment: a line still goes out when the one after it is
    recognised."""
    cues = [(1.0, 3.86, "Uno."), (4.86, 7.25, "Dos."), (8.25, 10.6, "Tres.")]
    path = write(tmp_path, "given.es.srt", srt_of(cues))
    translator = SubtitleTranslator(SimpleNamespace(file=str(path), min_overlap=0.1))
    bounds = [(0.59, 4.93), (4.93, 8.3), (8.3, 11.0)]  # each overlaps the next cue < 0.1 s
    given: list[int] = []

    def recognised():
        for i, (a, b) in enumerate(bounds):
            given.append(i)
            yield Segment(i, a, b, f"line {i}")

    out = translator.translate_stream(recognised(), JobContext(tmp_path, "es", "en"))
    assert next(out).target_text == "Uno."
    assert given == [0, 1]
    assert next(out).target_text == "Dos."
    assert given == [0, 1, 2]


# -- the subtitle file beside the input ------------------------------------------------------

def beside(tmp_path: Path, target: str, *names: str, given: str = "talk.mp4"):
    from videodub.builtin.translate_subtitles import beside_input

    for name in ("talk.mp4", *names):
        (tmp_path / name).write_text(SRT_ONE)
    ctx = JobContext(tmp_path / "run", target, "en")
    ctx.input = given if "://" in given else str(tmp_path / given)
    return beside_input(ctx)


SRT_ONE = "1\n00:00:01,000 --> 00:00:02,000\nHola.\n"


@pytest.mark.parametrize("target, names, found", [
    ("es", ["talk.es.srt", "talk.fr.srt"], "talk.es.srt"),
    ("es", ["talk.ES.vtt"], "talk.ES.vtt"),  # names compared without case
    ("pt-br", ["talk.pt.srt", "talk.pt-BR.srt"], "talk.pt-BR.srt"),  # the region first
    ("pt-br", ["talk.pt.srt"], "talk.pt.srt"),
])
def test_without_a_file_the_one_beside_the_input_for_the_target_language_is_read(
        tmp_path, target, names, found):
    assert beside(tmp_path, target, *names) == tmp_path / found


def test_without_a_file_or_one_beside_the_input_the_line_says_what_was_looked_for(tmp_path):
    with pytest.raises(VideodubError, match=r"^translate=subtitles: no translate.file given, "
                                            r"and no talk.es.srt or .vtt beside talk.mp4$"):
        beside(tmp_path, "es", "talk.fr.srt", "other.es.srt")
    with pytest.raises(VideodubError, match="a link has no subtitle file beside it"):
        beside(tmp_path, "es", given="https://h/talk.mp4")


def test_the_file_beside_the_input_is_read_at_the_check_and_a_given_file_wins(tmp_path):
    (tmp_path / "talk.es.srt").write_text(SRT_ONE)
    given = write(tmp_path, "given.es.srt", SRT_ONE.replace("Hola.", "Buenas."))
    ctx = JobContext(tmp_path / "run", "es", "en")
    ctx.input = str(tmp_path / "talk.mp4")
    found = SubtitleTranslator(SimpleNamespace(file="", min_overlap=0.1))
    found.check(ctx)
    chosen = SubtitleTranslator(SimpleNamespace(file=str(given), min_overlap=0.1))
    chosen.check(ctx)
    segments = [Segment(0, 1.0, 2.0, "Hello.")]
    assert [s.target_text for s in found.translate(segments, ctx)] == ["Hola."]
    assert [s.target_text for s in chosen.translate([Segment(0, 1.0, 2.0, "Hello.")], ctx)
            ] == ["Buenas."]
