"""videodub.speech_regions: speech found from energy, and a recogniser's times snapped to it."""

from __future__ import annotations

import numpy as np
import pytest

from videodub.speech_regions import Regions, detect, regions_of_file, snap_end, snap_start

RATE = 16000


def track(spans: list[tuple[float, float]], total: float, noise: float = 0.003) -> np.ndarray:
    """Noise everywhere, a 200 Hz tone (amplitude 0.3) inside ``spans``."""
    rng = np.random.default_rng(1)
    audio = noise * rng.standard_normal(int(total * RATE))
    t = np.arange(len(audio)) / RATE
    for s, e in spans:
        inside = (t >= s) & (t < e)
        audio[inside] += 0.3 * np.sin(2 * np.pi * 200 * t[inside])
    return audio.astype(np.float32)


def test_regions_are_found_to_within_a_frame():
    spans = [(0.5, 1.7), (3.03, 4.2), (6.0, 6.4)]
    found = detect(track(spans, 8.0), RATE)
    assert len(found.spans) == 3
    for (s, e), (fs, fe) in zip(spans, found.spans):
        assert fs == pytest.approx(s, abs=0.011) and fe == pytest.approx(e, abs=0.011)


def test_short_pauses_are_bridged_and_blips_dropped():
    found = detect(track([(1.0, 2.0), (2.1, 3.0), (5.0, 5.03)], 6.0), RATE)
    assert found.spans == ((pytest.approx(1.0, abs=0.011), pytest.approx(3.0, abs=0.011)),)


def test_silence_has_no_speech():
    assert detect(np.zeros(RATE * 2, dtype=np.float32), RATE).spans == ()


def test_regions_of_a_file_are_measured_once_per_version(tmp_path):
    import soundfile

    path = tmp_path / "a.wav"
    soundfile.write(str(path), track([(1.0, 2.0)], 3.0), RATE)
    first = regions_of_file(path)
    assert regions_of_file(path) is first
    soundfile.write(str(path), track([(0.5, 2.5)], 3.0), RATE)  # a new file, new regions
    assert regions_of_file(path).spans[0][0] == pytest.approx(0.5, abs=0.011)


REGIONS = Regions(((1.0, 3.0), (4.2, 6.0), (9.0, 10.0)), 12.0, -30.0)


@pytest.mark.parametrize("asr, expected", [
    (0.7, 1.0),    # recogniser early: the onset that follows
    (1.25, 1.0),   # recogniser a little late: the onset of the region it falls in
    (4.0, 4.2),
    (7.0, 7.0),    # nothing near: unchanged
    (2.5, 2.5),    # deep inside a region that began long before: unchanged
])
def test_a_start_snaps_to_the_onset_near_it(asr, expected):
    assert snap_start(asr, REGIONS) == expected


def test_an_end_snaps_to_the_nearest_offset_after_the_start():
    assert snap_end(3.3, REGIONS, after=1.0) == 3.0
    assert snap_end(5.7, REGIONS, after=4.2) == 6.0
    assert snap_end(8.0, REGIONS, after=7.0) == 8.0
