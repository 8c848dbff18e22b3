"""Subtitle files (read, write) and translate=subtitles, which matches cues to speech by time."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from videodub.builtin.translate_subtitles import SubtitleTranslator
from videodub.errors import VideodubError
from videodub.model import JobContext, Segment
from videodub.subtitles import Cue, read_cues, write_srt

SRT = """\
1
00:00:01,000 --> 00:00:02,500
Hola a todos.

2
00:00:03,000 --> 00:00:04,250
Esta es una
prueba.
"""

VTT = """\
WEBVTT

00:00:01.000 --> 00:00:02.500
Hola a todos.

intro
00:03.000 --> 00:04.250
Esta es una
prueba.
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


EXPECTED = [Cue(1.0, 2.5, "Hola a todos."), Cue(3.0, 4.25, "Esta es una prueba.")]


def test_reads_srt(tmp_path):
    assert read_cues(write(tmp_path, "es.srt", SRT)) == EXPECTED


def test_reads_webvtt_with_and_without_hours(tmp_path):
    assert read_cues(write(tmp_path, "es.vtt", VTT)) == EXPECTED


def test_webvtt_is_recognised_by_its_header_whatever_the_suffix(tmp_path):
    assert read_cues(write(tmp_path, "es.txt", VTT)) == EXPECTED


def test_srt_with_byte_order_mark_and_unsorted_cues(tmp_path):
    blocks = SRT.split("\n\n")
    path = tmp_path / "es.srt"
    path.write_bytes(("\ufeff" + blocks[1].strip() + "\n\n" + blocks[0] + "\n").encode("utf-8"))
    assert read_cues(path) == EXPECTED


def test_empty_and_backwards_cues_are_dropped(tmp_path):
    text = SRT + "\n3\n00:00:05,000 --> 00:00:06,000\n \n\n4\n00:00:08,000 --> 00:00:07,000\nOops\n"
    assert read_cues(write(tmp_path, "es.srt", text)) == EXPECTED


def test_missing_file(tmp_path):
    with pytest.raises(VideodubError, match="subtitle file not found"):
        read_cues(tmp_path / "nope.srt")


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("garbage.srt", "this is not a subtitle file\nat all\n", "not a valid SRT/WebVTT file"),
    ("garbage.vtt", "this is not a subtitle file\nat all\n", "not a valid SRT/WebVTT file"),
    ("garbage.vtt", "WEBVTT\n\nno cue here\n00:00:01.000 --> whenever\nhi\n", "has no cues"),
])
def test_garbage_file(tmp_path, name, content, problem):
    with pytest.raises(VideodubError, match=problem) as exc:
        read_cues(write(tmp_path, name, content))
    assert str(exc.value).startswith(str(tmp_path / name))
    assert "\n" not in str(exc.value)


def test_binary_file(tmp_path):
    path = tmp_path / "binary.srt"
    path.write_bytes(b"\xff\xfe\x00\x81garbage\x00")
    with pytest.raises(VideodubError, match="binary.srt") as exc:
        read_cues(path)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("content", ["", "\n\n", "WEBVTT\n\n"])
def test_empty_file(tmp_path, content):
    suffix = ".vtt" if content.startswith("WEBVTT") else ".srt"
    with pytest.raises(VideodubError, match="has no cues"):
        read_cues(write(tmp_path, "empty" + suffix, content))


# -- write_srt -------------------------------------------------------------------------

def test_write_srt_round_trip(tmp_path):
    segments = [
        Segment(0, 0.5, 1.25, "Hello there.", "Hola."),
        Segment(1, 2.0, 3.0, "Nothing here.", "   "),  # no target text: not written
        Segment(2, 3.333, 5.5, "Goodbye now.", "Adiós,\nhasta luego."),
        Segment(3, 6.0, 6.0, "Blink.", "¡Ya!"),  # zero length still gets a visible cue
    ]
    path = write_srt(segments, tmp_path / "out.es.srt", target=True)
    cues = read_cues(path)
    assert [c.text for c in cues] == ["Hola.", "Adiós, hasta luego.", "¡Ya!"]
    assert [(c.start, c.end) for c in cues] == [(0.5, 1.25), (3.333, 5.5), (6.0, 6.01)]
    assert path.read_text(encoding="utf-8").startswith("1\n")

    source = read_cues(write_srt(segments, tmp_path / "out.en.srt", target=False))
    assert [c.text for c in source] == [s.source_text for s in segments]
    assert not list(tmp_path.glob("*.part*"))  # written atomically, nothing left over


# -- translate=subtitles ---------------------------------------------------------------

def srt_of(cues: list[tuple[float, float, str]]) -> str:
    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "\n".join(f"{i}\n{stamp(a)} --> {stamp(b)}\n{text}\n"
                     for i, (a, b, text) in enumerate(cues, start=1))


def translate(tmp_path: Path, cues, segments: list[Segment]) -> list[Segment]:
    path = write(tmp_path, "given.es.srt", srt_of(cues))
    translator = SubtitleTranslator(SimpleNamespace(file=str(path), min_overlap=0.1))
    assert translator.batch_size is None  # matching needs the whole transcript
    return translator.translate(segments, JobContext(tmp_path, "es", "en"))


def test_one_cue_per_segment_keeps_the_segment_timing(tmp_path):
    segments = [Segment(0, 1.0, 2.4, "Hello everyone."), Segment(1, 3.1, 4.0, "This is a test.")]
    out = translate(tmp_path, [(0.9, 2.5, "Hola a todos."), (3.0, 4.2, "Esto es una prueba.")],
                    segments)
    assert out == segments  # the same segments, translated in place
    assert [(s.start, s.end, s.target_text) for s in out] == [
        (1.0, 2.4, "Hola a todos."), (3.1, 4.0, "Esto es una prueba.")]
    assert all("from_subtitle_cue" not in s.flags for s in out)


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
