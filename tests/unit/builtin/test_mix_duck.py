"""mix=duck's pieces: the speech track writer (placement, overlaps, bounded memory) and
fit_clip (pitch-preserving speed-up within the allowed rate, overflow when it still
does not fit)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from videodub.builtin.mix_duck import SpeechTrackWriter, fit_clip
from videodub.model import Segment


def read(path) -> np.ndarray:
    data, _ = soundfile.read(str(path), dtype="float32")
    return data


# -- SpeechTrackWriter -----------------------------------------------------------------

def test_clips_land_at_their_sample_offsets_and_the_track_is_padded(tmp_path):
    path = tmp_path / "speech.wav"
    writer = SpeechTrackWriter(path, rate=1000)
    writer.add(np.full(100, 0.5, dtype=np.float32), start_s=0.2)
    writer.add(np.full(50, 0.25, dtype=np.float32), start_s=1.0)
    writer.close(total_s=3.0)
    track = read(path)
    assert len(track) == 3000
    assert np.all(track[200:300] == 0.5)
    assert np.all(track[1000:1050] == 0.25)
    silent = np.ones(3000, dtype=bool)
    silent[200:300] = silent[1000:1050] = False
    assert np.all(track[silent] == 0.0)


def test_overlapping_clips_are_summed(tmp_path):
    path = tmp_path / "speech.wav"
    writer = SpeechTrackWriter(path, rate=1000)
    writer.add(np.full(300, 0.125, dtype=np.float32), start_s=0.1)
    writer.add(np.full(300, 0.25, dtype=np.float32), start_s=0.3)
    writer.add(np.full(50, 0.5, dtype=np.float32), start_s=0.35)  # inside both
    writer.close(total_s=1.0)
    track = read(path)
    assert np.all(track[:100] == 0)
    assert np.all(track[100:300] == 0.125)
    assert np.all(track[300:350] == 0.375)
    assert np.all(track[350:400] == 0.875)
    assert np.all(track[400:600] == 0.25)
    assert np.all(track[600:] == 0)


def test_clip_at_time_zero_and_clip_running_past_the_end(tmp_path):
    path = tmp_path / "speech.wav"
    writer = SpeechTrackWriter(path, rate=1000)
    writer.add(np.full(10, 0.5, dtype=np.float32), start_s=0.0)
    writer.add(np.full(200, 0.25, dtype=np.float32), start_s=0.9)
    writer.close(total_s=1.0)
    track = read(path)
    assert np.all(track[:10] == 0.5)
    # Nothing is cut here: the mixer cuts the whole mix at the original track's length.
    assert len(track) == 1100 and np.all(track[900:] == 0.25)


def test_writer_holds_only_the_overlap_window(tmp_path):
    path = tmp_path / "speech.wav"
    rate = 8000
    clip = np.full(int(0.15 * rate), 0.25, dtype=np.float32)  # 0.15 s clips every 0.1 s
    writer = SpeechTrackWriter(path, rate=rate)
    held = []
    n = 2000
    for i in range(n):
        writer.add(clip, start_s=i * 0.1)
        held.append(len(writer.pending))
    writer.close(total_s=n * 0.1 + 1.0)
    assert max(held) <= len(clip)  # not the whole track: at most one clip's worth
    track = read(path)
    assert len(track) == int(round((n * 0.1 + 1.0) * rate))
    step = int(0.1 * rate)
    # Every 0.1 s window after the first holds a clip's start plus the previous clip's tail.
    middle = track[step * 500: step * 501]
    assert np.all(middle[: len(clip) - step] == 0.5)
    assert np.all(middle[len(clip) - step:] == 0.25)


# -- fit_clip --------------------------------------------------------------------------

RATE = 16000


def tone(seconds: float, freq: float = 440.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def segment(slot: float, tts_rate: float = 1.0, max_speed: float = 1.5) -> Segment:
    return Segment(id=0, start=10.0, end=10.0 + slot, target_text="x", slot_start=10.0,
                   slot_end=10.0 + slot, tts_rate=tts_rate, max_speed=max_speed)


def dominant_frequency(audio: np.ndarray, rate: int) -> float:
    middle = audio[len(audio) // 4: 3 * len(audio) // 4]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    return float(np.fft.rfftfreq(len(middle), 1 / rate)[np.argmax(spectrum)])


def test_clip_that_fits_is_left_alone():
    audio = tone(0.5)
    out, stretch, overflow = fit_clip(audio, RATE, segment(slot=1.0))
    assert out is audio
    assert (stretch, overflow) == (1.0, 0.0)


def test_clip_is_stretched_just_enough_to_fit():
    out, stretch, overflow = fit_clip(tone(1.2), RATE, segment(slot=1.0, max_speed=1.5))
    assert stretch == pytest.approx(1.2)
    assert len(out) / RATE == pytest.approx(1.0, abs=0.03)
    assert overflow < 0.03


def test_stretch_is_capped_by_max_speed_and_the_rest_overflows():
    out, stretch, overflow = fit_clip(tone(2.0), RATE, segment(slot=1.0, max_speed=1.5))
    assert stretch == pytest.approx(1.5)
    assert len(out) / RATE == pytest.approx(2.0 / 1.5, rel=0.02)
    assert overflow == pytest.approx(2.0 / 1.5 - 1.0, abs=0.03)


def test_speed_up_already_asked_of_the_tts_counts_against_max_speed():
    out, stretch, overflow = fit_clip(tone(2.0), RATE, segment(1.0, tts_rate=1.2, max_speed=1.5))
    assert stretch == pytest.approx(1.25)  # 1.2 x 1.25 = 1.5
    assert overflow == pytest.approx(2.0 / 1.25 - 1.0, abs=0.03)
    seg = segment(1.0, tts_rate=1.2, max_speed=1.5)
    seg.stretch = stretch
    assert seg.speed_factor == pytest.approx(1.5)


def test_no_stretch_left_when_the_tts_used_all_of_max_speed():
    audio = tone(2.0)
    out, stretch, overflow = fit_clip(audio, RATE, segment(1.0, tts_rate=1.5, max_speed=1.5))
    assert out is audio and stretch == 1.0
    assert overflow == pytest.approx(1.0)


def test_slot_defaults_to_the_segment_timing():
    seg = Segment(id=0, start=2.0, end=3.0, target_text="x", max_speed=2.0)
    out, stretch, overflow = fit_clip(tone(1.5), RATE, seg)
    assert stretch == pytest.approx(1.5)
    assert overflow < 0.03


def test_empty_clip():
    out, stretch, overflow = fit_clip(np.zeros(0, dtype=np.float32), RATE, segment(1.0))
    assert len(out) == 0 and stretch == 1.0 and overflow == 0.0


def test_stretch_keeps_the_pitch():
    rate = 22050
    audio = tone(2.0, freq=440.0, rate=rate)
    out, stretch, _ = fit_clip(audio, rate, segment(slot=1.0, max_speed=1.5))
    assert stretch == pytest.approx(1.5)
    assert len(out) < len(audio)
    # Resampling would move it to 660 Hz; a pitch-preserving stretch stays at 440 Hz.
    assert dominant_frequency(out, rate) == pytest.approx(440.0, rel=0.03)


# -- DuckMixer: the dubbed track's length ------------------------------------------------

def test_the_dub_track_has_exactly_the_original_tracks_length(tmp_path):
    """ffmpeg's threaded decoders let ``sidechaincompress`` end at whichever input's end it
    sees first, which varied from run to run by up to half a second; the mixer pads both inputs
    and cuts at the original's length. Repeated runs, with speech that ends early, runs past
    the end, and a container duration that disagrees with the audio's, all give that length."""
    from types import SimpleNamespace

    from videodub.builtin.mix_duck import DuckMixer, DuckMixOptions
    from videodub.config import Effort
    from videodub.model import JobContext, MediaInfo

    rate = 48000
    rng = np.random.default_rng(7)
    frames = int(12.3456 * rate)
    background = (0.1 * rng.standard_normal((frames, 2))).astype(np.float32)
    full = tmp_path / "full.wav"
    soundfile.write(str(full), background, rate, subtype="FLOAT")
    clip = tmp_path / "clip.wav"
    soundfile.write(str(clip), tone(1.5, rate=rate), rate)
    media = MediaInfo(path=full, duration=12.0, has_video=False, audio_streams=1,
                      audio_codec="pcm_f32le", video_codec=None, speech_audio=full,
                      full_audio=full, sample_rate=rate)
    options = SimpleNamespace(**vars(DuckMixOptions()), effort=Effort.low)
    mixer = DuckMixer(options)
    lengths = []
    for start in (2.0, 11.8, 2.0, 11.8, 2.0, 11.8):
        ctx = JobContext(tmp_path / f"run{len(lengths)}", "es", "en")
        seg = Segment(id=0, start=start, end=start + 1.5, target_text="x", slot_start=start,
                      slot_end=start + 1.5, audio_path=str(clip))
        out = mixer.mix([seg], media, ctx)
        lengths.append(soundfile.info(str(out)).frames)
    assert lengths == [frames] * len(lengths)
