"""videodub.speech_regions: speech found from energy, and a recogniser's times snapped to it."""

from __future__ import annotations

import numpy as np
import pytest

from videodub import speech_regions
from videodub.speech_regions import (Regions, detect, frame_db, levels_of_file, nucleus,
                                     regions_of_file, snap_end, snap_start, source_levels, to_mono)

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


@pytest.mark.parametrize("dip_frames, end", [(1, 1.5), (3, 1.5), (4, 1.2)])
def test_a_fading_end_is_followed_past_a_one_frame_dip(dip_frames, end):
    """A sentence's quiet last sound (between the edge and the threshold) stays part of it
    across a dip of up to 30 ms under the edge, as between the sounds of a fading word; a
    longer dip ends it. (The dub's test talk lost 0.2 s of "audience" to a 10 ms dip, and the
    original voice was heard there.)"""
    db = np.full(300, -40.0)  # the floor: edge -36, threshold -28
    db[100:120] = -20.0  # speech, 1.0-1.2 s
    db[120 + dip_frames:150] = -31.0  # its fading end, after the dip
    found = speech_regions.detect_levels(db, 3.0)
    assert found.spans == ((1.0, end),)


@pytest.mark.parametrize("silence_s", [0.5, 1.5, 4.0])
def test_digital_silence_before_a_noisy_track_is_not_its_noise_floor(silence_s):
    """Ingest puts silence before audio that starts after the picture: the room's noise is
    still the floor, and the speech is found where it is (it was all speech from the end of
    the silence once that was a tenth of the track)."""
    spans = [(0.5, 1.7), (3.03, 4.2), (6.0, 6.4)]
    plain = detect(track(spans, 8.0), RATE)
    padded = detect(np.concatenate([np.zeros(int(silence_s * RATE), np.float32),
                                    track(spans, 8.0)]), RATE)
    assert len(padded.spans) == len(spans)
    for (s, e), (ps, pe) in zip(plain.spans, padded.spans):
        assert ps == pytest.approx(s + silence_s, abs=0.011)
        assert pe == pytest.approx(e + silence_s, abs=0.011)


def test_clean_speech_between_digital_silences_keeps_its_quiet_sounds():
    """No room under the speech (a synthesized or hard-muted voice): the silence stays the
    floor, so the quiet start of a sound is not cut off."""
    db = np.full(400, -120.0)
    db[100:200] = np.linspace(-50.0, -15.0, 100)  # a sound swelling from -50 dB
    db[250:300] = -20.0
    found = speech_regions.detect_levels(db, 4.0)
    assert found.spans[0][0] <= 1.05


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


def read_whole(path) -> tuple[np.ndarray, int]:
    """A file read at once, mixed to mono: what the blockwise reading must equal."""
    import soundfile

    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return to_mono(audio), rate


def test_a_file_read_in_blocks_gives_the_levels_and_regions_of_the_whole_file(
        tmp_path, monkeypatch):
    import soundfile

    # 70-frame blocks (0.7 s): many of them, the last one short and cut mid-frame.
    monkeypatch.setattr(speech_regions, "BLOCK_FRAMES", 70)
    path = tmp_path / "speech.wav"
    audio = track([(0.5, 1.7), (2.05, 2.9), (3.03, 4.2), (6.0, 6.4)], 7.0)
    soundfile.write(str(path), audio[: 7 * RATE - 61], RATE)
    whole, rate = read_whole(path)
    assert len(whole) % (70 * 160) and len(whole) % 160  # neither whole blocks nor frames

    levels = levels_of_file(path)
    assert np.array_equal(levels.db, frame_db(whole, rate))
    assert (levels.rate, levels.samples, levels.duration) == (rate, len(whole), len(whole) / rate)
    speech_regions._cache.clear()
    assert regions_of_file(path) == detect(whole, rate)
    dub_like = {"threshold_db": -50.0, "merge_gap": 0.05}
    assert regions_of_file(path, **dub_like) == detect(whole, rate, **dub_like)


def test_a_stereo_file_scaled_in_blocks_equals_the_whole_file_scaled(tmp_path, monkeypatch):
    import soundfile

    monkeypatch.setattr(speech_regions, "BLOCK_FRAMES", 33)
    rate = 48000
    rng = np.random.default_rng(2)
    stereo = (0.2 * rng.standard_normal((3 * rate + 1234, 2))).astype(np.float32)
    path = tmp_path / "background.wav"
    soundfile.write(str(path), stereo, rate, subtype="FLOAT")
    whole, _ = read_whole(path)
    scale = 10 ** (-4.0 / 20)
    assert np.array_equal(levels_of_file(path, scale=scale).db, frame_db(whole * scale, rate))


