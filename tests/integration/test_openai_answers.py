"""Every provider answer is checked before it is used or cached: speech that is not audio (a
gateway's 200 OK error page), or too short for its text, is retried like a 5xx; when every
attempt is bad the job fails with a line naming the line and the server, and nothing invalid
reaches the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile
from conftest import TEST_KEY_ENV, openai_overrides
from failure_corpus import assert_message

from videodub.api import dub
from videodub.errors import VideodubError
from videodub.model import JobContext, Segment
from videodub.plugins import collect


def speech_stage(server, **options):
    impl = collect().get("tts", "openai")
    return impl.create(impl.config(base_url=server.base_url, api_key_env=TEST_KEY_ENV,
                                   retry_base_s=0.01, retry_max_s=0.05, **options))


def line(text: str) -> Segment:
    return Segment(id=3, start=0.0, end=6.0, source_text=text, target_text=text,
                   slot_start=0.0, slot_end=6.0, tts_rate=1.0, max_speed=1.5)


@pytest.mark.parametrize("response_format", ["pcm", "wav"])
def test_speech_that_is_not_audio_is_retried(loopback, tmp_path, response_format):
    loopback.faults.push("speech", "malformed")
    synth = speech_stage(loopback, response_format=response_format)
    text = "Hola a todos, bienvenidos a la charla."

    seg = synth.synthesize(line(text), JobContext(tmp_path, "es", "en"))

    stats = synth.provider_stats
    assert (stats.calls, stats.retries, stats.server_errors, stats.succeeded) == (2, 1, 1, 1)
    assert loopback.stats()["speech"]["status"] == {"200": 2}
    # The loopback voice speaks 15 characters a second; trimming takes a little off.
    assert seg.synth_duration == pytest.approx(len(text) / 15, rel=0.15)
    assert soundfile.info(seg.audio_path).duration == pytest.approx(seg.synth_duration, abs=1e-3)


def test_speech_that_is_never_audio_fails_the_job_and_is_never_cached(loopback, four_lines,
                                                                     tmp_path):
    loopback.faults.rate("speech", "malformed", 1.0)
    run_dir, cache = tmp_path / "run", tmp_path / "cache"

    with pytest.raises(VideodubError) as caught:
        dub([f"input={four_lines.path}", "target_lang=es", f"cache_dir={cache}",
             *openai_overrides(loopback), "tts.max_retries=2"], run_dir)

    message = str(caught.value)
    assert message.startswith("tts: synthesizing line "), message
    assert f"failed after 3 attempts at {loopback.base_url}: unusable answer" in message
    assert "not audio" in message
    assert_message("speech_not_audio", f"error: {message}")
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "failed" and report["error"] == message
    assert report["providers"]["tts"]["server_errors"] >= 3
    clips = cache / "clips"
    assert not clips.exists() or list(clips.iterdir()) == []
    assert not list(run_dir.glob("*.mp4"))


def test_a_later_run_pays_for_speech_a_bad_answer_did_not_give(loopback, four_lines, tmp_path):
    """After a failed run, the clips are requested again (none was cached), and come out whole."""
    loopback.faults.rate("speech", "malformed", 1.0)
    overrides = [f"input={four_lines.path}", "target_lang=es", f"cache_dir={tmp_path / 'cache'}",
                 *openai_overrides(loopback), "tts.max_retries=0"]
    with pytest.raises(VideodubError):
        dub(overrides, tmp_path / "first")
    loopback.faults.clear()

    result = dub(overrides, tmp_path / "second")

    assert result.report["providers"]["tts"]["succeeded"] == len(result.segments)
    assert all("clip_cached" not in s.flags for s in result.segments)
    assert all(s.synth_duration > 0.5 for s in result.segments), \
        [s.synth_duration for s in result.segments]


# -- transcripts ----------------------------------------------------------------------------


def transcribe(server, wav: Path, work: Path, **options):
    from videodub.builtin.transcribe_openai import OpenAITranscribeOptions, OpenAITranscriber
    from videodub.model import MediaInfo

    work.mkdir(parents=True, exist_ok=True)
    media = MediaInfo(path=wav, duration=soundfile.info(str(wav)).duration, has_video=False,
                      audio_streams=1, audio_codec="pcm_s16le", video_codec=None,
                      speech_audio=wav, full_audio=wav)
    stage = OpenAITranscriber(OpenAITranscribeOptions(
        base_url=server.base_url, api_key_env=TEST_KEY_ENV, retry_base_s=0.01,
        retry_max_s=0.05, **options))
    return list(stage.transcribe(media, JobContext(work, "en", "en"))), stage.provider_stats


@pytest.fixture
def tone_wav(tmp_path) -> Path:
    """Two loud stretches over silence: the loopback server answers one segment each."""
    import numpy as np

    rate = 16_000
    audio = np.zeros(6 * rate, np.float32)
    t = np.arange(int(1.5 * rate)) / rate
    for start in (0.5, 3.5):
        a = int(start * rate)
        audio[a:a + len(t)] = 0.3 * np.sin(2 * np.pi * 150 * t)
    path = tmp_path / "tones.wav"
    soundfile.write(str(path), audio, rate, subtype="PCM_16")
    return path


@pytest.mark.parametrize("fault", ["malformed", "bad_segments"])
def test_a_transcript_that_does_not_parse_is_retried(loopback, tone_wav, tmp_path, fault):
    loopback.faults.push("transcriptions", fault)

    segments, stats = transcribe(loopback, tone_wav, tmp_path / "work")

    assert (stats.calls, stats.retries, stats.server_errors) == (2, 1, 1)
    assert len(segments) == 2 and all(s.end > s.start for s in segments)


def test_a_transcript_that_never_parses_fails_in_one_line(loopback, tone_wav, tmp_path):
    loopback.faults.rate("transcriptions", "bad_segments", 1.0)

    with pytest.raises(VideodubError, match=r"^transcribe: transcribing chunk 0 failed after 2 "
                                            r"attempts at .*: unusable answer \(the answer's "
                                            r"segments are not a list with start and end"):
        transcribe(loopback, tone_wav, tmp_path / "work", max_retries=1)
