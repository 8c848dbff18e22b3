"""videodub.background: the original silenced where the source speaks, kept elsewhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile

from videodub.background import (FADE_S, PAD_S, StreamingRemoval, gain_envelope, removal_spans,
                                 removes_original, write_background)
from videodub.speech_regions import Regions


def test_auto_removes_for_another_language_and_for_a_re_voice():
    assert removes_original("auto", "en", "es")
    assert removes_original("auto", "en", "en-gb")
    assert removes_original("remove", "en", "en")
    assert not removes_original("duck", "en", "es")


def test_kept_lines_are_cut_out_of_the_removal():
    spans = removal_spans(Regions(((1.0, 5.0),), 10.0, -30.0), keep=[(2.0, 3.0)])
    assert spans == [(1.0 - PAD_S, 2.0), (3.0, 5.0 + PAD_S)]


def test_a_dubbed_line_the_detector_missed_is_removed_too():
    """Under steady noise the energy detector finds little or none of the speech (none at
    -1 dB SNR); the dubbed lines say where it is."""
    spans = removal_spans(Regions(((1.0, 2.0),), 10.0, -30.0), keep=[(7.0, 8.0)],
                          lines=[(4.0, 6.0), (7.0, 8.0)])
    assert spans == [(1.0 - PAD_S, 2.0 + PAD_S), (4.0 - PAD_S, 6.0 + PAD_S),
                     (7.0 - PAD_S, 7.0), (8.0, 8.0 + PAD_S)]


def test_streaming_removal_takes_lines_as_they_come_and_lets_passed_ones_go():
    rate = 1000
    removal = StreamingRemoval(Regions((), 10.0, -30.0))  # the detector found nothing
    assert removal.gains(0, 1000, rate).min() == 1.0
    removal.line(2.0, 3.0)
    removal.line(2.5, 4.0)  # lines may overlap
    g = np.concatenate([removal.gains(o, 1000, rate) for o in range(1000, 6000, 1000)])
    assert g[1000 - int(PAD_S * rate):3000 + int(PAD_S * rate)].max() == 0.0  # 2.0-4.0 s
    assert g[:1000 - int((PAD_S + FADE_S) * rate)].min() == 1.0 and g[3200:].min() == 1.0
    assert removal._lines == []  # behind the mix: let go


def test_the_envelope_is_zero_inside_one_outside_with_fades():
    rate = 1000
    g = gain_envelope(5000, 0, rate, [(2.0, 3.0)])
    assert g[2000:3000].max() == 0.0
    assert g[:2000 - int(FADE_S * rate)].min() == 1.0 and g[3000 + int(FADE_S * rate):].min() == 1.0
    fade = g[2000 - int(FADE_S * rate):2000]
    assert np.all(np.diff(fade) <= 0)  # a fade, not a click


def test_blocks_give_the_same_envelope_as_one_piece():
    rate, spans = 1000, [(0.5, 1.25), (2.9, 3.1)]
    whole = gain_envelope(4000, 0, rate, spans)
    parts = np.concatenate([gain_envelope(700, o, rate, spans) for o in range(0, 4000, 700)])
    assert np.array_equal(whole, parts[:4000])


def test_written_background_keeps_its_format_and_silences_speech(tmp_path):
    rate = 48000
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((4 * rate, 2))).astype(np.float32)
    src = tmp_path / "orig.wav"
    soundfile.write(str(src), audio, rate)
    out = write_background(src, tmp_path / "bg.wav", [(1.0, 2.0)])
    bg, r = soundfile.read(str(out), dtype="float32", always_2d=True)
    assert r == rate and bg.shape == audio.shape
    assert np.abs(bg[rate: 2 * rate]).max() == 0.0
    assert np.allclose(bg[3 * rate:], audio[3 * rate:], atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bg.wav", "orig.wav"]


def test_streaming_removal_finds_the_regions_when_the_mix_first_asks_and_as_it_passes_them():
    """Not when the mix thread starts with the job: finding the voice then competed with
    loading the recogniser, and imported faster-whisper from two threads at once (a quality
    job failed with ``KeyError: 'faster_whisper'``). Asked again once the mix passes where
    the regions were good to (long media: found a minute at a time)."""
    asked = []

    def regions(until):
        asked.append(until)
        if len(asked) == 1:  # good to 2.5 s: the second region is not known yet
            return Regions(((1.0, 2.0),), 10.0, -30.0), 2.5
        return Regions(((1.0, 2.0), (3.0, 3.5)), 10.0, -30.0), math.inf

    removal = StreamingRemoval(regions)
    assert asked == [] and removal.spans is None
    g = removal.gains(0, 2000, 1000)
    assert len(asked) == 1 and asked[0] >= 2.0
    assert g[1000:2000].max() == 0.0 and g[:800].min() == 1.0
    g = removal.gains(2000, 2000, 1000)
    assert len(asked) == 2 and g[1000:1500].max() == 0.0  # 3.0-3.5 s
    removal.gains(4000, 1000, 1000)
    assert len(asked) == 2  # good to the end
