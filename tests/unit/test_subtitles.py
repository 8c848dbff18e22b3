"""Subtitle files: reading SRT and WebVTT (and refusing what is neither), writing SRT."""

from __future__ import annotations

from pathlib import Path

import pytest

from videodub.errors import VideodubError
from videodub.linebreak import columns
from videodub.model import Segment
from videodub.subtitles import Cue, SubtitleLayout, layout_cue, read_cues, spoken_text, write_srt

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


def test_only_what_is_said_is_read_not_markup_or_sound_descriptions(tmp_path):
    """What professional and YouTube files hold beyond the words (the dub would speak it:
    espeak-ng said "<i>" and "{\\an8}", 0.9 s and 0.5 s of the two lines' 2.9 s and 1.8 s)."""
    srt_text = ("1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hola</i> a <font color=\"#ffff00\">"
                "todos</font>.\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,250\r\n{\\an8}Esta es una"
                "\r\n[risas] prueba.\r\n\r\n3\r\n00:00:05,000 --> 00:00:06,000\r\n[MÚSICA]\r\n\r\n"
                "4\r\n00:00:07,000 --> 00:00:08,000\r\n♪ la canción sigue ♪\r\n\r\n"
                "5\r\n00:00:09,000 --> 00:00:10,000\r\n3 < 5 &amp; 6 > 4\r\n")
    assert read_cues(write(tmp_path, "es.srt", srt_text), spoken=True) == [
        *EXPECTED, Cue(9.0, 10.0, "3 < 5 & 6 > 4")]
    as_written = read_cues(tmp_path / "es.srt")[0].text  # without spoken: the file's text
    assert as_written == "<i>Hola</i> a <font color=\"#ffff00\">todos</font>."
    vtt_text = ("WEBVTT\nKind: captions\n\n00:00:01.000 --> 00:00:02.500 align:start\n"
                "<v Ana>Hola</v><00:00:01.800><c> a</c><00:00:02.100><c> todos.</c>\n\n"
                "00:00:03.000 --> 00:00:04.250\n<b>Esta</b> es una &amp;\nprueba.\n")
    assert read_cues(write(tmp_path, "es.vtt", vtt_text), spoken=True) == [
        EXPECTED[0], Cue(3.0, 4.25, "Esta es una & prueba.")]


@pytest.mark.parametrize(("text", "said"), [
    ("(LAUGHS) Yes, I know.", "Yes, I know."),
    ("¿Qué? (RISAS)", "¿Qué?"),
    ("(laughs)", ""),
    ("(sighs)\nI know.", "I know."),
    ("JOHN: Hello there.", "Hello there."),
    ("- DR. LEE: Sit down.\n- MARÍA: Gracias.", "- Sit down. - Gracias."),
    # Said: a parenthesis in a sentence, a short word before a colon, a time.
    ("the API (application interface) is new", "the API (application interface) is new"),
    ("Hola (sic) amigo", "Hola (sic) amigo"),
    ("OK: fine", "OK: fine"),
    ("At 10:30 we go.", "At 10:30 we go."),
])
def test_sounds_in_parentheses_and_speaker_names_are_not_said(text, said):
    """Subtitles for the deaf: sounds in parentheses, speakers named in capitals. espeak-ng
    read "(laughs)" and "JOHN:" aloud."""
    assert spoken_text(text) == said


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
    # "Hola." and "¡Ya!", spoken in no time, are held to 5/6 s
    assert [(c.start, c.end) for c in cues] == [(0.5, 1.333), (3.333, 5.5), (6.0, 6.833)]
    assert path.read_text(encoding="utf-8").startswith("1\n")

    source = read_cues(write_srt(segments, tmp_path / "out.en.srt", target=False))
    assert [c.text for c in source] == [s.source_text for s in segments]
    assert not list(tmp_path.glob("*.part*"))  # written atomically, nothing left over


