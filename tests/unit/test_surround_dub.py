"""A surround original dubbed in its own channels: ingest extracts them when the mixer asks,
the mix lays the dub in the centre and takes the voice out of it alone, the other channels
play on as they were, and loudness is weighed per channel as BS.1770 (and FFmpeg) do."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import soundfile

from helpers_surround import RATE, spoken, surround
from videodub.builtin.ingest_local import LocalIngester, LocalIngestOptions
from videodub.builtin.mix_duck import DuckMixer, DuckMixOptions
from videodub.builtin.mux_ffmpeg import FfmpegMuxer, FfmpegMuxOptions
from videodub.config import Effort, implementation_config
from videodub.loudness import ABSOLUTE_GATE, LoudnessMeter
from videodub.media import run_ffmpeg
from videodub.model import JobContext, MediaInfo, Segment


def ffmpeg_loudness(path: Path, raw_layout: str | None = None) -> float:
    """Integrated loudness by FFmpeg's ``ebur128`` (of raw float samples in ``raw_layout``)."""
    source = ["-f", "f32le", "-ar", str(RATE), "-ch_layout", raw_layout] if raw_layout else []
    log = run_ffmpeg(["-v", "info", "-nostats", *source, "-i", str(path), "-af",
                      "ebur128=framelog=quiet", "-f", "null", "-"])
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", log)[-1])


