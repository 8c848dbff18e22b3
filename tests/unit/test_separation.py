"""videodub.separation and mix.original_voice=separate, run for real on tiny ONNX models of
the MDX-Net interface built here (a real model cannot be fetched in the tests)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from videodub.errors import VideodubError
from videodub.separation import MdxShape, Separator, fetch_model, istft, separate_background, stft
from videodub.testing.separation import tiny_model

SHAPE = MdxShape()


def test_the_stft_round_trip_is_exact():
    x = np.random.default_rng(0).standard_normal(50000)
    back = istft(stft(x, SHAPE), SHAPE, len(x))
    assert np.max(np.abs(back - x)) < 1e-6


def test_an_identity_model_gives_the_whole_mix_back_as_voice(tmp_path):
    sep = Separator(tiny_model(tmp_path / "id.onnx", 1.0))
    stereo = 0.1 * np.random.default_rng(1).standard_normal((2, 300000))  # > one chunk
    voice = sep.vocals(stereo)
    assert voice.shape == stereo.shape
    # Only the top bin (above dim_f, ~22 kHz) is lost.
    err = np.sqrt(np.mean((voice - stereo) ** 2)) / np.sqrt(np.mean(stereo ** 2))
    assert err < 0.02


def test_a_model_of_another_interface_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 100])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 100])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "wave.onnx"))
    with pytest.raises(VideodubError, match="not an MDX-Net spectrogram"):
        Separator(tmp_path / "wave.onnx")


def test_the_background_is_the_original_minus_the_voice(tmp_path):
    rate = 48000
    t = np.arange(3 * rate) / rate
    # Tones within the model's band (it runs at 44.1 kHz: nothing above 22 kHz comes back).
    left = sum(0.05 * np.sin(2 * np.pi * f * t) for f in (110, 440, 2500, 9000))
    audio = np.stack([left, left[::-1]], axis=1).astype(np.float32)
    src = tmp_path / "orig.wav"
    soundfile.write(str(src), audio, rate, subtype="FLOAT")
    kept = separate_background(src, tmp_path / "kept.wav", tiny_model(tmp_path / "z.onnx", 0.0))
    gone = separate_background(src, tmp_path / "gone.wav", tiny_model(tmp_path / "i.onnx", 1.0))
    kept_audio, r = soundfile.read(str(kept), dtype="float32", always_2d=True)
    assert r == rate and kept_audio.shape == audio.shape
    assert np.allclose(kept_audio, audio, atol=1e-6)
    gone_audio, _ = soundfile.read(str(gone), dtype="float32", always_2d=True)
    assert np.sqrt(np.mean(gone_audio ** 2)) < 0.1 * np.sqrt(np.mean(audio ** 2))


def test_a_cached_model_is_checked_and_a_fetched_one_too(tmp_path):
    model = tiny_model(tmp_path / "m.onnx", 0.5)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    url = model.as_uri()  # file:// goes through the same fetch path as https://
    fetched = fetch_model(url, digest, cache)
    assert fetched == cache / "models" / "m.onnx" and fetched.read_bytes() == model.read_bytes()
    with pytest.raises(VideodubError, match="does not match mix.separator_sha256"):
        fetch_model(url, "0" * 64, cache)
    other = tmp_path / "cache2"
    with pytest.raises(VideodubError, match="does not match"):
        fetch_model(url, "0" * 64, other)
    assert not any((other / "models").iterdir()), "nothing half-fetched is left"


def test_offline_it_is_one_line_naming_the_command_that_fetches_ahead(tmp_path):
    url = "http://127.0.0.1:9/models/mdx.onnx"  # the discard port: nothing listens
    with pytest.raises(VideodubError) as err:
        fetch_model(url, "", tmp_path)
    assert "\n" not in str(err.value)
    assert "python -m videodub.separation fetch --url " + url in str(err.value)
    with pytest.raises(VideodubError, match="is not in"):
        fetch_model(url, "", tmp_path, download=False)
    assert not (tmp_path / "models" / "mdx.onnx").exists()


def test_the_fetch_command(tmp_path, capsys):
    from videodub.separation import main

    model = tiny_model(tmp_path / "m.onnx", 0.5)
    assert main(["fetch", "--url", model.as_uri(), "--cache", str(tmp_path / "c")]) == 0
    assert "sha256=" + hashlib.sha256(model.read_bytes()).hexdigest() in capsys.readouterr().out
    assert main(["fetch", "--url", "http://127.0.0.1:9/x.onnx", "--cache", str(tmp_path)]) == 1
    assert capsys.readouterr().out.startswith("error: could not fetch")


def band_level(audio: np.ndarray, rate: int, freq: float) -> float:
    """Level (dB) of the ``freq`` component of mono ``audio``."""
    t = np.arange(len(audio)) / rate
    ref = np.exp(-2j * np.pi * freq * t)
    return 20 * np.log10(abs(np.mean(audio * ref)) + 1e-12)


@pytest.mark.parametrize("mode, kept_within_db", [("separate", 2.0), ("duck", None)])
def test_a_separated_background_keeps_its_level_under_the_dub(tmp_path, mode, kept_within_db):
    from videodub.builtin.mix_duck import DuckMixer, DuckMixOptions
    from videodub.config import Effort
    from videodub.model import JobContext, MediaInfo, Segment

    rate = 48000
    t = np.arange(8 * rate) / rate
    hum = (0.05 * np.sin(2 * np.pi * 110 * t)).astype(np.float32)
    full = tmp_path / "full.wav"
    soundfile.write(str(full), np.stack([hum, hum], axis=1), rate, subtype="FLOAT")
    clip = tmp_path / "clip.wav"
    soundfile.write(str(clip), (0.3 * np.sin(2 * np.pi * 1000 * t[: 3 * rate])).astype(np.float32),
                    rate)
    media = MediaInfo(path=full, duration=8.0, has_video=False, audio_streams=1,
                      audio_codec="pcm_f32le", video_codec=None, speech_audio=full,
                      full_audio=full, sample_rate=rate)
    options = SimpleNamespace(**{**vars(DuckMixOptions()), "original_voice": mode,
                                 "separator_model": str(tiny_model(tmp_path / "z.onnx", 0.0))},
                              effort=Effort.low)
    ctx = JobContext(tmp_path / "run", "es", "en")
    seg = Segment(id=0, start=3.0, end=6.0, target_text="x", slot_start=3.0, slot_end=6.0,
                  audio_path=str(clip))
    out = DuckMixer(options).mix([seg], media, ctx)
    mixed, _ = soundfile.read(str(out), dtype="float64", always_2d=True)
    mono = mixed.mean(axis=1)
    under = band_level(mono[int(3.5 * rate): int(5.5 * rate)], rate, 110)
    before = band_level(mono[int(0.5 * rate): int(2.5 * rate)], rate, 110)
    if kept_within_db is not None:
        assert abs(under - before) <= kept_within_db, (under, before)
        assert any("separated out" in n for n in ctx.notes)
    else:  # ducking lowers it a lot: the test can tell the two apart
        assert under < before - 6, (under, before)


@pytest.mark.parametrize("up, down", [(147, 160), (160, 147), (2, 1)])
def test_resampling_in_pieces_gives_the_samples_of_the_whole(up, down):
    from scipy.signal import resample_poly

    from videodub.separation import BlockResampler

    x = np.random.default_rng(2).standard_normal((2, 50_011))
    whole = resample_poly(x, up, down, axis=1)
    stream, at, parts = BlockResampler(up, down), 0, []
    for size in [1, 7000, 333, 12_345, 160, 0, 20_000]:
        parts.append(stream.push(x[:, at:at + size]))
        at += size
    parts.append(stream.push(x[:, at:], last=True))
    pieces = np.concatenate(parts, axis=1)
    assert pieces.shape == whole.shape
    assert np.abs(pieces - whole).max() < 1e-12


@pytest.mark.parametrize("chunks", [2.0, 2.37])  # a whole number of chunks, and not
def test_the_voice_in_pieces_is_the_voice_of_the_whole(tmp_path, chunks):
    from videodub.separation import VoiceStream

    sep = Separator(tiny_model(tmp_path / "half.onnx", 0.5))
    stream = VoiceStream(sep)
    n = int(chunks * stream.gen)
    x = 0.1 * np.random.default_rng(3).standard_normal((2, n))
    # The whole signal as the model sees it: silence before, and after up to whole chunks.
    pad = stream.gen - n % stream.gen
    padded = np.concatenate([np.zeros((2, stream.trim)), x, np.zeros((2, pad + stream.trim))],
                            axis=1)
    whole = np.concatenate([sep.chunk(padded[:, i:i + stream.chunk])
                            for i in range(0, n + pad, stream.gen)], axis=1)[:, :n]
    parts = [stream.push(x[:, i:i + 100_000]) for i in range(0, n, 100_000)]
    pieces = np.concatenate([*parts, stream.push(np.zeros((2, 0)), last=True)], axis=1)
    assert pieces.shape == x.shape
    assert np.abs(pieces - whole).max() < 1e-12


@pytest.mark.parametrize("channels", [2, 1])
def test_a_long_original_is_separated_a_block_at_a_time(tmp_path, monkeypatch, channels):
    """Read in blocks (so memory does not grow with the length: 5 minutes of stereo took 1.3
    GB at once), the background is what the whole file at once gives."""
    import math

    from scipy.signal import resample_poly

    from videodub import separation

    rate = 48000
    audio = 0.1 * np.random.default_rng(4).standard_normal((20 * rate + 123, channels))
    src = tmp_path / "orig.wav"
    soundfile.write(str(src), audio.astype(np.float32), rate, subtype="FLOAT")
    model = tiny_model(tmp_path / "half.onnx", 0.5)
    monkeypatch.setattr(separation, "BLOCK", 50_000)
    out = separate_background(src, tmp_path / "bg.wav", model)
    got = soundfile.read(str(out), dtype="float64", always_2d=True)[0]
    stereo = soundfile.read(str(src), dtype="float64", always_2d=True)[0].T
    stereo = stereo if channels == 2 else np.repeat(stereo, 2, axis=0)
    sep = Separator(model)
    g = math.gcd(rate, sep.shape.rate)
    voice = resample_poly(sep.vocals(resample_poly(stereo, sep.shape.rate // g, rate // g,
                                                   axis=1)),
                          rate // g, sep.shape.rate // g, axis=1)[:, :stereo.shape[1]]
    voice = np.pad(voice, ((0, 0), (0, stereo.shape[1] - voice.shape[1])))
    background = stereo - voice
    want = (background if channels == 2 else background.mean(axis=0, keepdims=True)).T
    want = want.astype(np.float32)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-6
