"""tts=openai's pure parts: text split into requests under the input limit, and the speed
kept within the range the API takes."""

from __future__ import annotations

from videodub.builtin.tts_openai import clamp_speed, split_text


def test_split_text_cuts_at_sentence_ends_within_the_limit():
    sentence = "This sentence is about forty characters. "
    text = (sentence * 250).strip()
    parts = split_text(text, 4096)
    assert len(parts) == 3
    assert all(len(p) <= 4096 for p in parts)
    assert all(p.endswith(".") for p in parts)
    assert " ".join(parts) == text


def test_split_text_cuts_a_sentence_longer_than_the_limit_at_spaces():
    text = " ".join(["word"] * 2000)  # 9999 characters, no sentence end
    parts = split_text(text, 4096)
    assert all(len(p) <= 4096 for p in parts)
    assert " ".join(parts) == text
    assert split_text("short.", 4096) == ["short."]


def test_speed_is_kept_within_the_api_range():
    assert clamp_speed(5.2) == 4.0
    assert clamp_speed(0.1) == 0.25
    assert clamp_speed(1.234) == 1.234


def test_speech_too_short_for_its_text_is_not_taken():
    import numpy as np
    import pytest

    from videodub.builtin.tts_openai import MAX_CHARS_PER_S, check_speech
    from videodub.providers.openai_api import RetryableError

    text = "Hola a todos, bienvenidos."  # 26 characters
    # An HTML error page read as 16-bit PCM: a few milliseconds of noise.
    page = np.frombuffer(b"<html><body>502 Bad Gateway</body></html>\n", dtype="<i2")
    with pytest.raises(RetryableError, match="too short to be their speech"):
        check_speech(page, 24000, text, 1.0)
    shortest = len(text) / MAX_CHARS_PER_S
    with pytest.raises(RetryableError):
        check_speech(np.ones(int(shortest * 0.9 * 24000), np.int16), 24000, text, 1.0)
    check_speech(np.ones(int(shortest * 1.1 * 24000), np.int16), 24000, text, 1.0)
    # Faster speech may be shorter.
    check_speech(np.ones(int(shortest * 0.6 * 24000), np.int16), 24000, text, 2.0)
