"""mix=duck's pieces: the speech track writer (placement, overlaps, bounded memory),
each clip's fit as the mixer places it (``videodub.placement``: pitch-preserving speed-up
within the allowed rate, overflow when it still does not fit), and loudness: the measurement (EBU R128 integrated loudness, true peak), the
mix brought to its target under the true-peak ceiling, and the options' ranges."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from videodub.builtin.mix_duck import SpeechTrackWriter
from videodub.model import Segment
from videodub.placement import MAX_PUSH_S, ClipPlacer


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


# -- a clip's fit ------------------------------------------------------------------------

RATE = 16000


def fit_clip(audio: np.ndarray, rate: int, seg: Segment) -> tuple[np.ndarray, float, float]:
    """One clip as the mixer places it: (the audio it plays, its stretch, its overflow)."""
    out, _start = ClipPlacer(media_end=1e6).place(seg, audio, rate)
    return out, seg.stretch, seg.overflow


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
    # 0.6 s over its slot: up to the push bound, the rest cut.
    assert overflow == pytest.approx(min(2.0 / 1.25 - 1.0, MAX_PUSH_S), abs=0.03)
    seg = segment(1.0, tts_rate=1.2, max_speed=1.5)
    seg.stretch = stretch
    assert seg.speed_factor == pytest.approx(1.5)


def test_no_stretch_left_when_the_tts_used_all_of_max_speed():
    audio = tone(2.0)
    seg = segment(1.0, tts_rate=1.5, max_speed=1.5)
    out, stretch, overflow = fit_clip(audio, RATE, seg)
    assert stretch == 1.0
    # It runs on past its slot up to the push bound; the rest is cut.
    assert overflow == pytest.approx(MAX_PUSH_S)
    assert len(out) / RATE == pytest.approx(1.0 + MAX_PUSH_S, abs=0.002)
    assert seg.extra["truncated_s"] == pytest.approx(1.0 - MAX_PUSH_S, abs=0.002)


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

@pytest.mark.parametrize("streaming", [False, True], ids=["two-pass", "streaming"])
def test_the_dub_track_has_exactly_the_original_tracks_length(tmp_path, streaming):
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
    options = SimpleNamespace(**{**vars(DuckMixOptions()), "streaming": streaming},
                              effort=Effort.low)
    mixer = DuckMixer(options)
    lengths = []
    for start in (2.0, 11.8, 2.0, 11.8, 2.0, 11.8):
        ctx = JobContext(tmp_path / f"run{len(lengths)}", "es", "en")
        seg = Segment(id=0, start=start, end=start + 1.5, target_text="x", slot_start=start,
                      slot_end=start + 1.5, audio_path=str(clip))
        out = mixer.mix([seg], media, ctx)
        lengths.append(soundfile.info(str(out)).frames)
    assert lengths == [frames] * len(lengths)


# -- loudness --------------------------------------------------------------------------

LOUDNESS_OF = "[0:a]ebur128=peak=true:framelog=quiet[out]"
NOTE = re.compile(r"mix: measured (?P<loudness>-?[\d.]+) LUFS / (?P<peak>-?[\d.]+) dBTP, "
                  r"gain (?P<gain>[+-][\d.]+) dB, limiter (?P<limiter>on|off)")


def measured(path, ctx) -> dict[str, float]:
    from videodub.builtin.mix_duck import measure_loudness

    return measure_loudness(["-i", str(path)], LOUDNESS_OF, ctx)


def test_measure_loudness_of_a_tone_and_of_silence(tmp_path):
    """A 997 Hz sine peaking at 0.1 on both channels is -20 LUFS (EBU R128 is calibrated so)
    with a -20 dBFS peak; silence reads as the gate's floor and a peak of -120 (``-inf``)."""
    from videodub.model import JobContext

    ctx = JobContext(tmp_path / "run", "es", "en")
    rate = 48000
    sine = (0.1 * np.sin(2 * np.pi * 997 * np.arange(3 * rate) / rate)).astype(np.float32)
    soundfile.write(str(tmp_path / "tone.wav"), np.stack([sine, sine], axis=1), rate)
    soundfile.write(str(tmp_path / "silence.wav"), np.zeros((3 * rate, 2), np.float32), rate)
    tone_level = measured(tmp_path / "tone.wav", ctx)
    assert tone_level["I"] == pytest.approx(-20.0, abs=0.2)
    assert tone_level["peak"] == pytest.approx(-20.0, abs=0.2)
    assert measured(tmp_path / "silence.wav", ctx) == {"I": -70.0, "peak": -120.0}


def test_measure_loudness_without_a_summary_is_one_error_line(tmp_path):
    from videodub.builtin.mix_duck import measure_loudness
    from videodub.errors import VideodubError
    from videodub.model import JobContext

    ctx = JobContext(tmp_path / "run", "es", "en")
    soundfile.write(str(tmp_path / "a.wav"), np.zeros((4800, 2), np.float32), 48000)
    with pytest.raises(VideodubError, match="^mixing: ffmpeg ebur128 printed no loudness summary$"):
        measure_loudness(["-i", str(tmp_path / "a.wav")], "[0:a]anull[out]", ctx)


