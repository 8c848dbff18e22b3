"""The streaming mix: its loudness meter against pyloudnorm, the ducking envelope, and whole
mixes through ``mix=duck`` (streaming) measured by ffmpeg's ebur128: on target, under the
true-peak ceiling, the background ducked under speech, audio handed on before the last clip,
nothing left behind when cancelled."""

from __future__ import annotations

import re
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from videodub.errors import Cancelled
from videodub.builtin.mix_duck import measure_loudness
from videodub.model import JobContext, MediaInfo, Segment
from videodub.loudness import LoudnessMeter
from videodub.streammix import DuckEnvelope, StreamingMix, StreamOptions

RATE = 48000


def tone(seconds: float, level: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_the_meter_reads_a_997_hz_sine_at_minus_20_lufs_in_any_pieces():
    sine = tone(3.0, 0.1, 997.0)
    stereo = np.stack([sine, sine], axis=1)
    meter = LoudnessMeter(RATE, 2)
    for piece in np.array_split(stereo, [1, 4801, 4802, 77777, 100000]):
        meter.add(piece)
    assert meter.integrated() == pytest.approx(-20.0, abs=0.1)


def test_the_meter_agrees_with_pyloudnorm_on_gated_speechlike_audio():
    import pyloudnorm

    rng = np.random.default_rng(5)
    audio = np.zeros((20 * RATE, 2))
    for k in range(6):  # bursts of shaped noise over a faint floor, long silences between
        a = int((1 + 3 * k) * RATE)
        audio[a:a + RATE] = 0.2 * rng.standard_normal((RATE, 2)) * (0.3 + 0.2 * k)
    audio += 0.0005 * rng.standard_normal(audio.shape)
    meter = LoudnessMeter(RATE, 2)
    for piece in np.array_split(audio, 13):
        meter.add(piece)
    expected = pyloudnorm.Meter(RATE).integrated_loudness(audio)
    assert meter.integrated() == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("rate", [48000, 44100, 16000])
def test_the_k_weighting_is_pyloudnorms_and_filters_as_sosfilt_in_any_pieces(rate):
    import math

    from pyloudnorm.iirfilter import IIRfilter
    from scipy.signal import sosfilt

    from videodub.loudness import KWeighted, k_weighting

    shelf = IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, rate, "high_shelf")
    highpass = IIRfilter(0.0, 0.5, 38.0, rate, "high_pass")
    sos = np.array([np.r_[shelf.b, shelf.a], np.r_[highpass.b, highpass.a]])
    assert np.allclose(np.array(k_weighting(rate)), sos, rtol=1e-12, atol=0)
    audio = np.random.default_rng(8).standard_normal((3 * rate, 2)) * 0.1
    audio[rate:rate + 100] = 0.0
    weighted = KWeighted(rate, 2)
    got = np.concatenate([weighted(p) for p in np.array_split(audio, [1, 4801, 4802, 77777])])
    assert got.shape == audio.shape
    assert np.abs(got - sosfilt(sos, audio, axis=0)).max() < 1e-9


def test_silence_is_at_the_absolute_gate():
    meter = LoudnessMeter(RATE, 2)
    meter.add(np.zeros((RATE, 2)))
    assert meter.integrated() == -70.0


def test_the_envelope_ducks_under_clips_with_ramps_before_and_after():
    env = DuckEnvelope(RATE, -18.0, attack_s=0.02, release_s=0.4)
    env.add(RATE, RATE)  # a clip from 1 s to 2 s
    g = env.gains(0, 3 * RATE)
    db = 20 * np.log10(g)
    assert db[: int(0.9 * RATE)].max() == pytest.approx(0.0, abs=1e-4)
    assert db[RATE:2 * RATE] == pytest.approx(-18.0, abs=0.01)
    assert db[int(0.99 * RATE)] == pytest.approx(-9.0, abs=0.5)  # half-way down the attack
    assert db[int(2.2 * RATE)] == pytest.approx(-9.0, abs=0.5)  # half-way up the release
    assert db[int(2.5 * RATE):].max() == pytest.approx(0.0, abs=1e-4)
    # Once past a span's release, it is forgotten (bounded state on long media).
    env.gains(3 * RATE, 4 * RATE)
    assert env.spans == []


def media_of(tmp_path, background: np.ndarray, channels: int = 2) -> MediaInfo:
    full = tmp_path / "full.wav"
    soundfile.write(str(full), background, RATE, subtype="FLOAT")
    return MediaInfo(path=full, duration=len(background) / RATE, has_video=False,
                     audio_streams=1, audio_codec="pcm_f32le", video_codec=None,
                     speech_audio=full, full_audio=full, sample_rate=RATE, channels=channels)


