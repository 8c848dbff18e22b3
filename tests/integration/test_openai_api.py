"""The OpenAI provider's transport against the loopback server: a request in flight is
abandoned as soon as the job is cancelled, not when the server answers; the server and key
a job uses when ``base_url`` or ``api_key_env`` is left empty."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from conftest import TEST_KEY_ENV, Talk

from videodub.api import dub
from videodub.errors import Cancelled
from videodub.providers import aio
from videodub.providers.openai_api import OpenAIOptions, OpenAIProvider
from videodub.run.runner import RunResult
from videodub.testing.loopback import LoopbackServer


def test_aio_run_cancels_a_request_in_flight(server_factory):
    server = server_factory(latency={"chat": 30.0})
    provider = OpenAIProvider("translate", OpenAIOptions(base_url=server.base_url,
                                                         api_key_env=TEST_KEY_ENV),
                              "chat", "gpt-4o-mini")
    cancel = threading.Event()
    abandoned = threading.Event()

    async def chat() -> Any:
        try:
            return await provider.request(
                lambda client: client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]),
                lambda raw: raw.parse(), what="a chat")
        except asyncio.CancelledError:
            abandoned.set()
            raise

    def cancel_when_sent() -> None:
        while server.stats()["chat"]["max_in_flight"] < 1 and not cancel.is_set():
            time.sleep(0.02)
        cancel.set()

    watcher = threading.Thread(target=cancel_when_sent, daemon=True)
    watcher.start()
    try:
        with pytest.raises(Cancelled):
            aio.run(chat(), cancel)
        # Raised while the server still held the request: nothing was answered.
        assert [r for r in server.requests if r.route == "chat"] == []
        assert abandoned.wait(5), "the request kept running on the provider loop"
    finally:
        cancel.set()
        watcher.join()


OPENAI_STAGES = ("transcribe", "translate", "tts")
# What $OPENAI_API_KEY holds in the tests below: it must never reach their servers.
ENVIRONMENT_KEY = "sk-environment-only-3b8e2f71c9d4"


def dub_with(media: Talk, run_dir, *overrides: str) -> RunResult:
    """All three OpenAI stages, set by ``overrides``, dubbing ``media`` into Spanish."""
    stages = [f"{stage}=openai" for stage in OPENAI_STAGES]
    return dub([f"input={media.path}", "target_lang=es", f"cache_dir={run_dir / 'cache'}",
                *stages, *overrides], run_dir / "run")


def test_an_empty_api_key_env_sends_no_key_from_the_environment(four_lines, tmp_path,
                                                                monkeypatch):
    """`<stage>.api_key_env=''` is for a server that needs no key: the job runs against
    one, and the key in $OPENAI_API_KEY is never sent to it."""
    monkeypatch.setenv("OPENAI_API_KEY", ENVIRONMENT_KEY)
    with LoopbackServer() as server:  # requires no key
        keyless = [o for stage in OPENAI_STAGES
                   for o in (f"{stage}.base_url={server.base_url}", f"{stage}.api_key_env=''")]
        result = dub_with(four_lines, tmp_path, *keyless)

    assert result.report["status"] == "ok"
    assert {r.route for r in server.requests} == {"models", "transcriptions", "chat", "speech"}
    sent = [r.authorization for r in server.requests]
    assert not [header for header in sent if header and ENVIRONMENT_KEY in header]


def test_openai_base_url_is_used_when_base_url_is_empty(loopback, four_lines, tmp_path,
                                                        monkeypatch):
    """With `<stage>.base_url` empty, every stage sends its requests to $OPENAI_BASE_URL."""
    monkeypatch.setenv("OPENAI_BASE_URL", loopback.base_url)
    keys = [f"{stage}.api_key_env={TEST_KEY_ENV}" for stage in OPENAI_STAGES]
    result = dub_with(four_lines, tmp_path, *keys)

    assert result.report["status"] == "ok"
    providers = result.report["providers"]
    assert {providers[stage]["endpoint"] for stage in OPENAI_STAGES} == {loopback.base_url}
    stats = loopback.stats()
    assert stats["transcriptions"]["requests"] >= 1 and stats["chat"]["requests"] >= 1
    assert stats["speech"]["requests"] == len(result.segments) > 0
