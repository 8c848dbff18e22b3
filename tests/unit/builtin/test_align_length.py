"""align=length: the slot a line may use, and the TTS rate predicted from its text."""

from __future__ import annotations

import random

import pytest

from videodub.builtin.align_length import PREDICTION_MARGIN, LengthAligner, LengthAlignOptions
from videodub.config import implementation_config
from videodub.model import JobContext, Segment
from videodub.timing import CHARS_PER_SECOND

AlignLengthConfig = implementation_config("align", "length", LengthAlignOptions)


@pytest.fixture
def ctx(tmp_path) -> JobContext:
    return JobContext(tmp_path, target_lang="es", source_lang="en")


def aligner(**options) -> LengthAligner:
    return LengthAligner(AlignLengthConfig(**options))


def line(start: float, end: float, text: str = "Hola.") -> Segment:
    return Segment(id=0, start=start, end=end, source_text="Hello.", target_text=text)


def test_borrows_silence_up_to_the_next_start_minus_the_gap(ctx):
    seg = aligner(gap=0.1).align(line(1.0, 2.0), next_start=4.0, ctx=ctx)
    assert (seg.slot_start, seg.slot_end) == (1.0, 3.9)


def test_does_not_borrow_when_borrow_silence_is_off(ctx):
    seg = aligner(borrow_silence=False).align(line(1.0, 2.0), next_start=4.0, ctx=ctx)
    assert (seg.slot_start, seg.slot_end) == (1.0, 2.0)


def test_nothing_to_borrow_when_the_next_line_follows_closely(ctx):
    seg = aligner(gap=0.1).align(line(1.0, 2.0), next_start=2.05, ctx=ctx)
    assert seg.slot_end == 2.0


def test_slot_never_runs_into_an_overlapping_next_line(ctx):
    seg = aligner().align(line(1.0, 2.0), next_start=1.8, ctx=ctx)
    assert seg.slot_end == 1.8


def test_borrowing_lowers_the_rate_asked_of_the_tts(ctx):
    text = "x" * 33  # 2 s of Spanish at 16.5 characters per second
    tight = aligner(borrow_silence=False).align(line(0.0, 1.0, text), next_start=5.0, ctx=ctx)
    roomy = aligner(borrow_silence=True).align(line(0.0, 1.0, text), next_start=5.0, ctx=ctx)
    assert tight.tts_rate > 1.0
    assert roomy.tts_rate == 1.0


def test_rate_is_what_the_slot_needs(ctx):
    text = "x" * 33  # 2 s predicted, in a 1.6 s slot
    seg = aligner(max_speed=2.0, borrow_silence=False).align(line(0.0, 1.6, text), 5.0, ctx)
    # The TTS is asked for the speed-up beyond the prediction's margin; the mixer measures
    # the clip and does the rest.
    assert seg.tts_rate == pytest.approx(2.0 / 1.6 / PREDICTION_MARGIN, abs=0.001)
    assert seg.max_speed == 2.0
    assert seg.extra["predicted_s"] == pytest.approx(2.0)


def test_short_line_is_spoken_at_the_natural_rate(ctx):
    seg = aligner().align(line(0.0, 3.0, "Sí."), next_start=3.5, ctx=ctx)
    assert seg.tts_rate == 1.0


@pytest.mark.parametrize("max_speed", [1.0, 1.2, 1.5, 3.0])
def test_rate_never_exceeds_max_speed(ctx, max_speed):
    rng = random.Random(7)
    aln = aligner(max_speed=max_speed)
    for _ in range(200):
        start = rng.uniform(0, 100)
        seg = line(start, start + rng.uniform(0.0, 4.0), "palabra " * rng.randint(0, 40))
        seg = aln.align(seg, next_start=start + rng.uniform(-1.0, 6.0), ctx=ctx)
        assert 1.0 <= seg.tts_rate <= max_speed
        assert seg.max_speed == max_speed
        assert seg.slot_end > seg.slot_start


def test_long_line_in_a_short_slot_gets_exactly_max_speed(ctx):
    seg = aligner(max_speed=1.3).align(line(0.0, 0.5, "una frase larga " * 10), 0.6, ctx)
    assert seg.tts_rate == 1.3


def test_a_prediction_within_the_margin_asks_for_no_speed_up(ctx):
    text = "x" * 33  # 2 s predicted in a 1.85 s slot: within the guess's error
    seg = aligner(borrow_silence=False).align(line(0.0, 1.85, text), 5.0, ctx)
    assert seg.tts_rate == 1.0
    assert seg.extra["min_speed"] == 0.9


def test_the_voice_s_measured_rate_replaces_the_table(ctx):
    ctx.speaking_rate = 20.0
    assert aligner().predicted_duration("x" * 80, ctx) == pytest.approx(4.0)


def test_predicted_duration_scales_with_text_length(ctx):
    aln = aligner()
    one = aln.predicted_duration("hola " * 10, ctx)
    two = aln.predicted_duration("hola " * 20, ctx)
    assert two == pytest.approx(2 * one, rel=0.03)
    assert aln.predicted_duration("a" * 155, ctx) == pytest.approx(155 / CHARS_PER_SECOND["es"])
    # Extra whitespace is not spoken.
    assert aln.predicted_duration("  hola \n  mundo ", ctx) == aln.predicted_duration(
        "hola mundo", ctx)


def test_predicted_duration_uses_the_language_rate_or_the_override(tmp_path):
    ja = JobContext(tmp_path, target_lang="ja", source_lang="en")
    pt = JobContext(tmp_path, target_lang="pt-br", source_lang="en")
    assert aligner().predicted_duration("x" * 80, ja) == pytest.approx(10.0)
    assert aligner().predicted_duration("x" * 80, pt) == pytest.approx(80 / 15.5)
    assert aligner(chars_per_second=20.0).predicted_duration("x" * 80, ja) == pytest.approx(4.0)