@pytest.mark.parametrize("layout, channels", [("5.1", 6), ("7.1", 8), ("5.1(side)", 6)])
def test_the_meter_weighs_a_surround_track_as_ffmpeg_does(tmp_path, layout, channels):
    """Noise at a different level in each channel: the streaming mix's meter agrees with
    FFmpeg's within 0.1 LU (the LFE left out, the surrounds at +1.5 dB); the LFE alone is
    silence to both."""
    rng = np.random.default_rng(7)
    levels = np.array([0.05, 0.03, 0.1, 0.3, 0.04, 0.02, 0.06, 0.01][:channels])
    noise = (rng.standard_normal((6 * RATE, channels)) * levels).astype(np.float32)
    lfe = np.zeros_like(noise)
    lfe[:, 3] = noise[:, 3]
    for signal, expect_silence in ((noise, False), (lfe, True)):
        meter = LoudnessMeter(RATE, channels, layout)
        for at in range(0, len(signal), RATE // 3):
            meter.add(signal[at:at + RATE // 3])
        raw = tmp_path / "raw.f32"
        raw.write_bytes(signal.astype("<f4").tobytes())
        if expect_silence:
            assert meter.integrated() == ABSOLUTE_GATE
        else:
            assert abs(meter.integrated() - ffmpeg_loudness(raw, layout)) < 0.1
    # Unweighted, the same noise reads louder by the LFE's share: the weights are used.
    flat, weighted = LoudnessMeter(RATE, channels), LoudnessMeter(RATE, channels, layout)
    flat.add(noise)
    weighted.add(noise)
    assert flat.integrated() > weighted.integrated() + 1.0


def ingested(path: Path, tmp_path: Path, surround_dub: bool):
    ctx = JobContext(tmp_path / f"run-{path.stem}-{surround_dub}", "es", "en")
    ctx.surround = surround_dub
    options = implementation_config("ingest", "local", LocalIngestOptions)()
    return LocalIngester(options).ingest(path, ctx), ctx


@pytest.mark.parametrize("layout", ["5.1", "7.1"])
def test_ingest_keeps_the_original_channels_only_for_a_surround_dub(tmp_path, layout):
    voice = spoken(4.0)
    film = surround(tmp_path, f"film-{layout}.wav", voice, layout=layout)
    media, _ = ingested(film, tmp_path, True)
    assert media.surround_layout == layout and media.surround_audio is not None
    own = soundfile.read(str(media.surround_audio), dtype="float32")[0]
    assert own.shape == (soundfile.info(str(media.full_audio)).frames, {"5.1": 6, "7.1": 8}[layout])
    assert np.abs(own[:, 2] - voice).max() < 2 / 32768  # the centre as it was, 16-bit
    assert np.abs(own[:, 3]).max() == 0.0  # the silent LFE

    media, _ = ingested(film, tmp_path, False)  # a stereo dub: no more than before
    assert media.surround_audio is None and media.centre_audio is not None
    assert not (media.full_audio.parent / "surround.wav").exists()

    upmix = surround(tmp_path, f"upmix-{layout}.wav", voice, 0.5, layout=layout)
    media, ctx = ingested(upmix, tmp_path, True)
    assert media.surround_audio is None
    assert not (media.full_audio.parent / "surround.wav").exists()
    assert f"ingest: upmix-{layout}.wav is dubbed in its stereo downmix, not in {layout}: its " \
        "voice is not in its centre channel alone" in ctx.notes


def surround_mix(tmp_path: Path, seconds: float, starts: tuple[float, ...],
                 shared: list[tuple[float, float]] = (), encode_workers: int | None = None,
                 layout: str = "5.1"):
    """A 5.1 original as ingest hands it on for a surround dub: noise of 4-10 kHz in the
    front pair and the surrounds, a 1 kHz tone standing in for the voice in the centre, a
    50 Hz tone in the LFE; mixed under 1.5 s lines of 440 Hz at ``starts``, into a WAV, or
    the muxer's AAC on ``encode_workers``. Returns the mixed channels, the job's context
    and the output."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    rng = np.random.default_rng(3)
    spectrum = np.fft.rfft(rng.standard_normal((n, 4)), axis=0)
    f = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(f < 4000) | (f > 10000)] = 0  # within what AAC keeps at these bit rates
    hiss = np.fft.irfft(spectrum, n, axis=0) * 0.05
    voice = 0.1 * np.sin(2 * np.pi * 1000 * t)
    channels = np.stack([hiss[:, 0], hiss[:, 1], voice, 0.1 * np.sin(2 * np.pi * 50 * t),
                         hiss[:, 2], hiss[:, 3]]
                        + ([hiss[:, 3], hiss[:, 0]] if layout == "7.1" else []),
                        1).astype(np.float32)
    own, full, clip = tmp_path / "own.wav", tmp_path / "full.wav", tmp_path / "clip.wav"
    soundfile.write(str(own), channels, RATE, subtype="FLOAT")
    soundfile.write(str(full), channels[:, :2], RATE, subtype="FLOAT")  # not read here
    soundfile.write(str(clip), (0.3 * np.sin(2 * np.pi * 440 * t[:int(1.5 * RATE)])), RATE)
    media = MediaInfo(path=full, duration=seconds, has_video=False, audio_streams=1,
                      audio_codec="pcm_f32le", video_codec=None, speech_audio=full,
                      full_audio=full, sample_rate=RATE, centre_audio=full,
                      centre_shared=list(shared), surround_audio=own, surround_layout=layout)
    mixer = DuckMixer(SimpleNamespace(**{**vars(DuckMixOptions()), "streaming": True,
                                         "encode_workers": encode_workers or 0},
                                      effort=Effort.low))
    if encode_workers:
        muxer = FfmpegMuxer(SimpleNamespace(**vars(FfmpegMuxOptions()), effort=Effort.medium))
        mixer.encode_as(muxer.dub_encoding())
    assert mixer.keeps_surround()
    ctx = JobContext(tmp_path / f"run-{encode_workers}", "es", "en")
    segs = [Segment(id=i, start=a, end=a + 1.5, target_text="x", slot_start=a,
                    slot_end=a + 1.5, audio_path=str(clip)) for i, a in enumerate(starts)]
    out = mixer.mix(segs, media, ctx)
    if out.suffix == ".wav":
        return soundfile.read(str(out), dtype="float32")[0].T, ctx, out
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        assert (stream.layout.name, stream.channels) == (layout, channels.shape[1])
        resampler = av.AudioResampler(format="flt", layout=layout)  # packed: see planar_frame
        mixed = np.concatenate([np.frombuffer(part.planes[0], np.float32).reshape(-1, len(
            channels.T)).T for f in container.decode(stream) for part in resampler.resample(f)],
            axis=1)
    return mixed, ctx, out


def band_db(x: np.ndarray, a: float, b: float, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x[int(a * RATE):int(b * RATE)])) ** 2
    return 10 * np.log10(spectrum[int(lo * (b - a)):int(hi * (b - a))].mean() + 1e-30)


def test_a_surround_dub_lays_the_lines_in_the_centre_and_keeps_the_other_channels(tmp_path):
    mixed, ctx, out = surround_mix(tmp_path, 6.0, (2.0,))
    assert mixed.shape[0] == 6
    under, after = (2.2, 3.3), (4.4, 5.5)
    centre = mixed[2]
    assert band_db(centre, *under, 990, 1010) - band_db(centre, *after, 990, 1010) < -40
    assert band_db(centre, *under, 430, 450) - band_db(centre, *after, 430, 450) > 40
    for other in (0, 1, 4, 5):  # no dub there, and the music as it was
        assert band_db(mixed[other], *under, 430, 450) < band_db(centre, *under, 430, 450) - 60
        assert abs(band_db(mixed[other], *under, 4500, 9500)
                   - band_db(mixed[other], *after, 4500, 9500)) < 1.0
    assert abs(band_db(mixed[3], *under, 45, 55) - band_db(mixed[3], *after, 45, 55)) < 1.0
    assert abs(ffmpeg_loudness(out) - (-16.0)) <= 1.0
    assert "mix: dubbed in 5.1, the original's own channels: the dub in the centre, the " \
        "others as they are" in ctx.notes
    # The quality figures read what is left of the centre where the source spoke.
    assert ctx.artifacts["voice_in_centre"]
    left = ctx.artifacts["background_levels"].db
    assert left[int(2.2 / 0.01):int(3.3 / 0.01)].max() < -90
    assert left[int(4.4 / 0.01):int(5.5 / 0.01)].min() > -30


def test_a_surround_dub_takes_everything_out_under_a_line_where_the_voice_is_shared(tmp_path):
    mixed, _, _ = surround_mix(tmp_path, 8.0, (1.0, 5.0), shared=[(4.0, 8.0)])
    between = (3.0, 3.9)
    for other in (0, 1, 4, 5):
        hiss = band_db(mixed[other], *between, 4500, 9500)
        assert abs(band_db(mixed[other], 1.2, 2.3, 4500, 9500) - hiss) < 1.0  # alone: stays
        assert band_db(mixed[other], 5.2, 6.3, 4500, 9500) - hiss < -40  # shared: goes
    for a, b in ((1.2, 2.3), (5.2, 6.3)):
        assert band_db(mixed[2], a, b, 990, 1010) - band_db(mixed[2], *between, 990, 1010) < -40


@pytest.mark.parametrize("layout", ["5.1", "7.1"])
@pytest.mark.parametrize("workers", [1, 2], ids=["one-encoder", "stretches"])
def test_a_surround_dub_is_encoded_in_its_layout(tmp_path, workers, layout):
    """The muxer's AAC in 5.1 or 7.1, by one ffmpeg or in stretches on two threads, at the
    bit rate for its full-range channels (80k each at medium effort), the LFE kept."""
    mixed, _, out = surround_mix(tmp_path, 6.0, (2.0,), encode_workers=workers, layout=layout)
    full_range = {"5.1": 5, "7.1": 7}[layout]
    with av.open(str(out)) as container:
        assert abs(container.streams.audio[0].bit_rate - 80_000 * full_range) < 60_000
    centre = mixed[2]
    assert band_db(centre, 2.2, 3.3, 430, 450) - band_db(mixed[0], 2.2, 3.3, 430, 450) > 40
    assert abs(band_db(mixed[3], 2.2, 3.3, 45, 55) - band_db(mixed[3], 4.4, 5.5, 45, 55)) < 1.0
    assert abs(ffmpeg_loudness(out) - (-16.0)) <= 1.0


@pytest.mark.parametrize("change", [{"surround": False}, {"streaming": False},
                                    {"original_voice": "duck"},
                                    {"original_voice": "separate"}])
def test_a_mix_that_cannot_keep_the_channels_does_not_ask_for_them(change):
    options = SimpleNamespace(**{**vars(DuckMixOptions()), **change}, effort=Effort.low)
    assert not DuckMixer(options).keeps_surround()
    assert DuckMixer(SimpleNamespace(**vars(DuckMixOptions()), effort=Effort.low)
                     ).keeps_surround()


def test_a_muxer_that_takes_no_surround_dub_gets_a_stereo_one():
    from dataclasses import replace

    mixer = DuckMixer(SimpleNamespace(**vars(DuckMixOptions()), effort=Effort.low))
    encoding = FfmpegMuxer(SimpleNamespace(**vars(FfmpegMuxOptions()),
                                           effort=Effort.medium)).dub_encoding()
    mixer.encode_as(replace(encoding, surround_bit_rate=None))
    assert not mixer.keeps_surround()
    assert encoding.args_for(6, 1)[encoding.args.index("-b:a") + 1] == "400000"
    assert encoding.args_for(2) == encoding.args