SPANISH = ("1\n00:00:01,000 --> 00:00:03,000\nHola, señor. ¿Cómo está? Él comió piña.\n\n"
           "2\n00:00:04,000 --> 00:00:06,000\nAdiós, mañana será otro día.\n")


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16"])
def test_subtitles_saved_in_another_encoding_are_read(tmp_path, encoding):
    path = tmp_path / f"talk.{encoding}.srt"
    path.write_bytes(SPANISH.encode(encoding))

    cues = read_cues(path)

    assert [c.text for c in cues] == ["Hola, señor. ¿Cómo está? Él comió piña.",
                                      "Adiós, mañana será otro día."]


def test_bytes_in_no_encoding_ask_for_utf8(tmp_path):
    path = tmp_path / "noise.srt"
    path.write_bytes(bytes((i * 197 + 91) % 256 for i in range(4096)))

    with pytest.raises(VideodubError, match=r"noise.srt: .*save it as UTF-8"):
        read_cues(path)


# -- layout -------------------------------------------------------------------------------

LONG = ("And so, my fellow Americans, ask not what your country can do for you; ask what you "
        "can do for your country.")


def widths(cue: str) -> list[int]:

    return [columns(line) for line in cue.split("\n")]


def test_a_line_that_fits_stays_one_line_and_a_longer_one_becomes_two_even_lines():
    assert layout_cue("Short line.", SubtitleLayout()) == ["Short line."]
    assert layout_cue("  Short\n  line. ", SubtitleLayout()) == ["Short line."]
    (cue,) = layout_cue("Welcome to this short talk about making videos for everyone.",
                        SubtitleLayout())
    assert cue == "Welcome to this short talk about\nmaking videos for everyone."
    assert max(widths(cue)) <= 42


def test_a_line_too_long_for_one_cue_becomes_even_cues_ending_after_a_clause():
    cues = layout_cue(LONG, SubtitleLayout())
    assert len(cues) == 2
    assert cues[0].endswith("for you;") and cues[1].startswith("ask what you")
    assert all(len(c.split("\n")) <= 2 and max(widths(c)) <= 42 for c in cues)
    assert " ".join(" ".join(c.split("\n")) for c in cues) == LONG
    three = layout_cue(LONG, SubtitleLayout(max_line_chars=20, max_lines=1))
    assert all("\n" not in c and widths(c)[0] <= 20 for c in three)
    assert " ".join(three) == LONG


def test_wide_characters_count_two_columns_and_japanese_breaks_between_phrases():
    """Not inside a word ("につ|いて", "ございまし|た。", as breaking between any two
    characters did): between BudouX's phrases, after punctuation where one ends near the
    even point."""
    text = "今日は三つの簡単なアイデアを見ていきましょう。それから字幕の話をします。"  # 36 wide
    cues = layout_cue(text, SubtitleLayout())
    assert all(max(widths(c)) <= 42 and len(c.split("\n")) <= 2 for c in cues)
    assert "".join(c.replace("\n", "") for c in cues) == text
    assert cues == ["今日は三つの簡単なアイデアを\n見ていきましょう。", "それから字幕の話をします。"]
    assert layout_cue("皆さんのためのビデオ作りについての短い講演へようこそ。", SubtitleLayout()) == [
        "皆さんのためのビデオ作りに\nついての短い講演へようこそ。"]
    assert layout_cue("ご覧いただきありがとうございました。また次回お会いしましょう。",
                      SubtitleLayout()) == ["ご覧いただきありがとうございました。\nまた次回お会いしましょう。"]


def test_a_spaced_word_in_japanese_does_not_leave_the_rest_one_line():
    """A Latin word between spaces split the line only there: the rest, 64 columns, stood
    as one line. Each spaceless run is broken between its phrases too."""
    text = "今日は Python を使って字幕の行を自動的に分割する方法について詳しく説明します。"
    cues = layout_cue(text, SubtitleLayout(line_columns_by_lang={}), "ja")
    lines = [line for cue in cues for line in cue.split("\n")]
    assert cues == ["今日は Python を使って字幕の行を自動的に\n分割する方法について詳しく説明します。"]
    assert all(columns(line) <= 42 for line in lines)
    assert " ".join(lines).replace(" ", "") == text.replace(" ", "")
    # Korean, spaced between words and with no Chinese characters, still breaks at spaces.
    korean = "오늘은 모두를 위한 영상 제작에 관한 짧은 강연에 오신 것을 환영합니다 감사합니다"
    assert all(" ".join(c.split("\n")) in korean for c in layout_cue(korean, SubtitleLayout()))


