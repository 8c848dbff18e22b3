"""transcribe=openai against the loopback server: audio over OpenAI's 25 MiB upload limit is
sent in parallel chunks cut at silences, and ``max_chunk_s`` cuts without changing the segments;
the server's no-speech probability flags a segment, and the flag reaches segments.json.

The transcriber runs on its own in this process, on tone bursts synthesized with numpy whose
times are known, so each segment can be checked against the burst it must match.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from conftest import TEST_KEY_ENV, openai_overrides
from helpers_loopback import Crowd

from videodub.api import dub
from videodub.builtin.transcribe_openai import OpenAITranscribeOptions, OpenAITranscriber
from videodub.model import JobContext, MediaInfo
from videodub.testing.loopback import OPENAI_UPLOAD_LIMIT, LoopbackServer

RATE = 16_000


def routes(server: LoopbackServer) -> list[str]:
    return [r.route for r in server.requests]


def burst_times(total_s: float, seed: int, shortest: float = 0.8,
                longest: float = 6.0) -> list[tuple[float, float]]:
    """Bursts of varying length, 0.6-1.5 s apart, on whole samples, filling ``total_s``."""
    rng = np.random.default_rng(seed)
    bursts: list[tuple[float, float]] = []
    t = 0.7
    while True:
        end = t + rng.uniform(shortest, longest)
        if end > total_s - 0.7:
            return bursts
        bursts.append((round(t * RATE) / RATE, round(end * RATE) / RATE))
        t = end + rng.uniform(0.6, 1.5)


def write_bursts(path: Path, bursts: list[tuple[float, float]], total_s: float) -> Path:
    """16 kHz mono 16-bit WAV: harmonic tones at ``bursts`` over a -80 dBFS noise floor."""
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(int(total_s * RATE)) * 1e-4).astype(np.float32)
    for k, (start, end) in enumerate(bursts):
        a, b = round(start * RATE), round(end * RATE)
        t = np.arange(b - a) / RATE
        pitch = 120 + 15 * (k % 5)
        audio[a:b] += (0.25 * np.sin(2 * np.pi * pitch * t) + 0.1 * np.sin(4 * np.pi * pitch * t))
    soundfile.write(str(path), audio, RATE, subtype="PCM_16")
    return path


def transcribe_file(wav: Path, work: Path, server: LoopbackServer,
                    **options: Any) -> tuple[list[Any], JobContext]:
    """Run only the OpenAI transcriber on ``wav`` (as ingest's speech track) against ``server``."""
    work.mkdir(parents=True, exist_ok=True)
    ctx = JobContext(work, "es", "en")
    media = MediaInfo(path=wav, duration=soundfile.info(str(wav)).duration, has_video=False,
                      audio_streams=1, audio_codec="pcm_s16le", video_codec=None,
                      speech_audio=wav, full_audio=wav)
    opts = OpenAITranscribeOptions(base_url=server.base_url, api_key_env=TEST_KEY_ENV,
                                   retry_base_s=0.02, retry_max_s=0.2, **options)
    return list(OpenAITranscriber(opts).transcribe(media, ctx)), ctx


def assert_matches_bursts(segments: list[Any], bursts: list[tuple[float, float]],
                          tolerance: float = 0.1) -> None:
    assert len(segments) == len(bursts)
    for seg, (start, end) in zip(segments, bursts):
        assert abs(seg.start - start) <= tolerance and abs(seg.end - end) <= tolerance, (
            f"segment {seg.start:.3f}-{seg.end:.3f} for the burst {start:.3f}-{end:.3f}")
    for before, after in itertools.pairwise(segments):
        assert before.end <= after.start


def test_audio_over_25_mib_is_sent_in_parallel_chunks_cut_at_silences(tmp_path, server_factory):
    total = 14.5 * 60
    bursts = burst_times(total, seed=3)
    wav = write_bursts(tmp_path / "long.wav", bursts, total)
    assert wav.stat().st_size > OPENAI_UPLOAD_LIMIT
    server = server_factory()
    # The first two uploads are held until both are in flight: sent one after the other,
    # they would never be.
    server.faults = Crowd("transcriptions", 2)
    # max_chunk_s=0: only the upload limit cuts.
    segments, ctx = transcribe_file(wav, tmp_path / "run", server, upload_format="wav",
                                    max_chunk_s=0.0)

    uploads = [r for r in server.requests if r.route == "transcriptions"]
    assert len(uploads) >= 2
    assert all(r.status == 200 and r.bytes_in <= OPENAI_UPLOAD_LIMIT for r in uploads), uploads
    assert sum(r.detail["audio_s"] for r in uploads) == pytest.approx(total, abs=0.1)
    assert_matches_bursts(segments, bursts)
    assert [s.id for s in segments] == list(range(len(segments)))
    assert len({s.extra["chunk"] for s in segments}) == len(uploads)

    note = next(n for n in ctx.notes if "chunks cut at silences" in n)
    cuts = [float(x) for x in re.search(r"\(([\d., ]+) s\)", note).group(1).split(", ")]
    assert len(cuts) == len(uploads) - 1
    gaps = list(zip([end for _, end in bursts], [start for start, _ in bursts[1:]]))
    for cut in cuts:  # printed to 0.1 s
        assert any(a - 0.05 <= cut <= b + 0.05 for a, b in gaps), (
            f"cut at {cut} s is not in a silence")

    assert server.stats()["transcriptions"]["max_in_flight"] >= 2


def test_max_chunk_s_gives_the_segments_of_one_upload(tmp_path, server_factory):
    total = 40.0
    bursts = burst_times(total, seed=5, longest=4.0)
    wav = write_bursts(tmp_path / "short.wav", bursts, total)
    server = server_factory()
    whole, _ = transcribe_file(wav, tmp_path / "whole", server)
    assert routes(server).count("transcriptions") == 1
    server.reset()
    chunked, _ = transcribe_file(wav, tmp_path / "chunked", server, max_chunk_s=10.0)
    assert routes(server).count("transcriptions") >= 4
    assert len({s.extra["chunk"] for s in chunked}) >= 4
    assert_matches_bursts(whole, bursts)
    assert_matches_bursts(chunked, bursts)
    for a, b in zip(whole, chunked):
        assert abs(a.start - b.start) <= 0.05 and abs(a.end - b.end) <= 0.05


def test_the_first_chunk_is_short_and_gives_the_segments_of_one_upload(tmp_path,
                                                                       server_factory):
    """Audio over ``first_chunk_s`` (60 s by default) goes as two uploads: a first of 36 to
    60 s, cut in a silence, then the rest; the segments are those of one upload, in order."""
    total = 150.0
    bursts = burst_times(total, seed=7, longest=4.0)
    wav = write_bursts(tmp_path / "talk.wav", bursts, total)
    server = server_factory()
    whole, _ = transcribe_file(wav, tmp_path / "whole", server, first_chunk_s=0.0)
    assert routes(server).count("transcriptions") == 1
    server.reset()
    chunked, ctx = transcribe_file(wav, tmp_path / "chunked", server)

    uploads = sorted(r.detail["audio_s"] for r in server.requests if r.route == "transcriptions")
    assert len(uploads) == 2
    assert 36.0 <= uploads[0] <= 60.0 and sum(uploads) == pytest.approx(total, abs=0.1)
    note = next(n for n in ctx.notes if "chunks cut at silences" in n)
    cut = float(re.search(r"\(([\d.]+) s\)", note).group(1))
    assert cut == pytest.approx(uploads[0], abs=0.1)
    gaps = list(zip([end for _, end in bursts], [start for start, _ in bursts[1:]]))
    assert any(a - 0.05 <= cut <= b + 0.05 for a, b in gaps), f"cut at {cut} s is not in a silence"
    assert [s.extra["chunk"] for s in chunked] == sorted(s.extra["chunk"] for s in chunked)
    assert_matches_bursts(whole, bursts)
    assert_matches_bursts(chunked, bursts)
    for a, b in zip(whole, chunked):
        assert abs(a.start - b.start) <= 0.05 and abs(a.end - b.end) <= 0.05


def test_a_segment_the_server_doubts_is_speech_is_flagged_in_segments_json(loopback, tmp_path):
    """A segment whose `no_speech_prob` is over 0.6 (the loopback gives one to a region under
    0.4 s, as Whisper does for a blip) is flagged `suspect_no_speech`, and the flag is in the
    job's segments.json; the others are not."""
    bursts = [(0.7, 2.2), (3.0, 3.3), (4.2, 5.8)]
    wav = write_bursts(tmp_path / "blip.wav", bursts, 6.5)
    run_dir = tmp_path / "run"
    dub([f"input={wav}", "target_lang=es", f"cache_dir={tmp_path / 'cache'}",
         *openai_overrides(loopback)], run_dir)

    segments = json.loads((run_dir / "segments.json").read_text(encoding="utf-8"))["segments"]
    assert len(segments) == len(bursts), segments
    flagged = ["suspect_no_speech" in s["flags"] for s in segments]
    assert flagged == [False, True, False], segments
    assert [s["extra"]["no_speech_prob"] > 0.6 for s in segments] == flagged


@pytest.mark.slow
def test_a_tune_before_the_talk_plays_on_when_the_audio_is_transcribed_away(server_factory,
                                                                           tmp_path):
    """transcribe=openai runs no recogniser here, and the speech regions were the energy
    detector's: a tune before the talk was "speech", and the mix cut it out. Silero now runs
    ahead of align while the audio is away, and the dub keeps the tune at about the mix's
    gain. Whisper (the server's here, as the API's) puts the first line at 0.0 s, over the
    tune: it starts where the voice does, 4.5 s later, as it did not before."""
    from videodub.testing.samples import ENGLISH_TALK, speak

    server = server_factory(transcriber="whisper")
    rate = 16000
    t = np.arange(int(0.5 * rate)) / rate
    notes = [220, 277, 330, 440, 392, 330, 294, 262]
    tune = np.concatenate([sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3, 4))
                           * np.exp(-3 * t) * 0.15 for f in notes])  # 4 s, loud, no voice
    voice, voice_rate = speak(ENGLISH_TALK[0][0])
    import soxr

    voice = soxr.resample(voice, voice_rate, rate)
    source = np.concatenate([tune, np.zeros(rate // 2), voice, np.zeros(rate)]).astype(np.float32)
    wav = tmp_path / "intro.wav"
    soundfile.write(str(wav), source, rate, subtype="PCM_16")
    from videodub.speech_regions import regions_of_file

    assert regions_of_file(wav).overlap(0.0, 4.0) > 3.0  # to the energy detector: speech
    run_dir = tmp_path / "run"
    result = dub([f"input={wav}", "target_lang=es", f"cache_dir={tmp_path / 'cache'}",
                  *openai_overrides(server)], run_dir)
    segments = json.loads((run_dir / "segments.json").read_text(encoding="utf-8"))["segments"]
    assert segments[0]["extra"]["asr_start"] < 1.0  # the recogniser's time, over the tune
    assert 4.3 < segments[0]["extra"]["placed_start"] < 4.7, segments
    import av

    with av.open(str(result.video)) as container:
        out_rate = container.streams.audio[0].rate
        dubbed = np.concatenate([f.to_ndarray().mean(axis=0)
                                 for f in container.decode(container.streams.audio[0])])
    original = soxr.resample(source, rate, out_rate)

    def rms(x: np.ndarray, a: float, b: float) -> float:
        return float(np.sqrt(np.mean(x[int(a * out_rate):int(b * out_rate)] ** 2)))

    assert rms(dubbed, 0.2, 3.5) > 0.3 * rms(original, 0.2, 3.5)
