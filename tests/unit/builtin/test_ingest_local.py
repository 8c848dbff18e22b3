"""ingest=local on real files: ``validation=full`` decodes every packet and refuses a file
that is damaged inside its media data, which ``quick`` lets through; the check before any
work refuses a run folder without room for the run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import Talk

from videodub.builtin import ingest_local
from videodub.builtin.ingest_local import LocalIngester, LocalIngestOptions
from videodub.config import Validation, implementation_config
from videodub.errors import VideodubError
from videodub.model import JobContext
from videodub.tracks import pick_audio_track

IngestConfig = implementation_config("ingest", "local", LocalIngestOptions)


def corrupt_copy(source: Path, target: Path) -> Path:
    """``source`` with 4 KiB of noise written over the middle of its media data: the headers
    and the index stay intact, so a probe still reads it."""
    data = bytearray(source.read_bytes())
    mdat = data.find(b"mdat")
    assert mdat > 0, "no mdat box"
    middle = mdat + (len(data) - mdat) // 2
    noise = np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    data[middle:middle + len(noise)] = noise
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="module")
def corrupt(short_talk: Talk, tmp_path_factory) -> Path:
    return corrupt_copy(short_talk.path, tmp_path_factory.mktemp("corrupt") / "corrupt.mp4")


def test_quick_validation_lets_a_corrupt_file_through(corrupt, tmp_path):
    """quick only probes: the damaged file is ingested and its audio extracted."""
    ctx = JobContext(tmp_path, "es", None)
    media = LocalIngester(IngestConfig(validation=Validation.quick)).ingest(corrupt, ctx)
    assert media.speech_audio.stat().st_size > 0
    assert media.full_audio.stat().st_size > 0


def test_full_validation_refuses_a_corrupt_file_in_one_line(corrupt, tmp_path):
    """full decodes every packet (beside the extraction) and stops at the damage; nothing
    extracted is left."""
    ctx = JobContext(tmp_path, "es", None)
    with pytest.raises(VideodubError) as failure:
        LocalIngester(IngestConfig(validation=Validation.full)).ingest(corrupt, ctx)
    message = str(failure.value)
    assert message.startswith("decoding corrupt.mp4 failed: ")
    assert "\n" not in message
    assert list(ctx.work_dir.iterdir()) == []


def damaged_audio_only(short_talk: Talk, folder: Path) -> Path:
    """The talk's audio alone in an M4A, 4 KiB of its AAC overwritten: only audio to damage."""
    from videodub.media import ffmpeg_exe

    intact = folder / "talk.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(short_talk.path), "-map", "0:a:0",
                    "-c", "copy", str(intact)], check=True, capture_output=True, timeout=60)
    return corrupt_copy(intact, folder / "damaged.m4a")


def test_full_validation_refuses_damaged_audio_as_it_extracts_it(short_talk, tmp_path,
                                                                   monkeypatch):
    """The extraction checks its own stream (strictly): no ffmpeg decode for an audio-only
    file, and the same one line as ffmpeg's check; nothing extracted is left."""
    damaged = damaged_audio_only(short_talk, tmp_path)
    checked = []
    monkeypatch.setattr(ingest_local, "decode_check", lambda *a: checked.append(a))
    ctx = JobContext(tmp_path / "full", "es", None)
    with pytest.raises(VideodubError) as failure:
        LocalIngester(IngestConfig(validation=Validation.full)).ingest(damaged, ctx)
    message = str(failure.value)
    assert message.startswith("decoding damaged.m4a failed: ") and "\n" not in message
    assert checked == [] and list(ctx.work_dir.iterdir()) == []
    # quick: the damaged packets are skipped (as ffmpeg skips them), and the run says so.
    ctx = JobContext(tmp_path / "quick", "es", None)
    media = LocalIngester(IngestConfig(validation=Validation.quick)).ingest(damaged, ctx)
    assert media.speech_audio.stat().st_size > 0
    assert any("damaged audio packet(s) of damaged.m4a skipped" in n for n in ctx.notes)


