"""The loopback server's plain functions: its word-by-word Spanish, how it masks a key in an
error, and its durations in OpenAI's rate-limit header format."""

from __future__ import annotations

from videodub.testing.loopback import format_duration, mask_key, translate


def test_translate_keeps_case_punctuation_and_unknown_words() -> None:
    assert translate("Hello, WORLD! Zebras are here.") == "Hola, MUNDO! Zebras son aquí."
    assert translate("Welcome everyone", max_chars=3) == "Bienvenidos"  # one word always stays


def test_mask_key_never_shows_a_short_key() -> None:
    assert mask_key("sk-test-1234") == "sk-te****1234"
    assert "sk-12" not in mask_key("sk-1234")


def test_format_duration_matches_openai_headers() -> None:
    assert [format_duration(s) for s in (0.12, 1, 8.64, 360, 3723)] == \
        ["120ms", "1s", "8.64s", "6m0s", "1h2m3s"]