WORDS_ZH = ("我们", "今天", "讨论", "简单", "想法", "然后", "大家", "高兴")


@pytest.mark.parametrize("width", range(15, 21))
def test_chinese_breaks_between_words_and_no_line_starts_with_closing_punctuation(width):
    """Breaking between any two characters split words ("想|法"); BudouX's phrases do not.
    Breaking anywhere also put "”" or "，" first on a line at these widths."""
    text = "他说：“我们今天会讨论三个简单的想法。”然后他就走了，大家都很高兴。"
    cues = layout_cue(text, SubtitleLayout(max_line_chars=width, line_columns_by_lang={}), "zh")
    lines = [line for cue in cues for line in cue.split("\n")]
    assert "".join(lines) == text and all(max(widths(c)) <= width for c in cues)
    assert not any(line[0] in "，。”" or line[-1] == "“" for line in lines), lines
    joins = {a[-1] + b[0] for a, b in zip(lines, lines[1:])}
    assert not joins & set(WORDS_ZH), lines


def test_the_language_tag_picks_traditional_chinese_and_japanese():
    from videodub.linebreak import _model, _units

    traditional = "歡迎來到這個關於為每個人製作影片的簡短演講今天我們將看看好的配音是什麼樣子的"
    assert [_model(traditional, tag) for tag in (None, "zh", "zh-TW", "zh-Hant", "zh_HK",
                                                 "yue")] == [
        "zh-hans", "zh-hans", "zh-hant", "zh-hant", "zh-hant", "zh-hant"]
    assert SubtitleLayout().width("yue") == 32
    assert _model("ビデオ", None) == _model("東京都", "ja") == "ja"
    assert "我們" in _units(traditional, "zh-TW")  # the simplified model splits it: 我|們將
    cues = layout_cue(traditional, SubtitleLayout(line_columns_by_lang={"zh": 20}), "zh-TW")
    lines = [line for cue in cues for line in cue.split("\n")]
    assert "".join(lines) == traditional and all(columns(line) <= 20 for line in lines)
    assert not {a[-1] + b[0] for a, b in zip(lines, lines[1:])} & {"我們", "影片", "演講"}


def test_thai_breaks_between_words_and_its_marks_take_no_column():
    """Thai has no spaces between words (a space ends a phrase): a phrase wider than a line
    was left whole (67 columns here), and breaking between letters would split words and
    strand vowel and tone marks. Each line now ends at a word's end (PyThaiNLP's
    dictionary), a cue preferably at a phrase's space, and a mark above or below a consonant
    takes no column."""
    from pythainlp.tokenize import word_tokenize

    assert columns("ที่ดี") == 2  # ท and ด: the vowels ี and the tone mark ่ above take none

    def word_ends(text: str) -> set[int]:
        ends, at = set(), 0
        for word in word_tokenize(text.replace(" ", ""), engine="newmm"):
            at += len(word)
            ends.add(at)
        return ends

    phrase = "การทำวิดีโอสำหรับทุกคนเป็นเรื่องที่ต้องใช้เวลาและความอดทนอย่างมากสำหรับผู้สร้างทุกคน"
    talk = ("ยินดีต้อนรับสู่การบรรยายสั้นๆ เกี่ยวกับการทำวิดีโอสำหรับทุกคน "
            "วันนี้เราจะดูว่าเสียงพากย์ที่ดีเป็นอย่างไร และทำไมจังหวะจึงสำคัญมาก")
    for text, count in ((phrase, 1), (talk, 2)):
        cues = layout_cue(text, SubtitleLayout())
        lines = [line for cue in cues for line in cue.split("\n")]
        assert len(cues) == count and all(len(c.split("\n")) <= 2 for c in cues)
        assert all(columns(line) <= 42 for line in lines), lines
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
        ends, at = word_ends(text), 0
        for line in lines:  # every line ends where a word does
            at += len(line.replace(" ", ""))
            assert at in ends, line
        assert not any(line.startswith(("ๆ", " ")) for line in lines)
    assert layout_cue(talk, SubtitleLayout())[0].endswith("ทุกคน")  # at the phrase's space


