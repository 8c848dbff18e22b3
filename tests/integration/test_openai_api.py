"""The OpenAI provider's transport against the loopback server: a request in flight is
abandoned as soon as the job is cancelled, not when the server answers."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from conftest import TEST_KEY_ENV

from videodub.errors import Cancelled
from videodub.providers import aio
from videodub.providers.openai_api import OpenAIOptions, OpenAIProvider


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