def test_measuring_a_file_holds_one_block_not_the_whole_track(tmp_path, monkeypatch):
    import tracemalloc

    import soundfile

    monkeypatch.setattr(speech_regions, "BLOCK_FRAMES", 500)  # 5 s blocks
    path = tmp_path / "long.wav"
    minutes = 3
    with soundfile.SoundFile(str(path), "w", samplerate=RATE, channels=1) as f:
        for _ in range(minutes * 6):
            f.write(track([(1.0, 6.0)], 10.0))
    tracemalloc.start()
    try:
        levels = levels_of_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole_track = minutes * 60 * RATE * 4  # the samples as float32: 11.5 MB
    assert len(levels.db) == minutes * 6000
    assert peak < whole_track / 8


REGIONS = Regions(((1.0, 3.0), (4.2, 6.0), (9.0, 10.0), (12.0, 12.3), (12.7, 14.0),
                   (14.25, 14.5), (14.9, 16.0)), 20.0, -30.0)


@pytest.mark.parametrize("asr, expected", [
    (0.7, 1.0),    # recogniser early: the onset that follows
    (1.25, 1.0),   # recogniser a little late: the onset of the region it falls in
    (4.0, 4.2),
    (7.0, 7.0),    # nothing near: unchanged
    (2.5, 2.5),    # deep inside a region that began long before: unchanged
    # Late past a first word ("First, | speak ...", Whisper 0.38 s late): that word's onset,
    # not the next word's, which is nearer.
    (12.38, 12.0),
    (12.6, 12.7),  # the word ended too long before: the onset that follows
    # A short region right after the sentence before (0.25 s pause) is its last word: the
    # onset that follows.
    (14.6, 14.9),
])
def test_a_start_snaps_to_the_onset_near_it(asr, expected):
    assert snap_start(asr, REGIONS) == expected


# The sentence before speaks until 4.0; this line's speech starts at 5.3 after a pause.
SENTENCES = Regions(((1.0, 4.0), (5.3, 8.0), (8.3, 9.0)), 10.0, -30.0)


@pytest.mark.parametrize("asr, previous_end, late, expected", [
    # Whisper without word timing: the line "starts" where the sentence before stops, 1.6 s
    # before its speech (under a music bed): the onset after the pause, from the tail.
    (3.7, 4.0, 1.5, 5.3),
    (3.7, None, 1.5, 5.3),
    (3.7, 4.0, 0.6, 3.7),   # the pause is longer than the search: unchanged
    (3.3, 4.0, 1.5, 3.3),   # not the sentence's tail: unchanged
    (3.7, 3.5, 1.5, 3.7),   # the line before ended earlier: this speech is this line's
    # Late inside its own first region (word timing under music, 0.46 s): that region's
    # onset, when the line before had ended ahead of it.
    (5.76, 4.0, 0.6, 5.3),
    (5.76, None, 0.6, 5.76),  # not known where the line before ended: unchanged
    (5.76, 5.5, 0.6, 5.76),   # the line before spoke into this region: unchanged
    (6.5, 4.0, 0.6, 6.5),     # more than LATE_INSIDE_S in: unchanged
    (8.8, 8.1, 0.6, 8.8),     # after a 0.3 s pause, not a sentence's: unchanged
])
def test_a_start_at_the_previous_sentence_s_tail_or_late_inside_its_own(asr, previous_end,
                                                                        late, expected):
    assert snap_start(asr, SENTENCES, late=late, previous_end=previous_end) == expected


# The end of a talk's sentence as measured under music: "... see you next | time" (its
# last word 0.29 s after the rest), a 1.2 s pause, the next sentence; then "First," alone
# after a pause, and the rest of its sentence 0.32 s later; then "So," alone between two
# pauses.
LAST_WORD = Regions(((21.9, 23.94), (24.23, 24.62), (25.82, 29.36), (30.6, 30.93),
                     (31.25, 33.0), (35.0, 35.3), (36.0, 38.0)), 40.0, -30.0)