def test_full_validation_leaves_only_the_other_streams_to_ffmpeg(short_talk, tmp_path,
                                                                monkeypatch):
    """ffmpeg's check decodes every stream but the extracted audio (the video here); when
    the in-process decode cannot set the audio up, ffmpeg checks that too."""
    checked = []
    monkeypatch.setattr(ingest_local, "decode_check", lambda path, ctx, streams: checked.append(streams))
    options = IngestConfig(validation=Validation.full)
    LocalIngester(options).ingest(short_talk.path, JobContext(tmp_path / "a", "es", None))
    assert checked == [("0", "-0:a:0")]

    def unsupported(*args, **kwargs):
        raise ingest_local.Unsupported("no decoder")

    checked.clear()
    monkeypatch.setattr(ingest_local, "decode_to_wavs", unsupported)
    LocalIngester(options).ingest(short_talk.path, JobContext(tmp_path / "b", "es", None))
    assert sorted(checked) == [("0", "-0:a:0"), ("0:a:0",)]


def test_full_validation_accepts_an_intact_file(short_talk, tmp_path):
    """full stops only at damage: an intact talk is ingested as with quick."""
    ctx = JobContext(tmp_path, "es", None)
    media = LocalIngester(IngestConfig(validation=Validation.full)).ingest(short_talk.path, ctx)
    assert media.has_video and media.audio_codec == "aac"


def test_a_run_folder_without_room_fails_the_check_in_one_line(short_talk, tmp_path,
                                                              monkeypatch):
    """check() asks how much is free where the run is written and refuses the job, saying
    how much it needs and what to do, when the disk cannot hold it."""
    asked: list[Path] = []
    real = shutil.disk_usage

    def nearly_full(path):
        asked.append(Path(path))
        return real(path)._replace(free=10 * 2**20)

    monkeypatch.setattr(ingest_local.shutil, "disk_usage", nearly_full)
    ctx = JobContext(tmp_path / "run", "es", None)
    ctx.input_path = short_talk.path
    with pytest.raises(VideodubError) as failure:
        LocalIngester(IngestConfig()).check(ctx)

    assert asked == [ctx.run_dir]
    message = str(failure.value)
    assert message.startswith(f"not enough disk space in {ctx.run_dir}: the run needs about ")
    assert message.endswith(" MiB, 10 MiB are free; free space or set hydra.run.dir elsewhere")
    assert "\n" not in message


def test_a_run_folder_with_room_passes_the_check(short_talk, tmp_path):
    """With room on disk the check passes and tells the job how long the input is."""
    ctx = JobContext(tmp_path / "run", "es", None)
    ctx.input_path = short_talk.path
    LocalIngester(IngestConfig()).check(ctx)
    assert ctx.input_duration == pytest.approx(short_talk.duration, abs=0.05)


def stereo_file(path: Path, left: np.ndarray, right: np.ndarray, codec: str = "pcm_s16le") -> Path:
    """A two-channel file of ``left`` and ``right`` (48 kHz), through ffmpeg's ``codec``."""
    import soundfile

    from videodub.media import run_ffmpeg

    wav = path.with_suffix(".src.wav")
    soundfile.write(str(wav), np.stack([left, right], axis=1), 48000, subtype="FLOAT")
    run_ffmpeg(["-v", "error", "-i", str(wav), "-c:a", codec, str(path)], what="a test file")
    return path


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """A harmonic tone with a syllable-rate envelope and pauses, about -20 dBFS."""
    t = np.arange(int(seconds * 48000)) / 48000
    tone = sum(np.sin(2 * np.pi * 140 * h * t) / h for h in range(1, 6))
    envelope = np.sin(np.pi * 4 * t) ** 2 * (np.sin(2 * np.pi * 0.3 * t + seed) > -0.3)
    return (0.15 * tone * envelope).astype(np.float32)


def test_one_signal_in_both_channels_is_mono_even_through_a_stereo_aac_encode(tmp_path):
    voice = speechlike(6.0, seed=0)
    assert ingest_local.same_channels(stereo_file(tmp_path / "same.wav", voice, voice))
    # AAC codes each channel with its own noise: still one signal.
    encoded = stereo_file(tmp_path / "same.m4a", voice, voice, codec="aac")
    wav = tmp_path / "decoded.wav"
    from videodub.media import run_ffmpeg

    run_ffmpeg(["-v", "error", "-i", str(encoded), "-ac", "2", str(wav)], what="decoding")
    assert ingest_local.same_channels(wav)


