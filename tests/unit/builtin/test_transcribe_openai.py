"""transcribe=openai's chunk planning: long audio cut in its silences into chunks that cover
it end to end; which of its options leave the transcript cache alone."""

from __future__ import annotations

import numpy as np
import pytest

from videodub.builtin.transcribe_openai import (OpenAITranscribeOptions, OpenAITranscriber,
                                                frame_energy, plan_chunks)
from videodub.config import result_options


def test_chunks_are_cut_in_silences_and_cover_the_audio():
    rate = 16000
    rng = np.random.default_rng(0)
    # 10 s of noise, 1 s of silence, repeated: quiet points at 10-11, 21-22, 32-33 ...
    block = np.concatenate([rng.normal(0, 3000, 10 * rate), np.zeros(rate)]).astype(np.int16)
    audio = np.tile(block, 6)
    duration = len(audio) / rate
    chunks = plan_chunks(frame_energy(audio, rate), duration, max_chunk=25.0)
    assert chunks[0].start == 0 and chunks[-1].end == pytest.approx(duration)
    for a, b in zip(chunks, chunks[1:]):
        assert a.end == b.start
        assert (a.end % 11) > 10.0  # inside a silent second
    assert all(c.duration <= 25.0 for c in chunks)


def test_short_audio_is_one_chunk():
    assert len(plan_chunks(np.zeros(100), 2.0, 600.0)) == 1
    assert len(plan_chunks(np.zeros(100), 2.0, 600.0, first_chunk=60.0)) == 1


def test_the_first_chunk_is_cut_shorter_in_a_silence():
    """``first_chunk``: the first chunk ends in a silence within it, the others as before."""
    rate = 16000
    rng = np.random.default_rng(0)
    # 10 s of noise, 1 s of silence, repeated: quiet points at 10-11, 21-22, 32-33 ...
    block = np.concatenate([rng.normal(0, 3000, 10 * rate), np.zeros(rate)]).astype(np.int16)
    audio = np.tile(block, 12)
    energy, duration = frame_energy(audio, rate), len(audio) / rate

    two = plan_chunks(energy, duration, max_chunk=600.0, first_chunk=25.0)
    assert [(c.start, c.end) for c in two] == [(0.0, two[0].end), (two[0].end, duration)]
    assert 15.0 <= two[0].end <= 25.0 and two[0].end % 11 > 10.0

    many = plan_chunks(energy, duration, max_chunk=40.0, first_chunk=15.0)
    assert many[0].duration <= 15.0 and all(c.duration <= 40.0 for c in many)
    assert len(many) > len(plan_chunks(energy, duration, max_chunk=40.0))
    for a, b in zip(many, many[1:]):
        assert a.end == b.start and a.end % 11 > 10.0
    assert many[-1].end == pytest.approx(duration)

    # Off, or not shorter than the others: the chunks are the plain ones.
    plain = plan_chunks(energy, duration, max_chunk=40.0)
    assert plan_chunks(energy, duration, max_chunk=40.0, first_chunk=0.0) == plain
    assert plan_chunks(energy, duration, max_chunk=40.0, first_chunk=40.0) == plain


def test_first_chunk_s_is_checked_and_counted_in_the_estimate():
    with pytest.raises(ValueError, match="first_chunk_s"):
        OpenAITranscribeOptions(first_chunk_s=3.0)
    transcriber = OpenAITranscriber(OpenAITranscribeOptions(api_key_env="VIDEODUB_TEST_NO_KEY"))
    assert transcriber.estimate_usage(50.0).calls == 1
    assert transcriber.estimate_usage(315.0).calls == 2
    assert transcriber.estimate_usage(1300.0).calls == 4
    off = OpenAITranscriber(OpenAITranscribeOptions(first_chunk_s=0.0,
                                                    api_key_env="VIDEODUB_TEST_NO_KEY"))
    assert off.estimate_usage(315.0).calls == 1


def test_its_own_longer_timeout_is_still_a_transport_option():
    """transcribe's timeout (600 s by default, not the providers' 120 s) changes how long a
    request may take, not the transcript: it stays out of the cache key."""
    options = OpenAITranscribeOptions()
    assert options.timeout_s == 600.0
    assert result_options(OpenAITranscribeOptions(timeout_s=30.0)) == result_options(options)
    assert "timeout_s" not in result_options(options)
