"""voicefx against videodub's shared tts suite, and the effects it promises."""

from pathlib import Path

import numpy as np
import pytest

import videodub
import videodub_voicefx
from videodub.errors import Cancelled, VideodubError
from videodub.audio import read_mono
from videodub.model import JobScope
from videodub.testing import TTSSuite, median_f0, registry_with

LINE = "Thank you for watching, and see you next time in the second part of the talk."


class TestVoiceFxSuite(TTSSuite):
    impl_name = "voicefx"
    overrides = {"pitch_semitones": 4.0, "reverb_room": 0.3, "gain_db": -2.0}
    invalid_overrides = [{"pitch_semitones": 99}, {"pitch_semitones": -12.5},
                         {"reverb_room": 1.5}, {"gain_db": 40}, {"base": "voicefx"},
                         {"workers": -1}]
    # Without an install the suite registers the module itself.
    plugins = [videodub_voicefx]
    checks_cancellation = True


suite = TestVoiceFxSuite()


def voice_and_base(tmp_path: Path, text: str = LINE, **options):
    """One line through voicefx: (processed audio, base audio, rate, segment)."""
    ctx = suite.context(tmp_path)
    registry = suite.registry()
    impl = registry.get("tts", "voicefx")
    synth = impl.create(impl.config(**options), JobScope(registry))
    seg = suite.synth(synth, ctx, text)
    base_path = Path(seg.extra["voicefx_base_clip"])
    assert Path(seg.audio_path).parent == base_path.parent  # written next to the base clip
    audio, rate = read_mono(seg.audio_path)
    base, base_rate = read_mono(base_path)
    assert rate == base_rate
    return audio, base, rate, seg


@pytest.mark.parametrize("semitones", [5.0, -5.0])
def test_pitch_shift_moves_the_voice_and_keeps_the_timing(tmp_path, semitones):
    audio, base, rate, _ = voice_and_base(tmp_path, pitch_semitones=semitones)
    assert len(audio) == len(base)  # the mixer's timing plan stays valid
    measured = 12 * np.log2(median_f0(audio, rate) / median_f0(base, rate))
    assert abs(measured - semitones) < 1.0, f"asked for {semitones}, measured {measured:.2f}"


def test_reverb_rings_on_after_the_line(tmp_path):
    audio, base, rate, seg = voice_and_base(tmp_path, reverb_room=0.8)
    assert len(audio) > len(base) + 0.05 * rate
    tail = audio[len(base):]
    assert np.sqrt(np.mean(tail ** 2)) > 1e-3  # a tail, not padding
    assert seg.synth_duration == pytest.approx(len(audio) / rate, abs=1e-3)


def test_gain_scales_the_level(tmp_path):
    audio, base, _, _ = voice_and_base(tmp_path, gain_db=-6.0)
    ratio = np.sqrt(np.mean(audio ** 2)) / np.sqrt(np.mean(base ** 2))
    assert ratio == pytest.approx(10 ** (-6 / 20), rel=0.05)


def test_no_effects_is_the_base_voice(tmp_path):
    audio, base, _, _ = voice_and_base(tmp_path)
    assert np.max(np.abs(audio - base)) < 1e-3


def test_unknown_base_names_the_choices():
    with pytest.raises(VideodubError, match=r"unknown tts implementation 'espek'.*espeak"):
        suite.synthesizer(base="espek")


class CancelsWhileSpeaking:
    """A base voice during whose synthesis the job gets cancelled."""

    @videodub.hookimpl
    def register_tts(self, register):
        from videodub.builtin.tts_espeak import EspeakOptions, EspeakSynthesizer

        class Synth(EspeakSynthesizer):
            def synthesize(self, segment, ctx):
                segment = super().synthesize(segment, ctx)
                ctx.cancel_event.set()
                return segment

        register("cancels_while_speaking", Synth, EspeakOptions)


def test_cancelled_during_the_base_voice_writes_no_effect_clip(tmp_path):
    # voicefx finds its base voice in the job's registry: here, one with a test voice added.
    registry = registry_with([videodub_voicefx, CancelsWhileSpeaking()])
    impl = registry.get("tts", "voicefx")
    synth = impl.create(impl.config(base="cancels_while_speaking", pitch_semitones=3.0),
                        JobScope(registry))
    ctx = suite.context(tmp_path)
    with pytest.raises(Cancelled):
        synth.synthesize(suite.segment(LINE), ctx)
    clips = sorted(p.name for p in ctx.run_dir.rglob("*.wav"))
    assert clips and not any("voicefx" in name for name in clips), clips