@pytest.mark.parametrize("apart_db, halves, mono", [
    (-23.0, 1, True),  # one quiet half second of codec noise past -25 dB: still one signal
    (-23.0, 8, False),  # in 4 % of them: the channels differ
    (-12.0, 1, False),  # one half second clearly apart: stereo
])
def test_a_few_half_seconds_of_codec_noise_do_not_make_a_mono_talk_stereo(tmp_path, apart_db,
                                                                          halves, mono):
    """The same hum in both channels for 100 s, the right channel apart from the left by
    ``apart_db`` (difference under sum) in ``halves`` half seconds."""
    rate, part = 48000, 24000
    t = np.arange(100 * rate) / rate
    left = (0.02 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)
    right = left.copy()
    rng = np.random.default_rng(5)
    for k in range(halves):
        at = slice((10 + 20 * k) * part, (11 + 20 * k) * part)
        noise = rng.standard_normal(part)
        # side = noise * g; mid ~ 2 * left: g sets side/mid to apart_db.
        g = np.sqrt(np.mean((2 * left[at]) ** 2) / np.mean(noise ** 2)) * 10 ** (apart_db / 20)
        right[at] = left[at] - (g * noise).astype(np.float32)
    assert ingest_local.same_channels(stereo_file(tmp_path / "x.wav", left, right)) is mono


def test_stereo_room_tone_between_sentences_keeps_the_dub_stereo(tmp_path):
    """The same voice in both channels, but a stereo room (independent noise per channel,
    -45 dBFS) that is heard between sentences: stereo."""
    voice = speechlike(6.0, seed=0)
    rng = np.random.default_rng(1)
    room = [(rng.standard_normal(len(voice)) * 0.0056).astype(np.float32) for _ in range(2)]
    path = stereo_file(tmp_path / "room.wav", voice + room[0], voice + room[1])
    assert not ingest_local.same_channels(path)


def test_a_mono_talk_as_stereo_is_mixed_and_encoded_in_mono(short_talk, tmp_path):
    """The test talk is espeak's mono voice in a stereo AAC track: ingest says mono, and the
    notes say why."""
    ctx = JobContext(tmp_path, "es", "en")
    media = LocalIngester(IngestConfig()).ingest(short_talk.path, ctx)
    assert media.channels == 1
    assert any("same signal" in note for note in ctx.notes)


# -- which audio track is dubbed ------------------------------------------------------------

TRACKS = [{"language": "fre"}, {"language": "eng"}, {"language": None}, {"language": "es-MX"}]


@pytest.mark.parametrize("choice, source_lang, picked", [
    ("auto", None, 0), ("auto", "en", 1), ("auto", "en-gb", 1), ("auto", "ja", 0),
    ("0", "en", 0), ("2", None, 2), ("fr", None, 0), ("fra", None, 0), ("FRE", None, 0),
    ("eng", None, 1), ("es", None, 3), ("spa", "en", 3),
])
def test_the_audio_track_is_picked_by_number_language_or_source_lang(choice, source_lang,
                                                                      picked):
    """``auto`` takes the first track tagged with source_lang (else the first); a number
    counts from 0; a language matches ISO 639-1 or either ISO 639-2 tag (fre and fra)."""
    assert pick_audio_track(TRACKS, choice, source_lang, "x.mkv") == picked


@pytest.mark.parametrize("choice, message", [
    ("4", "x.mkv has 4 audio track(s): 0 (fre), 1 (eng), 2 (untagged), 3 (es-MX); "
          "ingest.audio_track=4 names none"),
    ("de", "x.mkv has no audio track in de: its tracks are 0 (fre), 1 (eng), 2 (untagged), "
           "3 (es-MX); set ingest.audio_track to a number or another language"),
])
def test_a_track_the_input_does_not_have_is_one_line_naming_its_tracks(choice, message):
    with pytest.raises(VideodubError) as failure:
        pick_audio_track(TRACKS, choice, None, "x.mkv")
    assert str(failure.value) == message