def test_each_line_gets_the_speaker_s_nucleus_the_clip_is_laid_on(tmp_path):
    """The source's line opens with 90 ms of a soft fricative (30 dB under its vowel): the
    line is put on the speech onset, and its nucleus (where it becomes loud) is noted."""
    import numpy as np
    import soundfile

    from videodub.model import MediaInfo

    rate = 16000
    rng = np.random.default_rng(0)
    audio = 0.003 * rng.standard_normal(4 * rate)
    t = np.arange(len(audio)) / rate
    audio[(t >= 1.0) & (t < 1.09)] += 0.3 * 10 ** (-30 / 20) * rng.standard_normal(1440)
    vowel = (t >= 1.09) & (t < 2.5)
    audio[vowel] += 0.3 * np.sin(2 * np.pi * 200 * t[vowel])
    speech = tmp_path / "speech16k.wav"
    soundfile.write(str(speech), audio.astype(np.float32), rate)
    ctx = JobContext(tmp_path, target_lang="es", source_lang="en")
    ctx.media = MediaInfo(path=speech, duration=4.0, has_video=False, audio_streams=1,
                          audio_codec="pcm", video_codec=None, speech_audio=speech,
                          full_audio=speech)
    seg = aligner().align(line(0.8, 2.4), 3.5, ctx)
    assert 0.99 <= seg.start <= 1.1
    assert seg.extra["nucleus_s"] == pytest.approx(1.09, abs=0.011)


def speech_file(tmp_path, spans: list[tuple[float, float]], total: float) -> JobContext:
    """A job whose source speaks (a 200 Hz tone) in ``spans`` over faint noise."""
    import numpy as np
    import soundfile

    from videodub.model import MediaInfo

    rate = 16000
    rng = np.random.default_rng(0)
    audio = 0.003 * rng.standard_normal(int(total * rate))
    t = np.arange(len(audio)) / rate
    for a, b in spans:
        inside = (t >= a) & (t < b)
        audio[inside] += 0.3 * np.sin(2 * np.pi * 200 * t[inside])
    speech = tmp_path / "speech16k.wav"
    soundfile.write(str(speech), audio.astype(np.float32), rate)
    ctx = JobContext(tmp_path, target_lang="es", source_lang="en")
    ctx.media = MediaInfo(path=speech, duration=total, has_video=False, audio_streams=1,
                          audio_codec="pcm", video_codec=None, speech_audio=speech,
                          full_audio=speech)
    return ctx


def test_a_line_recognised_from_the_previous_sentence_s_end_starts_on_its_speech(tmp_path):
    """Whisper without word timing ends one line and starts the next at 3.7 s, in the last
    words of the first sentence; the second sentence speaks from 5.3 s, after a 1.3 s pause
    (a music bed makes such pauses look like speech to the recogniser). The first line's
    slot ends before 5.3, and the second line starts there."""
    ctx = speech_file(tmp_path, [(1.0, 4.0), (5.3, 8.0)], 9.0)
    align = aligner()
    first = align.align(line(0.6, 3.7), 3.7, ctx)
    second = align.align(line(3.7, 8.1), 9.0, ctx)
    assert first.slot_end == pytest.approx(5.3 - 0.1, abs=0.011)
    assert second.start == pytest.approx(5.3, abs=0.011)
    assert second.extra["asr_start"] == 3.7


def test_a_line_recognised_late_inside_its_speech_starts_on_it(tmp_path):
    """Word timing under music put the second line 0.46 s into its speech; the first line
    had ended at 4.0 s, before the pause: the first line's slot ends, and the second line
    starts, at its speech (5.3 s)."""
    ctx = speech_file(tmp_path, [(1.0, 4.0), (5.3, 8.0)], 9.0)
    align = aligner()
    first = align.align(line(1.05, 3.95), 5.76, ctx)
    assert first.slot_end == pytest.approx(5.3 - 0.1, abs=0.011)
    assert align.align(line(5.76, 7.9), 9.0, ctx).start == pytest.approx(5.3, abs=0.011)


def test_the_line_before_is_the_same_job_s(tmp_path):
    """An aligner used for two jobs never takes one job's line for the other's line before."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = speech_file(tmp_path / "a", [(1.0, 4.0), (5.3, 8.0)], 9.0)
    other = speech_file(tmp_path / "b", [(1.0, 4.0), (5.3, 8.0)], 9.0)
    align = aligner()
    align.align(line(1.05, 3.95), 5.76, one)
    assert align.align(line(5.76, 7.9), 9.0, other).start == 5.76


def test_a_line_over_a_music_intro_starts_where_the_voice_does():
    """Whisper over the whole audio puts a first line at 0.0 s over a music intro. With the
    regions found by voice (nothing heard where the tune plays) its onset is looked for in
    its first 60 %; with the energy detector's (the tune is sound too) it is not moved, as
    before, nor is a line whose start the voice regions cover."""
    from videodub.speech_regions import Regions
    from videodub.timing import speech_onset

    by_voice = Regions(((4.5, 8.04),), 9.0, -50.0, by_voice=True)
    energy = Regions(((0.0, 4.0), (4.5, 8.04)), 9.0, -50.0)
    assert speech_onset(0.0, 8.0, by_voice) == 4.5
    assert speech_onset(0.0, 8.0, energy) == 0.0
    assert speech_onset(0.0, 5.0, by_voice) == 0.0  # 4.5 s is past its first 60 %
    assert speech_onset(4.6, 8.0, by_voice) == 4.5
