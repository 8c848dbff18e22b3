"""Secrets kept out of what the process writes: :func:`remember` then :func:`redact` masks a
key, log records through a handler with the filter show ``***``, and a key that contains
another is masked whole.

The remembered secrets are process-wide; the suite's ``forget_secrets`` fixture forgets them
after each test, and each test uses keys of its own.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from videodub.providers import secrets
from videodub.providers.secrets import MASK, install, redact, remember


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own writing to a string, not passing records on to the root."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("videodub.tests.secrets")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)


def test_redact_masks_every_occurrence_once_remembered():
    key = "sk-secrets-test-a81f0c"
    text = f"Authorization: Bearer {key}; retry with {key}"
    assert redact(text) == text  # not yet remembered
    remember(f"  {key}\n")  # read from the environment with a stray newline
    assert redact(text) == f"Authorization: Bearer {MASK}; retry with {MASK}"
    assert redact("nothing secret here") == "nothing secret here"


def test_a_blank_value_is_not_a_secret():
    remember("")
    remember("   \n")
    assert redact("a b  c") == "a b  c"


def test_a_longer_secret_containing_a_shorter_one_is_masked_whole():
    short = "sk-nested-77c1"
    remember(short)
    remember(short + "-and-more-9e2")
    assert redact(f"key {short}-and-more-9e2 and key {short}") == f"key {MASK} and key {MASK}"


def test_the_longer_secret_goes_first_wherever_the_shorter_one_sits_in_it():
    # Longest first, not the reverse of the alphabet: "zz-..." sorts after "aa-...zz-...".
    inner = "zz-inner-41c7"
    outer = f"aa-outer-{inner}"
    remember(inner)
    remember(outer)
    assert redact(f"{outer} then {inner}") == f"{MASK} then {MASK}"


def test_log_records_through_a_filtered_handler_show_the_mask(logged):
    logger, out = logged
    key = "sk-secrets-log-5d3b7e"
    remember(key)
    install(logger)
    logger.info("calling with key %s", key)  # the secret in the arguments
    logger.info(f"calling with key {key} again")  # and in the message itself
    logger.info("nothing to hide")
    assert out.getvalue().splitlines() == [
        f"calling with key {MASK}", f"calling with key {MASK} again", "nothing to hide"]


def test_remember_puts_the_filter_on_the_root_loggers_handlers_once():
    root = logging.getLogger()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root.addHandler(handler)
    try:
        remember("sk-secrets-root-2a9f44")
        remember("sk-secrets-root-2a9f45")
        install()
        assert handler.filters.count(secrets._redactor) == 1
        child = logging.getLogger("tests.secrets.through_root")
        child.warning("rejected sk-secrets-root-2a9f45")
        assert out.getvalue() == f"rejected {MASK}\n"
    finally:
        root.removeHandler(handler)


def test_http_client_loggers_are_quieted_once_a_secret_is_in_play():
    remember("sk-secrets-quiet-0b6e11")
    for name in secrets.QUIET_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name


@pytest.fixture
def logger_levels() -> Iterator[None]:
    """The root's and the HTTP client loggers' levels, put back after the test."""
    names = [None, *secrets.QUIET_LOGGERS]
    saved = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def test_quieting_sets_each_http_client_loggers_level_and_leaves_the_root_alone(logger_levels):
    logging.getLogger().setLevel(logging.DEBUG)  # an application that logs everything
    for name in secrets.QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    remember("sk-secrets-levels-5c1d08")
    assert logging.getLogger().level == logging.DEBUG
    for name in secrets.QUIET_LOGGERS:
        assert logging.getLogger(name).level == logging.WARNING, name


def test_a_traceback_that_carries_the_secret_is_masked(logged):
    logger, out = logged
    key = "sk-secrets-traceback-0b9a44"
    remember(key)
    install(logger)
    try:
        raise RuntimeError(f"server said: bad key {key}")
    except RuntimeError:
        logger.exception("request failed")
    logger.info("stack", stack_info=True)
    text = out.getvalue()
    assert "Traceback" in text and f"bad key {MASK}" in text
    assert key not in text


def test_a_stack_that_carries_the_secret_is_kept_and_masked(logged):
    logger, out = logged
    remember("sk-secrets-stack-7e21c3")
    install(logger)
    logger.info("where", stack_info=True)  # sk-secrets-stack-7e21c3 shows in the stack
    text = out.getvalue()
    assert "Stack (most recent call last)" in text
    assert f"# {MASK} shows in the stack" in text and "sk-secrets-stack-7e21c3" not in text


def test_a_links_password_and_authorising_parameters_are_remembered_typed_and_decoded():
    from videodub.providers.secrets import redact_data, remember_url

    url = ("https://erin:pa%40ss-4471@bucket.example/talk.mp4?v=abc123xyz&t=42"
           "&X-Amz-Credential=AKIAEXAMPLE%2F20261203&X-Amz-Signature=0f9e8d7c6b&sig=short"
           "&token=1")
    remember_url(url)
    assert redact(url) == ("https://erin:***@bucket.example/talk.mp4?v=abc123xyz&t=42"
                           "&X-Amz-Credential=***&X-Amz-Signature=***&sig=short&token=1")
    # Decoded, as a library may log it; "short" and "1" are too short to mask safely.
    assert redact("user erin pa@ss-4471 AKIAEXAMPLE/20261203") == "user erin *** ***"
    assert redact_data({"job": {"input": url, "n": [1, "0f9e8d7c6b"]}}) == {
        "job": {"input": redact(url), "n": [1, MASK]}}


@pytest.mark.parametrize("value", ["talk.mp4", "ftp://u:password1@h/x", "http://[::1/x?key=abcdef1"])
def test_what_is_not_an_http_link_remembers_nothing(value):
    from videodub.providers.secrets import remember_url

    before = set(secrets._secrets)
    remember_url(value)
    assert secrets._secrets == before


def test_a_file_someone_else_wrote_is_rewritten_masked_and_one_without_secrets_left_alone(
        tmp_path):
    from videodub.providers.secrets import redact_file

    remember("tok-8c1d2e3f")
    written, clean = tmp_path / "config.yaml", tmp_path / "clean.yaml"
    written.write_text("input: https://h/x.mp4?token=tok-8c1d2e3f\n")
    clean.write_text("input: talk.mp4\n")
    before = clean.stat().st_mtime_ns
    redact_file(written)
    redact_file(clean)
    redact_file(tmp_path / "missing.yaml")
    assert written.read_text() == "input: https://h/x.mp4?token=***\n"
    assert clean.stat().st_mtime_ns == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "clean.yaml", "config.yaml"]