def test_no_wrapping_and_a_word_wider_than_a_line():
    assert layout_cue(LONG, SubtitleLayout(max_line_chars=0)) == [LONG]
    word = "Donaudampfschifffahrtsgesellschaftskapitänsmützen"
    assert layout_cue(f"{word} und so weiter", SubtitleLayout()) == [f"{word}\nund so weiter"]


def test_a_split_line_shares_its_time_by_text_and_keeps_its_span(tmp_path):
    segs = [Segment(0, 1.0, 9.0, LONG, LONG), Segment(1, 9.5, 10.5, "Thanks.", "Gracias.")]
    cues = read_cues_raw(write_srt(segs, tmp_path / "x.srt", target=True))
    assert [c.index for c in cues] == [1, 2, 3]
    first, second, third = cues
    assert first.start.total_seconds() == 1.0 and second.end.total_seconds() == 9.0
    chars = [len(c.content.replace("\n", "")) for c in (first, second)]
    share = chars[0] / sum(chars)
    assert second.start.total_seconds() == pytest.approx(1.0 + 8.0 * share, abs=0.002)
    # two frames between them (at 24 fps), so that a viewer sees the cue change
    gap = (second.start - first.end).total_seconds()
    assert gap == pytest.approx(2 / 24, abs=0.002)
    assert (third.start.total_seconds(), third.end.total_seconds(), third.content) == (
        9.5, 10.5, "Gracias.")


def test_the_layout_keys_are_checked():
    with pytest.raises(ValueError, match="max_lines >= 1"):
        SubtitleLayout(max_lines=0)
    with pytest.raises(ValueError, match="max_line_chars must be >= 0"):
        SubtitleLayout(max_line_chars=-1)


def read_cues_raw(path):
    import srt as srt_lib

    return list(srt_lib.parse(path.read_text(encoding="utf-8")))


def test_reading_figures_say_how_readable_the_written_cues_are(tmp_path):
    from videodub.subtitles import reading_figures

    segs = [Segment(0, 0.0, 2.0, "", "Hola a todos."),  # 13 characters in 2 s: 6.5/s
            Segment(1, 3.0, 4.0, "", "Una línea que se lee demasiado deprisa aquí.")]  # 44 in 1 s
    figures = reading_figures(write_srt(segs, tmp_path / "x.es.srt", target=True))
    # The fast cue is held 0.5 s past its speech: 44 characters in 1.5 s.
    assert figures == {"cues": 2, "longest_line_columns": 23, "most_lines_a_cue": 2,
                       "cps_p95": 29.3, "cps_max": 29.3, "fast_cps": 20.0,
                       "cues_over_fast_cps": 1}


