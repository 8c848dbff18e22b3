"""report.json's pieces: the one-line error (secrets masked, none for a cancelled job), the
job's cost from the providers' reports, and config values made plain JSON."""

from __future__ import annotations

from videodub.config import Display, Effort
from videodub.errors import Cancelled, VideodubError
from videodub.providers.secrets import remember
from videodub.run.report import error_line, job_cost, plain


def test_no_error_line_for_a_clean_or_cancelled_job():
    assert error_line([]) is None
    assert error_line([Cancelled()]) is None
    # The job was cancelled first; what failed while it stopped is not its error.
    assert error_line([Cancelled(), RuntimeError("pool shut down")]) is None


def test_the_first_error_as_one_line():
    errors = [VideodubError("tts: no voice for 'yo'\nTry tts.voice=..."), RuntimeError("later")]
    assert error_line(errors) == "tts: no voice for 'yo'"
    assert error_line([KeyError()]) == "KeyError"  # no message: its type
    # A message that starts with a line break still gives its first words, never "".
    assert error_line([RuntimeError("\n  upstream said no\nmore")]) == "upstream said no"


def test_a_remembered_secret_never_reaches_the_error_line():
    secret = "sk-report-test-4f1e9d2c7b"
    remember(secret)
    line = error_line([RuntimeError(f"401 for key {secret} at http://127.0.0.1:9/v1")])
    assert line == "401 for key *** at http://127.0.0.1:9/v1"


def test_job_cost_adds_the_priced_providers():
    assert job_cost({}) is None
    assert job_cost({"translate": {"cost_usd": None}}) is None  # no price known
    providers = {"transcribe": {"cost_usd": 0.006}, "translate": {"cost_usd": None},
                 "tts": {"cost_usd": 0.0123456789}}
    assert job_cost(providers) == 0.018346


def test_plain_turns_enums_into_their_values_at_any_depth():
    options = {"effort": Effort.high, "display": [Display.plain, ("x", Effort.low)],
               "nested": {"effort": Effort.medium, "n": 3, "none": None}}
    expected = {"effort": "high", "display": ["plain", ["x", "low"]],
                "nested": {"effort": "medium", "n": 3, "none": None}}
    # These enums are str subclasses and compare equal to their values: compare the reprs.
    assert repr(plain(options)) == repr(expected)
