"""ingest's in-process decode (``videodub.extract``) against the ffmpeg command it stands in
for: the same samples and lengths over the containers and sample formats users bring, the
decoder's padding dropped only where the container declares an exact duration, damaged
packets skipped, and a full disk or an undecodable file reported as one line or handed back
to the ffmpeg command before anything is written."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from videodub import extract
from videodub.builtin import ingest_local
from videodub.builtin.ingest_local import LocalIngester, LocalIngestOptions
from videodub.config import implementation_config
from videodub.errors import VideodubError
from videodub.extract import Unsupported, WavOut, decode_to_wavs
from videodub.media import ffmpeg_exe, probe
from videodub.model import JobContext
from videodub.wav import WavWriter

OUTPUTS = ((16000, 1), (48000, 2))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """6.3 s of stereo at 44.1 kHz, a different tone in each channel, with pauses."""
    path = tmp_path_factory.mktemp("extract") / "source.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "sine=f=440:d=6.3:sample_rate=44100", "-f", "lavfi", "-i",
                    "sine=f=660:d=6.3:sample_rate=44100", "-filter_complex",
                    "[0][1]amerge=inputs=2,volume='if(lt(mod(t,2),1.5),1,0)':eval=frame",
                    str(path)], check=True, capture_output=True, timeout=60)
    return path


def encoded(source: Path, folder: Path, name: str, *args: str) -> Path:
    path = folder / name
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), *args, str(path)],
                   check=True, capture_output=True, timeout=60)
    return path


def by_ffmpeg(path: Path, folder: Path, rate: int, channels: int) -> np.ndarray:
    out = folder / f"ffmpeg-{rate}-{channels}.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(path), "-map", "0:a:0",
                    "-ac", str(channels), "-ar", str(rate), "-c:a", "pcm_s16le", str(out)],
                   check=True, capture_output=True, timeout=60)
    return soundfile.read(str(out), dtype="int16")[0]


def decoded(path: Path, folder: Path) -> tuple[list[np.ndarray], int]:
    outs = [WavOut(folder / f"ours-{rate}-{ch}.wav", rate, ch) for rate, ch in OUTPUTS]
    skipped = decode_to_wavs(path, outs, "extracting audio").skipped
    return [soundfile.read(str(o.path), dtype="int16")[0] for o in outs], skipped


@pytest.mark.parametrize("name,args", [
    ("aac.mp4", ["-c:a", "aac"]),  # the usual video's audio; its last frame padded
    ("aac51.m4a", ["-af", "pan=5.1|FL=c0|FR=c1|FC=0.5*c0+0.5*c1|LFE=0.1*c0|BL=c0|BR=c1",
                   "-c:a", "aac"]),  # downmixed from 5.1 as ffmpeg does
    ("vbr.mp3", ["-c:a", "libmp3lame", "-q:a", "4", "-write_xing", "0"]),
    ("flac.mkv", ["-c:a", "flac"]),
    ("u8.wav", ["-c:a", "pcm_u8"]),  # packed integer samples
    ("f64.wav", ["-c:a", "pcm_f64le"]),
    ("s32.wav", ["-c:a", "pcm_s32le"]),  # packed 32-bit integers
    ("alac.m4a", ["-c:a", "alac"]),  # planar integers (s16p): one plane a channel
    ("mono8k.wav", ["-ac", "1", "-ar", "8000"]),
])
def test_the_samples_are_the_ffmpeg_commands(source, tmp_path, name, args):
    path = encoded(source, tmp_path, name, *args)
    ours, skipped = decoded(path, tmp_path)
    assert skipped == 0
    for got, (rate, channels) in zip(ours, OUTPUTS):
        want = by_ffmpeg(path, tmp_path, rate, channels)
        assert got.shape == want.shape, (name, rate)
        # The same decoder and resampler: equal to a rounding step (8-bit input: two).
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 2, (name, rate)


def test_an_estimated_duration_drops_nothing(tmp_path):
    """Raw AAC declares a duration estimated from its bit rate; on a steady tone the estimate
    falls a few hundred samples short of what decodes, as MP4's declared padding would.
    Those samples are audio here, and ffmpeg keeps them too."""
    tone = tmp_path / "tone.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "sine=f=300:d=6.3:sample_rate=44100", str(tone)], check=True,
                   capture_output=True, timeout=60)
    path = encoded(tone, tmp_path, "tone.aac", "-c:a", "aac")
    ours, _ = decoded(path, tmp_path)
    for got, (rate, channels) in zip(ours, OUTPUTS):
        assert got.shape == by_ffmpeg(path, tmp_path, rate, channels).shape
        assert len(got) > round(6.3 * rate)  # past the declared length: kept


def test_the_padding_is_dropped_whatever_the_block_size(source, tmp_path, monkeypatch):
    path = encoded(source, tmp_path, "talk.mp4", "-c:a", "aac")
    # Every remainder a stream can end on after the last block, in 1024-sample frames.
    for block in range(1024, 60000, 1024):
        monkeypatch.setattr(extract, "BLOCK_SAMPLES", block)
        ours, _ = decoded(path, tmp_path)
        assert [len(a) for a in ours] == [round(6.3 * rate) for rate, _ in OUTPUTS], block


def test_the_wavs_are_whole_files_with_their_header(source, tmp_path):
    path = encoded(source, tmp_path, "talk.mp4", "-c:a", "aac")
    decoded(path, tmp_path)
    for rate, channels in OUTPUTS:
        info = soundfile.info(str(tmp_path / f"ours-{rate}-{channels}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (rate, channels, "PCM_16")
        assert info.frames == round(6.3 * rate)  # the declared 6.3 s, padding dropped


def test_damaged_packets_are_skipped_and_counted(source, tmp_path):
    path = encoded(source, tmp_path, "talk.mp4", "-c:a", "aac")
    data = bytearray(path.read_bytes())
    middle = data.find(b"mdat") + (len(data) - data.find(b"mdat")) // 2
    data[middle:middle + 2048] = np.random.default_rng(5).integers(0, 256, 2048,
                                                                   dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    (speech, full), skipped = decoded(path, tmp_path)
    assert skipped > 0
    whole, _ = decoded(encoded(source, tmp_path, "whole.mp4", "-c:a", "aac"), tmp_path)
    # What the damage took is silence, and the audio after it stays in its place: the same
    # length as the undamaged file (to a frame: its last frame's padding is not told from
    # audio once packets are missing), the same samples at the end.
    assert abs(len(speech) - len(whole[0])) <= 1024 * 16000 // 44100 + 1
    n = int(6.2 * 16000)
    lost = np.flatnonzero(np.abs(speech[:n].astype(int) - whole[0][:n].astype(int)) > 1)
    assert 0 < (lost[-1] - lost[0]) / 16000 < 0.25  # only around the damaged packets
    assert np.count_nonzero(speech[lost[0]:lost[-1] + 1] == 0) >= 0.1 * 16000  # silence
    tail = slice(int(5.5 * 16000), n)
    assert np.abs(speech[tail].astype(int) - whole[0][tail].astype(int)).max() <= 1


def test_a_file_that_is_not_media_is_handed_back_before_anything_is_written(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    outs = [WavOut(tmp_path / "s.wav", 16000, 1)]
    with pytest.raises(Unsupported):
        decode_to_wavs(path, outs, "extracting audio")
    assert not outs[0].path.exists()


def test_a_full_disk_is_one_line_naming_the_folder(source, tmp_path, monkeypatch):
    path = encoded(source, tmp_path, "talk.mp4", "-c:a", "aac")

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(WavWriter, "write", full)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(VideodubError) as err:
        decode_to_wavs(path, [WavOut(work / "s.wav", 16000, 1)], "extracting audio")
    message = str(err.value)
    assert message.startswith(f"no space left on {work} while extracting audio")
    assert "\n" not in message


def starting_late(source: Path, folder: Path, delay: float = 1.5) -> Path:
    """``source`` as the audio of a Matroska video, starting ``delay`` s into its picture."""
    path = folder / "late.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=black:s=32x32:r=10:d=8", "-itsoffset", str(delay), "-i",
                    str(source), "-map", "0:v", "-map", "1:a", "-c:v", "mpeg4", "-c:a", "flac",
                    str(path)], check=True, capture_output=True, timeout=60)
    return path


def with_a_hole(source: Path, folder: Path) -> Path:
    """``source`` in Matroska with the audio from about 2 s to 3 s left out and the
    timestamps kept: a gap, as dropped audio leaves in a recording."""
    path = folder / "hole.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-af",
                    "aselect='not(between(t,2,3))'", "-c:a", "flac", str(path)],
                   check=True, capture_output=True, timeout=60)
    return path


def first_loud(audio: np.ndarray, rate: int, after: float = 0.0) -> float:
    """Seconds to the first sample louder than -20 dBFS at or after ``after``."""
    mono = np.abs(audio.astype(np.float32).reshape(len(audio), -1)).max(axis=1) / 32768
    start = int(after * rate)
    return (start + int(np.flatnonzero(mono[start:] > 0.1)[0])) / rate


def test_audio_that_starts_late_is_preceded_by_silence(source, tmp_path):
    """A muxer copying the picture starts it at the container's start: the dub's audio must
    start there too, or every line plays 1.5 s early."""
    reference, _ = decoded(encoded(source, tmp_path, "ref.mkv", "-c:a", "flac"), tmp_path)
    late, _ = decoded(starting_late(source, tmp_path), tmp_path)
    edge = 16  # the resampler's filter reaches this far either side of the abrupt start
    for got, want, (rate, _) in zip(late, reference, OUTPUTS):
        pad = round(1.5 * rate)
        assert len(got) == pad + len(want), rate
        assert not got[:pad - edge].any()
        assert np.abs(got[pad + edge:].astype(int) - want[edge:].astype(int)).max() <= 1, rate


def test_a_gap_in_the_timestamps_is_filled_with_silence(source, tmp_path):
    """Lines after dropped audio stay where the picture has them."""
    reference, _ = decoded(encoded(source, tmp_path, "ref.mkv", "-c:a", "flac"), tmp_path)
    holed, _ = decoded(with_a_hole(source, tmp_path), tmp_path)
    for got, want, (rate, _) in zip(holed, reference, OUTPUTS):
        assert abs(len(got) - len(want)) <= rate // 1000, rate
        assert not got[int(2.1 * rate):int(2.9 * rate)].any()  # the hole, silent
        # The tone comes back after the source's pause (at 4 s) where it does in the source,
        # not a second early.
        assert abs(first_loud(got, rate, after=3.6) - first_loud(want, rate, after=3.6)) <= 0.002


def test_files_joined_end_to_end_keep_all_their_audio(source, tmp_path):
    """Two MPEG-TS recordings joined byte for byte: the second one's timestamps start anew.
    That is a reset, not 6 s of audio given twice: both halves are kept, as ffmpeg keeps
    them (before the reset was stepped over, the second half was dropped as overlap)."""
    one = encoded(source, tmp_path, "one.ts", "-c:a", "aac")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(one.read_bytes() * 2)
    outs = [WavOut(tmp_path / "joined.wav", 16000, 1)]
    result = decode_to_wavs(joined, outs, "extracting audio")
    assert result.resets == 1 and result.gaps == 0
    ours = soundfile.read(str(outs[0].path), dtype="int16")[0]
    want = by_ffmpeg(joined, tmp_path, 16000, 1)
    assert abs(len(ours) - len(want)) <= 16 and len(ours) > 2 * 6.2 * 16000
    ctx = JobContext(tmp_path / "run", "es", "en")
    media = LocalIngester(implementation_config("ingest", "local", LocalIngestOptions)()).ingest(
        joined, ctx)
    assert any("start anew 1 time(s)" in n for n in ctx.notes), ctx.notes
    # The container tells only the last part's length; the job's timeline is the audio's
    # (the dub's later lines were piled up at the "end" otherwise: onsets 1.3 s early).
    assert probe(joined)["duration"] < 0.6 * len(ours) / 16000
    assert abs(media.duration - len(ours) / 16000) < 0.05
    assert any("says it lasts" in n and "the dub follows the audio" in n for n in ctx.notes)


def test_ingest_says_how_it_laid_the_audio(source, tmp_path):
    """A late start (known from the probe, and part of the transcript's cache key) and the
    gaps filled are in the run's notes."""
    options = implementation_config("ingest", "local", LocalIngestOptions)()
    late_ctx = JobContext(tmp_path / "late", "es", "en")
    media = LocalIngester(options).ingest(starting_late(source, tmp_path), late_ctx)
    assert media.extra["audio_delay_s"] == 1.5
    assert any("starts 1.50 s after its picture" in n for n in late_ctx.notes)
    hole_ctx = JobContext(tmp_path / "hole", "es", "en")
    media = LocalIngester(options).ingest(with_a_hole(source, tmp_path), hole_ctx)
    assert "audio_delay_s" not in media.extra
    (note,) = [n for n in hole_ctx.notes if "gap(s)" in n]
    filled = float(note.split(": ")[2].split(" s")[0])
    assert note.startswith("ingest: 1 gap(s)") and 0.9 <= filled <= 1.1, note


@pytest.mark.parametrize("make", ["aac.mp4", "late.mkv", "hole.mkv"])
def test_ingest_falls_back_to_the_ffmpeg_command(source, tmp_path, monkeypatch, make):
    """A stream the in-process decode cannot set up is extracted by ffmpeg, to the same
    files (on the same timeline: a late start and a gap filled alike); the speech is handed
    on as it is written either way."""
    path = {"aac.mp4": lambda: encoded(source, tmp_path, "talk.mp4", "-c:a", "aac"),
            "late.mkv": lambda: starting_late(source, tmp_path),
            "hole.mkv": lambda: with_a_hole(source, tmp_path)}[make]()
    options = implementation_config("ingest", "local", LocalIngestOptions)()
    results = {}
    for way in ("in-process", "ffmpeg"):
        if way == "ffmpeg":
            def unsupported(*args, **kwargs):
                raise Unsupported("no decoder")
            monkeypatch.setattr(ingest_local, "decode_to_wavs", unsupported)
        ctx = JobContext(tmp_path / way, "es", "en")
        started = []
        ctx.speech_started = started.append
        media = LocalIngester(options).ingest(path, ctx)
        assert started and started[0].extra["speech_growing"].done.is_set()
        results[way] = [soundfile.read(str(p), dtype="int16")[0]
                        for p in (media.speech_audio, media.full_audio)]
    for ours, theirs in zip(results["in-process"], results["ffmpeg"]):
        assert ours.shape == theirs.shape
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


def test_blocks_do_not_change_the_samples(source, tmp_path, monkeypatch):
    """Resampled a block at a time: small blocks give the same samples as large ones."""
    path = encoded(source, tmp_path, "talk.mp4", "-c:a", "aac")
    large, _ = decoded(path, tmp_path)
    monkeypatch.setattr(extract, "BLOCK_SAMPLES", 3000)
    small, _ = decoded(path, tmp_path)
    for a, b in zip(large, small):
        assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_the_timeline_pads_late_starts_and_gaps_and_drops_overlaps():
    """``Timeline`` alone, on frames of 1000 samples at 1 kHz (one second each)."""
    from fractions import Fraction
    from types import SimpleNamespace

    from videodub.extract import Timeline

    def frame(pts_ms: int | None):
        return SimpleNamespace(pts=pts_ms, time_base=Fraction(1, 1000), sample_rate=1000)

    def laid(timeline: Timeline, pts_ms: int | None) -> list[int]:
        """The lengths of what one frame becomes: [silence, samples] or [samples]."""
        return [p.shape[1] for p in timeline.place(frame(pts_ms), np.ones((2, 1000), np.float32))]

    t = Timeline(origin_s=10.0)  # the picture starts at 10 s; the audio 10.002 s
    assert laid(t, 10_002) == [2, 1000]  # any delay at the start
    assert laid(t, 11_002 + 40) == [1000]  # 40 ms of timestamp jitter: left alone
    assert laid(t, 12_002 + 500) == [500, 1000]  # a gap of 500 ms: silence
    assert laid(t, 13_502 - 300) == [700]  # 300 ms of overlap: dropped
    assert laid(t, None) == [1000]  # no timestamp: after the rest
    assert t.at == pytest.approx(5.202)
    assert laid(Timeline(0.0), -5) == [1000]  # a priming frame just before the start: kept
    # Resets: back by more than a second, or (MPEG-TS) back at all or 10 s forward.
    t = Timeline(0.0)
    assert laid(t, 0) == [1000]
    assert laid(t, 1000 - 5000) == [1000] and laid(t, -3000) == [1000]  # counted from there
    assert laid(t, -2000 + 19_000) == [19_000, 1000]  # a 19 s gap: filled
    ts = Timeline(0.0, discontinuous=True)
    assert laid(ts, 0) == [1000]
    assert laid(ts, 1000 + 20_000) == [1000]  # a jump, not 20 s of silence
    assert laid(ts, 22_000 - 300) == [1000]
    assert (t.resets, ts.resets) == (1, 2)