def mix_to_target(tmp_path, background_level: float, speech_level: float, effort, **options):
    """Mix 6 s of noise at ``background_level`` (std) with a 2 s tone peaking at
    ``speech_level``; returns the mix's measured loudness and the mixer's note."""
    from types import SimpleNamespace

    from videodub.builtin.mix_duck import DuckMixer, DuckMixOptions
    from videodub.model import JobContext, MediaInfo

    rate = 48000
    rng = np.random.default_rng(3)
    background = (background_level * rng.standard_normal((6 * rate, 2))).astype(np.float32)
    full = tmp_path / "full.wav"
    soundfile.write(str(full), background, rate, subtype="FLOAT")
    clip = tmp_path / "clip.wav"
    soundfile.write(str(clip), speech_level / 0.5 * tone(2.0, rate=rate), rate)
    media = MediaInfo(path=full, duration=6.0, has_video=False, audio_streams=1,
                      audio_codec="pcm_f32le", video_codec=None, speech_audio=full,
                      full_audio=full, sample_rate=rate)
    # The two-pass mix (the streaming one: tests/unit/test_streammix.py), with the original
    # kept whole (a re-voice's ducking): these tests are about loudness.
    options.setdefault("streaming", False)
    mixer = DuckMixer(SimpleNamespace(**{**vars(DuckMixOptions()), "original_voice": "duck",
                                         **options}, effort=effort))
    tracked = []

    class TrackingContext(JobContext):
        def track_process(self, proc) -> None:
            tracked.append(proc)
            super().track_process(proc)

    ctx = TrackingContext(tmp_path / "run", "es", "en")
    seg = Segment(id=0, start=2.0, end=4.0, target_text="x", slot_start=2.0, slot_end=4.0,
                  audio_path=str(clip))
    out = mixer.mix([seg], media, ctx)
    assert soundfile.info(str(out)).samplerate == rate
    # Every ffmpeg it ran (measure, render, and a check at high effort) could be cancelled.
    assert len(tracked) >= (3 if effort.value == "high" else 2)
    (note,) = [n for n in ctx.notes if n.startswith("mix: measured")]
    return measured(out, ctx), note


@pytest.mark.parametrize("target", [-16.0, -30.0])
def test_a_quiet_mix_is_brought_up_or_down_to_the_target(tmp_path, target):
    from videodub.config import Effort

    level, note = mix_to_target(tmp_path, 0.01, 0.05, Effort.low, loudness=target)
    assert level["I"] == pytest.approx(target, abs=0.3)
    assert level["peak"] < -5.0
    said = NOTE.fullmatch(note)
    assert said, note
    before, gain = float(said["loudness"]), float(said["gain"])
    assert before < -30.0 and gain == pytest.approx(target - before, abs=0.06)
    assert said["limiter"] == "off"


@pytest.mark.parametrize("effort_name", ["low", "high"])
def test_a_loud_mix_is_limited_and_thorough_effort_keeps_the_true_peak_ceiling(tmp_path,
                                                                              effort_name):
    from videodub.config import Effort

    level, note = mix_to_target(tmp_path, 0.3, 0.9, Effort(effort_name), loudness=-5.0,
                                true_peak=-1.5)
    assert note.endswith("limiter on")
    assert level["peak"] < 0.0  # never clipped
    if effort_name == "high":  # checked after rendering, and rendered again tighter
        assert level["peak"] <= -1.5
    assert level["I"] == pytest.approx(-5.0, abs=2.0)


def test_a_silent_mix_gets_no_gain(tmp_path):
    from videodub.config import Effort

    level, note = mix_to_target(tmp_path, 0.0, 0.0, Effort.low)
    assert level == {"I": -70.0, "peak": -120.0}
    assert "gain +0.0 dB" in note and note.endswith("limiter off")


@pytest.mark.parametrize("options, message", [
    ({"loudness": -70.5}, "loudness must be between -70 and -5 LUFS"),
    ({"loudness": -4.5}, "loudness must be between -70 and -5 LUFS"),
    ({"true_peak": 0.5}, "true_peak must be between -9 and 0 dBTP"),
    ({"true_peak": -9.5}, "true_peak must be between -9 and 0 dBTP"),
    ({"duck_ratio": 0.5}, "duck_ratio must be between 1 and 20"),
    ({"duck_ratio": 20.5}, "duck_ratio must be between 1 and 20"),
], ids=["loudness-low", "loudness-high", "true_peak-high", "true_peak-low", "duck_ratio-low",
        "duck_ratio-high"])
