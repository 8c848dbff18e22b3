"""transcribe=openai's chunk planning: long audio cut in its silences into chunks that cover
it end to end; which of its options leave the transcript cache alone."""

from __future__ import annotations

import numpy as np
import pytest

from videodub.builtin.transcribe_openai import OpenAITranscribeOptions, frame_energy, plan_chunks
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


def test_its_own_longer_timeout_is_still_a_transport_option():
    """transcribe's timeout (600 s by default, not the providers' 120 s) changes how long a
    request may take, not the transcript: it stays out of the cache key."""
    options = OpenAITranscribeOptions()
    assert options.timeout_s == 600.0
    assert result_options(OpenAITranscribeOptions(timeout_s=30.0)) == result_options(options)
    assert "timeout_s" not in result_options(options)