def test_auto_takes_the_track_the_file_plays_by_default_when_one_is_marked():
    """A film whose commentary comes first marks its main track to play by default."""
    marked = [{"language": "fre", "default": False}, {"language": "eng", "default": True}]
    assert pick_audio_track(marked, "auto", None, "x.mkv") == 1
    assert pick_audio_track(marked, "auto", "fr", "x.mkv") == 0  # source_lang comes first
    every = [{"language": "fre", "default": True}, {"language": "eng", "default": True}]
    assert pick_audio_track(every, "auto", None, "x.mkv") == 0


@pytest.mark.parametrize("choice", ["", "first", "-1", "zz"])
def test_an_audio_track_choice_that_is_no_number_or_language_is_refused(choice):
    with pytest.raises(ValueError, match="audio_track must be auto, a track number"):
        IngestConfig(audio_track=choice)


def tone_share(wav: Path, hz: float) -> float:
    """The share of a WAV's energy within 20 Hz of ``hz``."""
    import soundfile

    data, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    spectrum = np.abs(np.fft.rfft(data.mean(axis=1))) ** 2
    freqs = np.fft.rfftfreq(len(data), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) < 20].sum() / spectrum.sum())


@pytest.mark.parametrize("validation", [Validation.quick, Validation.full])
def test_the_track_in_source_lang_is_extracted_from_a_file_with_several(
        multitrack_talk, tmp_path, validation):
    """A film's first audio track is often not the speech: with source_lang=en, ingest takes
    the track tagged eng, and both extracted WAVs hold the talk, not the tone before it."""
    from conftest import TONE_HZ

    ctx = JobContext(tmp_path, "es", "en")
    media = LocalIngester(IngestConfig(validation=validation)).ingest(multitrack_talk, ctx)

    assert (media.audio_stream, media.audio_streams, media.audio_codec) == (1, 2, "aac")
    assert tone_share(media.speech_audio, TONE_HZ) < 0.05
    assert tone_share(media.full_audio, TONE_HZ) < 0.05
    assert "ingest: audio track 1 (eng) of 2 is dubbed (ingest.audio_track)" in ctx.notes
    # And the first track when asked for it: the tone.
    ctx = JobContext(tmp_path / "tone", "es", "en")
    media = LocalIngester(IngestConfig(audio_track="0")).ingest(multitrack_talk, ctx)
    assert media.audio_stream == 0 and tone_share(media.speech_audio, TONE_HZ) > 0.9


def test_a_missing_track_fails_the_check_before_any_work(multitrack_talk, tmp_path):
    ctx = JobContext(tmp_path, "es", None)
    ctx.input_path = multitrack_talk
    with pytest.raises(VideodubError, match="has no audio track in ja"):
        LocalIngester(IngestConfig(audio_track="ja")).check(ctx)


def test_a_motion_jpeg_video_is_video_and_a_songs_cover_is_not(short_talk, tmp_path):
    """Old cameras write Motion JPEG: it is the picture to keep. A music file's picture is
    cover art (its disposition says so), and the input is audio only."""
    from videodub.media import run_ffmpeg

    camera, song = tmp_path / "camera.avi", tmp_path / "song.m4a"
    run_ffmpeg(["-v", "error", "-i", str(short_talk.path), "-t", "3", "-c:v", "mjpeg",
                "-c:a", "pcm_s16le", str(camera)])
    run_ffmpeg(["-v", "error", "-i", str(short_talk.path), "-t", "3", "-map", "0:a",
                "-map", "0:v", "-frames:v", "1", "-c:a", "copy", "-c:v", "mjpeg",
                "-disposition:v", "attached_pic", str(song)])
    ingester = LocalIngester(IngestConfig())
    media = ingester.ingest(camera, JobContext(tmp_path / "a", "es", "en"))
    assert (media.has_video, media.video_codec) == (True, "mjpeg")
    assert not ingester.ingest(song, JobContext(tmp_path / "b", "es", "en")).has_video