@pytest.mark.parametrize("asr, previous_end, expected", [
    # Whisper without word timing started the line in that last word, 1.3 s before its
    # speech, and the line before (snapped) ends with the word: the onset after the pause.
    (24.51, 24.62, 25.82),
    (24.51, None, 25.82),
    (24.51, 23.94, 24.23),    # the line before ended ahead of the word: the word is this line's
    (24.05, 24.62, 24.23),    # not in the word's last TAIL_S: unchanged rules
    # A first word after a pause is the line's, even when the line before was snapped to
    # end with it.
    (30.8, 30.93, 30.6),
    (30.8, None, 30.6),
    (35.1, 35.3, 35.0),
])
def test_a_start_in_the_last_word_of_the_sentence_before(asr, previous_end, expected):
    assert snap_start(asr, LAST_WORD, late=1.5, previous_end=previous_end) == expected


def test_an_end_snaps_to_the_nearest_offset_after_the_start():
    assert snap_end(3.3, REGIONS, after=1.0) == 3.0
    assert snap_end(5.7, REGIONS, after=4.2) == 6.0
    assert snap_end(8.0, REGIONS, after=7.0) == 8.0


def test_levels_measured_in_pieces_are_those_of_the_16_bit_file(tmp_path):
    """What the streaming mix measures instead of writing its tracks: the levels
    ``levels_of_file`` reads from the 16-bit WAV of the same samples, silence included."""
    import soundfile

    from videodub.speech_regions import LevelMeter

    rate = 48000
    rng = np.random.default_rng(5)
    audio = (0.2 * rng.standard_normal(3 * rate + 777)).astype(np.float32)
    audio[rate:2 * rate] = 0.0
    audio[2 * rate:2 * rate + 4800] *= 1e-4  # under one 16-bit step: 0 in the file
    soundfile.write(str(tmp_path / "t.wav"), audio, rate, subtype="PCM_16")
    meter = LevelMeter(rate)
    for piece in np.array_split(audio, 11):  # pieces that are not whole frames
        meter.add(piece)
    measured, read = meter.levels(), levels_of_file(tmp_path / "t.wav")
    assert (measured.samples, measured.rate) == (read.samples, read.rate)
    assert measured.db.shape == read.db.shape
    assert np.abs(measured.db - read.db).max() < 0.01


# -- a line's nucleus ---------------------------------------------------------------------

def soft_start(soft_s: float, soft_db: float, at: float = 1.0, total: float = 3.0) -> np.ndarray:
    """The tone of ``track`` from ``at`` + ``soft_s``, opened by noise ``soft_db`` under it."""
    audio = track([(at + soft_s, at + 1.5)], total)
    n = int(soft_s * RATE)
    first = int(at * RATE)
    audio[first:first + n] += (0.3 * 10 ** (soft_db / 20)
                               * np.random.default_rng(2).standard_normal(n)).astype(np.float32)
    return audio


@pytest.mark.parametrize("soft_s", [0.0, 0.05, 0.09])
def test_the_nucleus_is_the_first_strong_sound_after_a_soft_start(soft_s):
    db = frame_db(soft_start(soft_s, -30.0), RATE)
    assert nucleus(db, 1.0) == pytest.approx(soft_s, abs=0.011)


def test_a_start_within_the_nucleus_range_is_its_nucleus():
    # -15 dB under the vowel is strong already (a plosive's burst, a loud fricative)
    assert nucleus(frame_db(soft_start(0.09, -15.0), RATE), 1.0) == pytest.approx(0, abs=0.011)


def test_the_nucleus_is_looked_for_in_the_line_s_first_half_second():
    db = frame_db(soft_start(0.09, -30.0), RATE)
    assert nucleus(db, 0.3) is not None and nucleus(db, 0.3) <= speech_regions.NUCLEUS_WINDOW_S
    assert nucleus(db, 2.99) == pytest.approx(0.0) and nucleus(db, 5.0) is None


def test_the_source_s_levels_are_read_once_per_version(tmp_path):
    import soundfile

    path = tmp_path / "a.wav"
    soundfile.write(str(path), track([(1.0, 2.0)], 3.0), RATE)
    first = source_levels(path)
    assert source_levels(path) is first
    np.testing.assert_array_equal(first.db, levels_of_file(path).db)
    soundfile.write(str(path), track([(0.5, 2.5)], 3.0), RATE)
    assert source_levels(path) is not first
