"""run/voice.py: the voice's speaking rate measured once, and suspect lines not dubbed."""

from __future__ import annotations

import pytest

from videodub.model import JobContext, Segment
from videodub.run.voice import MIN_CALIBRATION_CHARS, apply_on_suspect, measure_speaking_rate


class CountingVoice:
    """A synthesizer whose clip lasts exactly one second per 18 characters."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def synthesize(self, segment: Segment, ctx: JobContext) -> Segment:
        self.texts.append(segment.target_text or "")
        segment.synth_duration = len(segment.target_text or "") / 18.0
        segment.audio_path = "unused"
        return segment


def test_the_rate_is_measured_on_a_line_at_natural_speed(tmp_path):
    ctx = JobContext(tmp_path, "es", "en")
    voice = CountingVoice()
    line = Segment(id=3, start=0, end=1, target_text="Hola a todos, bienvenidos.", tts_rate=1.4)
    assert measure_speaking_rate(voice, line, ctx) == pytest.approx(18.0)
    assert ctx.speaking_rate == pytest.approx(18.0)
    # The line's own text at natural speed: the clip cache gives it back when the line is
    # synthesized at that rate, so measuring costs nothing extra.
    assert voice.texts == ["Hola a todos, bienvenidos."]
    # The line itself is untouched: the probe is a copy.
    assert line.tts_rate == 1.4 and line.audio_path is None


def test_a_short_line_or_no_text_measures_nothing(tmp_path):
    ctx = JobContext(tmp_path, "es", "en")
    voice = CountingVoice()
    assert measure_speaking_rate(voice, Segment(0, 0, 1, target_text=" "), ctx) is None
    assert measure_speaking_rate(voice, Segment(0, 0, 1, target_text="Sí, claro."), ctx) is None
    assert ctx.speaking_rate is None and voice.texts == []
    assert len("Sí, claro.") < MIN_CALIBRATION_CHARS


@pytest.mark.parametrize("mode, dubbed, flag", [
    ("keep_original", False, "kept_original"), ("drop", False, "dropped_suspect"),
    ("dub", True, None)])
def test_a_suspect_line(mode, dubbed, flag):
    seg = Segment(0, 0, 1, flags=["suspect_no_speech"])
    assert apply_on_suspect(seg, mode) is dubbed
    assert apply_on_suspect(seg, mode) is dubbed  # a refitted line is asked again
    assert seg.flags == ["suspect_no_speech", *([flag] if flag else [])]  # flagged once


def test_a_confident_line_is_always_dubbed():
    seg = Segment(0, 0, 1)
    assert apply_on_suspect(seg, "drop") and seg.flags == []