def segments_of(tmp_path, starts, seconds, level) -> list[Segment]:
    clip = tmp_path / "clip.wav"
    soundfile.write(str(clip), tone(seconds, level), RATE)
    return [Segment(id=i, start=s, end=s + seconds, target_text="x", slot_start=s,
                    slot_end=s + seconds, audio_path=str(clip)) for i, s in enumerate(starts)]


def ebur128(path, ctx):
    from videodub.builtin.mix_duck import measure_loudness

    return measure_loudness(["-i", str(path)], "[0:a]ebur128=peak=true:framelog=quiet[out]", ctx)


def streamed(tmp_path, background, segments, effort="low", channels=2, **options):
    from videodub.builtin.mix_duck import DuckMixer, DuckMixOptions
    from videodub.config import Effort

    ctx = JobContext(tmp_path / "run", "es", "en")
    opts = SimpleNamespace(**{**vars(DuckMixOptions()), **options}, effort=Effort(effort))
    out = DuckMixer(opts).mix(segments, media_of(tmp_path, background, channels), ctx)
    (note,) = [n for n in ctx.notes if n.startswith("mix: streamed")]
    return out, ebur128(out, ctx), note, ctx


@pytest.mark.parametrize("target", [-16.0, -23.0])
def test_a_streamed_mix_meets_its_target_under_the_ceiling(tmp_path, target):
    rng = np.random.default_rng(3)
    background = (0.02 * rng.standard_normal((40 * RATE, 2))).astype(np.float32)
    segs = segments_of(tmp_path, [1.0 + 3.5 * k for k in range(11)], 2.5, 0.3)
    out, level, note, _ = streamed(tmp_path, background, segs, loudness=target)
    assert soundfile.info(str(out)).frames == 40 * RATE
    assert level["I"] == pytest.approx(target, abs=1.0), note
    assert level["peak"] <= -1.5, note
    assert re.fullmatch(r"mix: streamed, gain [+-][\d.]+ dB then [+-][\d.]+ dB, speech peak "
                        r"-?[\d.]+ dBFS before gain, result -?[\d.]+ LUFS", note), note
    assert not list((tmp_path / "run" / "work").glob(".*part*"))


def test_a_mono_original_is_mixed_in_mono_and_measured_as_dual_mono(tmp_path):
    """A stereo background with one signal in both channels (``MediaInfo.channels`` 1): the
    track has one channel, at the target when measured as two loudspeakers play it, which
    is the same mix in stereo measured as stereo."""
    rng = np.random.default_rng(3)
    noise = (0.02 * rng.standard_normal(30 * RATE)).astype(np.float32)
    background = np.stack([noise, noise], axis=1)
    segs = segments_of(tmp_path, [1.0 + 3.5 * k for k in range(8)], 2.5, 0.3)
    out, _, note, ctx = streamed(tmp_path, background, segs, channels=1)
    assert soundfile.info(str(out)).channels == 1
    dual = measure_loudness(["-i", str(out)], "[0:a]ebur128=peak=true:dualmono=true:framelog=quiet[out]",
                            ctx)
    assert dual["I"] == pytest.approx(-16.0, abs=0.5), note
    plain = measure_loudness(["-i", str(out)], "[0:a]ebur128=peak=true:framelog=quiet[out]", ctx)
    assert plain["I"] == pytest.approx(dual["I"] - 3.0, abs=0.1)  # mono alone: 3 dB less
    stereo_out, stereo, _, _ = streamed(tmp_path / "stereo", background, segs, channels=2)
    assert soundfile.info(str(stereo_out)).channels == 2
    assert stereo["I"] == pytest.approx(dual["I"], abs=0.3)


def test_a_loud_mix_is_limited_and_high_effort_measures_the_true_peak(tmp_path):
    rng = np.random.default_rng(4)
    background = (0.3 * rng.standard_normal((20 * RATE, 2))).astype(np.float32)
    segs = segments_of(tmp_path, [1.0, 6.0, 11.0], 3.0, 0.95)
    out, level, note, _ = streamed(tmp_path, background, segs, effort="high", loudness=-8.0)
    assert " dBTP" in note
    assert level["peak"] <= -1.5, note


def test_the_background_is_ducked_under_speech(tmp_path):
    rng = np.random.default_rng(6)
    background = (0.05 * rng.standard_normal((12 * RATE, 2))).astype(np.float32)
    clip = tmp_path / "silent.wav"
    soundfile.write(str(clip), np.zeros(3 * RATE, np.float32), RATE)
    seg = Segment(id=0, start=4.0, end=7.0, target_text="x", slot_start=4.0, slot_end=7.0,
                  audio_path=str(clip))
    # Ducked, not removed (mix.original_voice=duck): removed, the noise under a dubbed line
    # is silence (test_mix_duck.py).
    out, _, _, _ = streamed(tmp_path, background, [seg], duck_db=-18.0, original_voice="duck")
    mixed, _ = soundfile.read(str(out), dtype="float64")

    def rms(a, b):
        return np.sqrt((mixed[int(a * RATE):int(b * RATE)] ** 2).mean())

    assert 20 * np.log10(rms(5.0, 6.5) / rms(0.5, 3.5)) == pytest.approx(-18.0, abs=0.5)
    assert 20 * np.log10(rms(8.0, 11.5) / rms(0.5, 3.5)) == pytest.approx(0.0, abs=0.5)