def test_a_cue_too_brief_to_read_is_held_into_the_silence_after_it(tmp_path):
    """A cue ended with its speech: a one-word line was up for a blink, a long one too fast
    to read. It is now held on, to 5/6 s and to the language's reading speed, by 0.5 s at
    most and leaving 2 frames before the next cue; the parts of a split line follow each
    other and are not held; max_extend_s=0 keeps the speech's times. Every cue ends two
    frames before the next, even one whose speech runs into the next line's (Whisper's
    lines can overlap by 10 ms)."""
    long = ("Una línea bastante larga que ocupa dos renglones enteros del subtítulo, "
            "y que sigue en otro subtítulo distinto porque no cabe.")
    segs = [Segment(0, 1.0, 1.3, "", "Sí."),  # 0.3 s: held to 5/6 s
            Segment(1, 2.0, 3.0, "", "Eso es lo que pasó aquella noche, créeme."),  # 41 in 1 s
            Segment(2, 3.2, 4.0, "", "No."),  # 0.2 s after the last: held up to 2 frames before
            Segment(3, 4.1, 8.0, "", long),  # two cues, each too fast
            Segment(4, 20.0, 20.4, "", "Adiós."),  # held to 5/6 s
            Segment(5, 22.0, 23.0, "", long[:60]),  # 60 in 1 s: held by 0.5 s at most
            Segment(6, 30.0, 31.0, "", "Uno, dos."),  # speech into the next line's
            Segment(7, 30.99, 32.0, "", "Tres.")]
    cues = read_cues(write_srt(segs, tmp_path / "held.es.srt", target=True, lang="es"))
    times = [(c.start, c.end) for c in cues]
    assert times[0] == (1.0, 1.833)
    # wanted 2.05 s (41 characters at 20 a second): until 2 frames before the next
    assert times[1] == (2.0, pytest.approx(3.2 - 2 / 24, abs=1e-3))
    assert times[2] == (3.2, pytest.approx(4.1 - 2 / 24, abs=1e-3))
    # a split line: its first part ends two frames before the next; the last is held as a
    # line is
    assert times[3][1] == pytest.approx(times[4][0] - 2 / 24, abs=1e-3) and times[4][1] == 8.5
    assert times[5] == (20.0, 20.833) and times[6] == (22.0, 23.5)
    # gives way, two frames before: never two at once
    assert times[7] == (30.0, pytest.approx(30.99 - 2 / 24, abs=1e-3)) and times[8][0] == 30.99
    assert all(b.start - a.end >= 2 / 24 - 0.002 for a, b in zip(cues, cues[1:]))
    plain = read_cues(write_srt(segs, tmp_path / "plain.es.srt", True,
                                SubtitleLayout(max_extend_s=0), "es"))
    assert [c.end for c in plain][:3] == [1.3, 3.0, 4.0]
    assert plain[7].end == pytest.approx(30.99 - 2 / 24, abs=1e-3)


def test_japanese_chinese_and_korean_lines_are_narrower_and_read_slower(tmp_path):
    """42 columns took 21 Chinese or Japanese characters a line, where the streaming style
    guides give Chinese and Korean 16 and Japanese 13; and a Japanese cue at 10 characters a
    second counted as comfortable, where Japanese viewers are given 4. A half-width character
    (Latin, a space) counts as half of one there."""
    from videodub.subtitles import reading_figures, reading_chars

    text = "今日は三つの簡単なアイデアを見ていきましょう。それから字幕の話をします。"  # 36 wide
    for lang, width in (("ja", 26), ("zh-TW", 32), ("ko", 32), ("es", 42), (None, 42)):
        assert SubtitleLayout().width(lang) == width
    lines = [line for cue in layout_cue(text, SubtitleLayout(), "ja") for line in cue.split("\n")]
    assert max(columns(line) for line in lines) <= 26 < max(
        columns(line) for cue in layout_cue(text, SubtitleLayout(), "es") for line in cue.split("\n"))
    own = SubtitleLayout(line_columns_by_lang={"ja": 30})
    assert own.width("ja") == 30 and own.width("zh") == 42
    assert SubtitleLayout(max_line_chars=0).width("ja") == 0  # no wrapping at all
    assert reading_chars("iPhoneの話", "ja") == 5.0 and reading_chars("iPhoneの話", "de") == 8
    segs = [Segment(0, 0.0, 2.0, "", "ありがとう。"),  # 6 characters in 2 s: 3 a second
            Segment(1, 3.0, 4.0, "", "字幕の話をします。")]  # 9 in 1 s, held to 1.5 s
    ja = reading_figures(write_srt(segs, tmp_path / "x.ja.srt", True, lang="ja"), "ja")
    assert (ja["cps_max"], ja["fast_cps"], ja["cues_over_fast_cps"]) == (6.0, 4.0, 1)
    assert reading_figures(tmp_path / "x.ja.srt", "zh")["cues_over_fast_cps"] == 0
    with pytest.raises(ValueError, match="line_columns_by_lang.ja must be 1 or more, got -1"):
        SubtitleLayout(line_columns_by_lang={"ja": -1})
    with pytest.raises(ValueError, match="fast_cps_by_lang.ja must be above 0, got 0"):
        SubtitleLayout(fast_cps_by_lang={"ja": 0})