def test_loudness_options_out_of_range_are_refused(options, message):
    from videodub.builtin.mix_duck import DuckMixOptions

    with pytest.raises(ValueError, match=message):
        DuckMixOptions(**options)


def test_loudness_options_at_the_ends_of_their_ranges_are_accepted():
    from videodub.builtin.mix_duck import DuckMixOptions

    for loudness, true_peak, duck_ratio in ((-70.0, -9.0, 1.0), (-5.0, 0.0, 20.0)):
        opts = DuckMixOptions(loudness=loudness, true_peak=true_peak, duck_ratio=duck_ratio)
        assert (opts.loudness, opts.true_peak, opts.duck_ratio) == (loudness, true_peak,
                                                                    duck_ratio)


def test_the_track_is_encoded_in_stretches_only_where_that_is_safe(monkeypatch):
    """Stretches on several threads for AAC with more than one worker (0: the job's CPUs);
    one ffmpeg encoder for another coder, one worker, or no in-process description."""
    from videodub.builtin.mix_duck import encoder_spec
    from videodub.machine import Machine
    from videodub.model import DubEncoding

    fast = DubEncoding(("-c:a", "aac"), ".m4a", codec="aac", bit_rates=(64000, 128000),
                       codec_options=(("aac_coder", "fast"),))
    spec = encoder_spec(fast, 1, 3)
    assert (spec.codec, spec.bit_rate, spec.options, spec.workers) == (
        "aac", 64000, {"aac_coder": "fast"}, 3)
    assert encoder_spec(fast, 2, 2).bit_rate == 128000
    monkeypatch.setattr(Machine, "detect", classmethod(lambda cls: SimpleNamespace(cpus=4)))
    assert encoder_spec(fast, 1, 0).workers == 4
    monkeypatch.setattr(Machine, "detect", classmethod(lambda cls: SimpleNamespace(cpus=1)))
    assert encoder_spec(fast, 1, 0) is None
    assert encoder_spec(fast, 1, 1) is None
    twoloop = DubEncoding(("-c:a", "aac"), ".m4a", codec="aac", bit_rates=(96000, 192000),
                          codec_options=(("aac_coder", "twoloop"),))
    assert encoder_spec(twoloop, 1, 4).options == {"aac_coder": "twoloop"}
    anmr = DubEncoding(("-c:a", "aac"), ".m4a", codec="aac", bit_rates=(96000, 192000),
                       codec_options=(("aac_coder", "anmr"),))
    assert encoder_spec(anmr, 1, 4) is None
    assert encoder_spec(DubEncoding(("-c:a", "aac"), ".m4a"), 1, 4) is None
    assert encoder_spec(None, 1, 4) is None


@pytest.mark.parametrize("streaming", [False, True], ids=["two-pass", "streaming"])
def test_the_original_under_a_dubbed_line_goes_where_the_detector_heard_no_speech(tmp_path,
                                                                                  streaming):
    """Steady noise throughout: the energy detector finds no speech region in it (as in a talk
    at -1 dB SNR), so before, the original played on under the dub (ducked, -18 dB). The
    dubbed line's own span removes it."""
    from types import SimpleNamespace

    from videodub.builtin.mix_duck import DuckMixer, DuckMixOptions
    from videodub.config import Effort
    from videodub.model import JobContext, MediaInfo

    rate = 48000
    noise = (0.05 * np.random.default_rng(3).standard_normal((6 * rate, 2))).astype(np.float32)
    full = tmp_path / "full.wav"
    soundfile.write(str(full), noise, rate, subtype="FLOAT")
    clip = tmp_path / "clip.wav"
    soundfile.write(str(clip), tone(1.5, rate=rate), rate)  # 440 Hz: nothing above 4 kHz
    media = MediaInfo(path=full, duration=6.0, has_video=False, audio_streams=1,
                      audio_codec="pcm_f32le", video_codec=None, speech_audio=full,
                      full_audio=full, sample_rate=rate)
    mixer = DuckMixer(SimpleNamespace(**{**vars(DuckMixOptions()), "streaming": streaming},
                                      effort=Effort.low))
    ctx = JobContext(tmp_path / "run", "es", "en")
    seg = Segment(id=0, start=2.0, end=3.5, target_text="x", slot_start=2.0, slot_end=3.5,
                  audio_path=str(clip))
    out = mixer.mix([seg], media, ctx)
    from videodub.speech_regions import regions_of_file

    assert regions_of_file(full).spans == ()  # the detector hears no speech in it
    mixed = soundfile.read(str(out), dtype="float32", always_2d=True)[0].mean(axis=1)

    def hiss(a: float, b: float) -> float:  # the noise alone: its power above 4 kHz
        spectrum = np.abs(np.fft.rfft(mixed[int(a * rate):int(b * rate)])) ** 2
        return float(spectrum[int(4000 * (b - a)):].mean())

    assert hiss(2.2, 3.3) < 1e-4 * hiss(4.5, 5.6)  # under the line: -40 dB and more
