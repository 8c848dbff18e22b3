"""How segments move between stage threads: bounded pipes and ordered worker pools.

Everything here gives up as soon as the job is cancelled: a thread blocked on a full pipe,
an empty pipe or a busy pool checks the job's cancel event at least every 0.1 s.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from videodub.model import JobContext
from videodub.run.stats import StageStats

_END = object()
POLL_S = 0.1


class Pipe:
    """A bounded queue between two stages that gives up when the job is cancelled."""

    def __init__(self, ctx: JobContext, maxsize: int) -> None:
        self.ctx = ctx
        self.q: queue.Queue = queue.Queue(maxsize=maxsize)

    def put(self, item: Any) -> None:
        while True:
            self.ctx.check_cancelled()
            try:
                self.q.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.put(_END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            self.ctx.check_cancelled()
            try:
                item = self.q.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item


def _result(fut: Future, ctx: JobContext) -> Any:
    while not fut.done():
        ctx.check_cancelled()
        wait([fut], timeout=POLL_S)
    return fut.result()


def ordered_pool(fn: Callable[[Any], Any], items: Iterable[Any], workers: int, ctx: JobContext,
                 stats: StageStats, name: str) -> Iterator[Any]:
    """Apply ``fn`` to items with ``workers`` threads; yield results in input order, each as
    soon as it and all before it are ready. At most ``2 * workers`` items are in flight.

    Items are pulled and submitted by a feeder thread, so a finished result is passed on
    at once even while the next input is still on its way."""

    def call(item: Any) -> Any:
        ctx.check_cancelled()
        stats.busy(+1)
        try:
            return fn(item)
        finally:
            stats.busy(-1)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"videodub-{name}")
    submitted: queue.Queue = queue.Queue()
    slots = threading.BoundedSemaphore(2 * workers)

    def feed() -> None:
        try:
            for item in items:
                while not slots.acquire(timeout=POLL_S):
                    ctx.check_cancelled()
                submitted.put(pool.submit(call, item))
            submitted.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            submitted.put(exc)

    feeder = threading.Thread(target=feed, name=f"videodub-{name}-feed", daemon=True)
    feeder.start()
    try:
        while True:
            try:
                entry = submitted.get(timeout=POLL_S)
            except queue.Empty:
                ctx.check_cancelled()
                continue
            if entry is _END:
                return
            if isinstance(entry, BaseException):
                raise entry
            result = _result(entry, ctx)
            slots.release()
            yield result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def waiting(items: Iterable[Any], stats: StageStats) -> Iterator[Any]:
    """Iterate, counting the stage as idle (not busy) while it waits for the next item."""
    return waited(items, stats, idle=True)


def waited(items: Iterable[Any], stats: StageStats, idle: bool = False) -> Iterator[Any]:
    """Iterate, adding the time spent waiting for each item to the stage's ``wait_s`` (alone:
    for pooled stages, whose pool counts busy workers itself; ``idle``: also counting the
    stage's one worker as not busy meanwhile)."""
    it = iter(items)
    while True:
        if idle:
            stats.busy(-1)
        t0 = time.monotonic()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            if idle:
                stats.busy(+1)
            stats.waited(time.monotonic() - t0)
        yield item
