"""The OpenAI provider's retry loop, with answers made here instead of by a server: which
statuses are tried again and which fail at once, and how many attempts ``max_retries`` allows.
(The loopback server's runs of the same loop are in ``integration/``.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx2
import openai
import pytest

from videodub.errors import VideodubError
from videodub.providers.openai_api import OpenAIOptions, OpenAIProvider

URL = "http://127.0.0.1:9/v1"


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers or {},
                               request=httpx2.Request("POST", f"{URL}/chat/completions"))
    return openai.APIStatusError(f"status {status}", response=response,
                                 body={"error": {"message": f"scripted {status}"}})


def provider(**options: Any) -> OpenAIProvider:
    opts = OpenAIOptions(base_url=URL, api_key_env="", retry_base_s=0.0, **options)
    return OpenAIProvider("translate", opts, "chat", "gpt-4o-mini")


def answers(*outcomes: Any) -> tuple[list[int], Any]:
    """A ``send`` that raises or returns ``outcomes`` in turn, and the list of its calls."""
    calls: list[int] = []
    queue: Iterator[Any] = iter(outcomes)

    async def send(client: Any) -> Any:
        calls.append(len(calls) + 1)
        outcome = next(queue)
        if isinstance(outcome, BaseException):
            raise outcome
        return SimpleNamespace(headers={}, value=outcome)

    return calls, send


def request(p: OpenAIProvider, send: Any) -> Any:
    return asyncio.run(p.request(send, lambda raw: raw.value, what="a chat"))


@pytest.mark.parametrize("status", [408, 409, 429, 500, 503])
def test_a_status_that_another_attempt_may_fix_is_retried(status):
    p = provider()
    calls, send = answers(status_error(status, {"retry-after-ms": "10"}), "hola")
    assert request(p, send) == "hola"
    assert calls == [1, 2] and p.stats.retries == 1


@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_request_the_server_refuses_fails_at_once_in_one_line(status):
    p = provider()
    calls, send = answers(status_error(status), "never sent")
    with pytest.raises(VideodubError) as caught:
        request(p, send)
    assert calls == [1] and p.stats.retries == 0
    assert f"scripted {status}" in str(caught.value) and "\n" not in str(caught.value)


def test_max_retries_is_the_number_of_attempts_after_the_first():
    p = provider(max_retries=2)
    calls, send = answers(*[status_error(500)] * 5)
    with pytest.raises(VideodubError, match=r"^translate: a chat failed after 3 attempts at "):
        request(p, send)
    assert calls == [1, 2, 3] and p.stats.retries == 2
