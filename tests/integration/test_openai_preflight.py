"""The preflight model check against the loopback server: a transient server error is retried
as the work's requests are (a 503 at the start must not fail a job), a few times only, so a
server that keeps failing still fails the check within seconds."""

from __future__ import annotations

import pytest
from conftest import TEST_KEY_ENV
from failure_corpus import assert_message

from videodub.errors import VideodubError
from videodub.providers.openai_api import PREFLIGHT_ATTEMPTS, OpenAIOptions, OpenAIProvider


def provider(server, **options) -> OpenAIProvider:
    return OpenAIProvider("translate", OpenAIOptions(
        base_url=server.base_url, api_key_env=TEST_KEY_ENV, **options), "chat", "gpt-4o-mini")


def model_checks(server) -> list[int]:
    return [r.status for r in server.requests if r.route == "models"]


@pytest.mark.parametrize("faults", [("503",), ("500", "disconnect"), ("429",)])
def test_a_transient_failure_of_the_model_check_is_retried(loopback, faults):
    loopback.faults.push("models", *faults)
    provider(loopback).check()

    assert model_checks(loopback)[-1] == 200
    assert len(model_checks(loopback)) == len(faults) + 1


def test_a_server_that_keeps_failing_fails_the_check_after_a_few_attempts(loopback):
    loopback.faults.push("models", *["503"] * 10)
    with pytest.raises(VideodubError, match=r"^translate: .* answered the model check with 503 "
                                            r"\(.*overloaded.*\) after 3 attempts; check") as caught:
        provider(loopback).check()
    assert_message("model_check_keeps_failing", f"error: {caught.value}")

    assert len(model_checks(loopback)) == PREFLIGHT_ATTEMPTS == 3


def test_the_check_makes_no_more_attempts_than_max_retries_allows(loopback):
    loopback.faults.push("models", "503", "503")
    with pytest.raises(VideodubError, match="after 1 attempt;"):
        provider(loopback, max_retries=0).check()
    assert len(model_checks(loopback)) == 1


def test_a_refusal_is_not_retried(loopback):
    loopback.faults.push("models", "401", "401")
    with pytest.raises(VideodubError, match="rejected the API key"):
        provider(loopback).check()
    assert len(model_checks(loopback)) == 1
