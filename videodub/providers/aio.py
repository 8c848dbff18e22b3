"""One event loop, in one background thread, for every network call the stages make.

The runner's stages are threads (transcription, CPU-bound pools, ffmpeg); network providers
use the official ``openai`` SDK's async client. Their requests all run on this loop, so one
connection pool and one rate limiter per endpoint serve every stage, and a worker thread
only waits for its own request. :func:`run` waits while watching the job's cancel event: a
cancelled job cancels its requests (the HTTP connection is closed) instead of waiting for
them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from videodub.errors import Cancelled

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def loop() -> asyncio.AbstractEventLoop:
    """The process-wide provider loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            new = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(new)
                new.call_soon(ready.set)
                new.run_forever()

            threading.Thread(target=serve, name="videodub-aio", daemon=True).start()
            ready.wait()
            _loop = new
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    return asyncio.run_coroutine_threadsafe(coro, loop())


def wait(future: concurrent.futures.Future[T], cancel_event: threading.Event | None = None) -> T:
    """The future's result; cancels it and raises :class:`Cancelled` when the job is cancelled."""
    try:
        while True:
            if cancel_event is not None and cancel_event.is_set():
                raise Cancelled()
            try:
                return future.result(timeout=0.05)
            except concurrent.futures.TimeoutError:
                continue
    except BaseException:
        future.cancel()
        raise


def run(coro: Coroutine[Any, Any, T], cancel_event: threading.Event | None = None) -> T:
    """Run ``coro`` on the provider loop and wait for it from this (non-loop) thread."""
    return wait(submit(coro), cancel_event)