def test_audio_is_handed_on_while_clips_are_still_coming(tmp_path):
    rng = np.random.default_rng(8)
    media = media_of(tmp_path, (0.02 * rng.standard_normal((60 * RATE, 2))).astype(np.float32))
    ctx = JobContext(tmp_path / "run", "es", "en")
    options = StreamOptions(loudness=-16.0, true_peak=-1.5, background_db=-4.0, duck_db=-18.0,
                            attack_s=0.02, release_s=0.4, gain_lookahead_s=6.0)
    stream = StreamingMix(media.full_audio, tmp_path / "out.wav", options, ctx)
    try:
        for k in range(4):
            stream.add(tone(2.0, 0.3), 2.0 + 4.0 * k)
        assert stream.gain_db is not None and stream.held == [], "still holding everything"
        assert stream.done >= int(13.98 * RATE)  # finished up to the last clip's start
        assert len(stream.speech) <= 2 * RATE + 0.02 * RATE  # only the newest clip pending
        result = stream.close()
    finally:
        stream.abort()
    assert result["I"] == pytest.approx(-16.0, abs=1.0)


def test_cancelling_a_streamed_mix_kills_its_ffmpeg_and_leaves_no_file(tmp_path):
    rng = np.random.default_rng(9)
    media = media_of(tmp_path, (0.02 * rng.standard_normal((30 * RATE, 2))).astype(np.float32))
    ctx = JobContext(tmp_path / "run", "es", "en")
    options = StreamOptions(loudness=-16.0, true_peak=-1.5, background_db=-4.0, duck_db=-18.0,
                            attack_s=0.02, release_s=0.4, gain_lookahead_s=1.0)
    out = tmp_path / "out.wav"
    stream = StreamingMix(media.full_audio, out, options, ctx)
    proc = stream.proc
    try:
        stream.add(tone(2.0, 0.3), 2.0)
        ctx.cancel_event.set()
        with pytest.raises(Cancelled):
            stream.add(tone(2.0, 0.3), 20.0)
    finally:
        stream.abort()
    assert proc.poll() is not None
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_a_silent_mix_gets_no_gain(tmp_path):
    background = np.zeros((6 * RATE, 2), np.float32)
    segs = segments_of(tmp_path, [2.0], 2.0, 0.0)
    _, level, note, _ = streamed(tmp_path, background, segs)
    assert "gain +0.0 dB then +0.0 dB" in note
    assert level["I"] == -70.0


def clip_segments(tmp_path, n):
    segs = []
    for i in range(n):
        path = tmp_path / f"c{i}.wav"
        soundfile.write(str(path), tone(0.2 + 0.05 * i, 0.1), RATE)
        segs.append(Segment(id=i, start=float(i), end=i + 0.5, target_text="x", slot_start=float(i),
                            slot_end=i + 0.5, audio_path=str(path)))
    return segs


def test_clips_are_prepared_by_a_pool_and_handed_on_in_order(tmp_path):
    from videodub.placement import ClipPlacer, placed

    segs = clip_segments(tmp_path, 12)
    out = list(placed(iter(segs), RATE, JobContext(tmp_path / "run", "es", "en"),
                      ClipPlacer(100.0)))
    assert [s.id for s, _, _ in out] == list(range(12))
    assert [len(a) for _, a, _ in out] == [int((0.2 + 0.05 * i) * RATE) for i in range(12)]
    assert [start for _, _, start in out] == [float(i) for i in range(12)]


def test_a_clip_is_handed_on_before_the_next_one_arrives(tmp_path):
    from videodub.placement import ClipPlacer, placed

    first, second = clip_segments(tmp_path, 2)
    release = threading.Event()
    in_time = []

    def upstream():
        yield first
        # The next clip comes only once the first has been received (a mixer that held the
        # first back until the second arrived would leave this waiting in vain).
        in_time.append(release.wait(30))
        yield second

    got = []
    for seg, _, _ in placed(upstream(), RATE, JobContext(tmp_path / "run", "es", "en"),
                            ClipPlacer(100.0)):
        got.append(seg.id)
        release.set()
    assert got == [0, 1] and in_time == [True]


def test_an_upstream_failure_reaches_the_mixer(tmp_path):
    from videodub.placement import ClipPlacer, placed

    (seg,) = clip_segments(tmp_path, 1)

    def upstream():
        yield seg
        raise Cancelled()

    with pytest.raises(Cancelled):
        list(placed(upstream(), RATE, JobContext(tmp_path / "run", "es", "en"),
                    ClipPlacer(100.0)))
