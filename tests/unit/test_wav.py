"""WAVs past 4 GiB (``videodub.wav``): written as RF64, read back whole by libsndfile and by
ffmpeg's reader (PyAV), and followed while they grow. The limit is lowered here so that a few
seconds of audio cross it: what is checked is the header each size gets, which is what a
reader trusts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from videodub import wav
from videodub.audio import GrowingWav
from videodub.background import write_background
from videodub.media import ffmpeg_exe
from videodub.wav import FFMPEG_WAV, WavWriter, data_offset, wav_format

RATE = 16000


def tone(seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    waves = [np.sin(2 * np.pi * f * t) for f in (440, 660)[:channels]]
    return (np.stack(waves, axis=1) * 12000).astype("<i2")


def written(path: Path, samples: np.ndarray) -> Path:
    writer = WavWriter(path, RATE, samples.shape[1])
    for block in np.array_split(samples, 7):
        writer.write(block.tobytes())
    writer.close()
    return path


def by_pyav(path: Path) -> np.ndarray:
    """The samples as ffmpeg's WAV demuxer reads them (interleaved int16, frames x channels)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        parts = [f.to_ndarray().reshape(-1, stream.codec_context.channels)
                 for f in container.decode(stream)]
    return np.concatenate(parts)


@pytest.mark.parametrize("channels", [1, 2])
def test_under_the_limit_a_plain_riff_wav_that_every_reader_reads_whole(tmp_path, channels):
    samples = tone(2.5, channels)
    path = written(tmp_path / "a.wav", samples)
    head = path.read_bytes()[:16]
    assert head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    assert int.from_bytes(head[4:8], "little") == path.stat().st_size - 8
    read, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    assert rate == RATE and soundfile.info(str(path)).format == "WAV"
    np.testing.assert_array_equal(read, samples)
    np.testing.assert_array_equal(by_pyav(path), samples)


@pytest.mark.parametrize("channels", [1, 2])
def test_past_the_limit_rf64_with_the_real_sizes_in_its_ds64_chunk(tmp_path, monkeypatch,
                                                                   channels):
    monkeypatch.setattr(wav, "LIMIT", 10_000)  # bytes of samples
    samples = tone(2.5, channels)  # 80 000 or 160 000 bytes
    path = written(tmp_path / "a.wav", samples)
    head = path.read_bytes()[:wav.WavWriter.HEADER]
    assert head[:4] == b"RF64" and head[12:16] == b"ds64"
    # The 32-bit fields say "see ds64"; the readers must take the sizes from there.
    assert int.from_bytes(head[4:8], "little") == wav.RIFF_MAX
    assert int.from_bytes(head[-4:], "little") == wav.RIFF_MAX
    riff, data, frames = (int.from_bytes(head[at:at + 8], "little") for at in (20, 28, 36))
    size = path.stat().st_size
    assert (riff, data, frames) == (size - 8, size - wav.WavWriter.HEADER, len(samples))
    info = soundfile.info(str(path))
    assert (info.format, info.frames, info.channels) == ("RF64", len(samples), channels)
    np.testing.assert_array_equal(soundfile.read(str(path), dtype="int16", always_2d=True)[0],
                                  samples)
    np.testing.assert_array_equal(by_pyav(path), samples)
    assert data_offset(head) == wav.WavWriter.HEADER


def test_a_growing_file_is_followed_from_its_header_on(tmp_path):
    samples = tone(3.0, 1)
    path = tmp_path / "growing.wav"
    writer = WavWriter(path, RATE, 1)
    growing = GrowingWav(path, RATE)
    assert growing.available() == 0
    writer.write(samples[:RATE].tobytes())
    writer.file.flush()
    assert growing.available() == RATE
    first = growing.read(0, RATE)
    writer.write(samples[RATE:].tobytes())
    writer.close()
    growing.finish(ok=True)
    assert growing.available() == len(samples)
    whole = growing.read(0, len(samples))
    np.testing.assert_array_equal(first, whole[:RATE])
    np.testing.assert_allclose(whole, samples[:, 0] / 32768)


def test_the_ffmpeg_arguments_write_a_wav_the_growing_reader_follows(tmp_path):
    """ffmpeg's ``-rf64 auto`` reserves the ds64 room as a JUNK chunk: the samples start
    after it, and the reader finds them."""
    path = tmp_path / "ff.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    f"sine=f=440:d=1.5:sample_rate={RATE}", *FFMPEG_WAV, str(path)],
                   check=True, capture_output=True, timeout=60)
    head = path.read_bytes()[:4096]
    assert b"JUNK" in head[:64]
    at = data_offset(head)
    assert at is not None and head[at - 8:at - 4] == b"data"
    growing = GrowingWav(path, RATE)
    assert growing.available() == int(1.5 * RATE)
    np.testing.assert_allclose(growing.read(0, 100),
                               soundfile.read(str(path), dtype="float32", frames=100)[0])


def test_a_header_not_yet_written_has_no_data_offset():
    assert data_offset(b"") is None
    assert data_offset(b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0") is None
    assert data_offset(b"OggS" + bytes(60)) is None


def test_soundfile_writers_choose_rf64_past_the_limit(tmp_path, monkeypatch):
    """The background with the original voice taken out is float: a RIFF WAV of it holds
    3.1 hours of stereo. Past the limit it is RF64 and reads back whole."""
    assert wav_format(1000, 2, 4) == "WAV"
    assert wav_format(wav.LIMIT // 8 + 1, 2, 4) == "RF64"
    original = tmp_path / "original.wav"
    soundfile.write(str(original), tone(2.0, 2), RATE)
    monkeypatch.setattr(wav, "LIMIT", 50_000)
    out = write_background(original, tmp_path / "background.wav", [(0.5, 1.0)])
    info = soundfile.info(str(out))
    assert (info.format, info.frames, info.subtype) == ("RF64", 2 * RATE, "FLOAT")
    background = soundfile.read(str(out), dtype="float32")[0]
    assert np.abs(background[int(0.6 * RATE):int(0.9 * RATE)]).max() < 1e-6  # removed
    assert np.abs(background[int(1.5 * RATE):]).max() > 0.3  # kept to the end
