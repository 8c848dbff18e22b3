"""Between stage threads: the bounded :class:`Pipe`, :func:`ordered_pool` and :func:`waiting`.

Where the order of events matters, the work waits for an event it needs (with a deadlock
breaker reached only when the code under test is broken), so a slow machine cannot fail a
test and broken code cannot pass it. A "still blocked" check waits a moment for something
that must never happen; it cannot fail on a slow machine, only miss a fault on one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from videodub.errors import Cancelled
from videodub.model import JobContext
from videodub.run.stats import StageStats
from videodub.run.streams import Pipe, ordered_pool, waiting

DEADLOCK_BREAKER = 5.0  # seconds; only reached when the behaviour under test is broken
STILL_BLOCKED_S = 0.3  # how long to watch for something that must not happen


def _ctx(tmp_path: Path) -> JobContext:
    return JobContext(tmp_path, "en", "en")


class Outcome:
    """Runs ``fn`` in a thread and keeps what it returned or raised."""

    def __init__(self, fn) -> None:
        self.started = threading.Event()
        self.value = None
        self.error: BaseException | None = None

        def run() -> None:
            self.started.set()
            try:
                self.value = fn()
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def finished(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


# -- Pipe ------------------------------------------------------------------------------

def test_pipe_passes_items_in_order_and_ends_at_close(tmp_path):
    pipe = Pipe(_ctx(tmp_path), maxsize=2)

    def produce() -> None:
        for i in range(5):
            pipe.put(i)
        pipe.close()

    producer = Outcome(produce)
    assert list(pipe) == [0, 1, 2, 3, 4]
    assert producer.finished(DEADLOCK_BREAKER) and producer.error is None


def test_a_producer_blocked_on_a_full_pipe_gives_up_when_cancelled(tmp_path):
    ctx = _ctx(tmp_path)
    pipe = Pipe(ctx, maxsize=1)
    pipe.put("fills the pipe")
    producer = Outcome(lambda: pipe.put("has no room"))
    assert producer.started.wait(DEADLOCK_BREAKER)
    assert not producer.finished(STILL_BLOCKED_S)  # nobody reads: it waits for room
    ctx.cancel_event.set()
    assert producer.finished(DEADLOCK_BREAKER), "the producer never noticed the cancellation"
    assert isinstance(producer.error, Cancelled)
    assert pipe.q.qsize() == 1  # the item that had no room was never added


def test_a_consumer_waiting_on_an_empty_pipe_gives_up_when_cancelled(tmp_path):
    ctx = _ctx(tmp_path)
    pipe = Pipe(ctx, maxsize=4)
    consumer = Outcome(lambda: list(pipe))
    assert consumer.started.wait(DEADLOCK_BREAKER)
    assert not consumer.finished(STILL_BLOCKED_S)  # nothing came and the pipe is open
    ctx.cancel_event.set()
    assert consumer.finished(DEADLOCK_BREAKER), "the consumer never noticed the cancellation"
    assert isinstance(consumer.error, Cancelled)


def test_a_cancelled_job_puts_nothing_more(tmp_path):
    ctx = _ctx(tmp_path)
    pipe = Pipe(ctx, maxsize=4)
    ctx.cancel_event.set()
    with pytest.raises(Cancelled):
        pipe.put("late")
    assert pipe.q.empty()


# -- ordered_pool ----------------------------------------------------------------------


def test_ordered_pool_keeps_input_order(tmp_path):
    ctx = _ctx(tmp_path)
    released = {i: threading.Event() for i in range(6)}

    def work(i: int) -> int:
        # Each item waits for the one after it: they finish in reverse order.
        if i < 5:
            released[i + 1].wait(DEADLOCK_BREAKER)
        released[i].set()
        return i * 10

    assert list(ordered_pool(work, range(6), 6, ctx, StageStats("t"), "t")) == [
        0, 10, 20, 30, 40, 50]


def test_ordered_pool_stops_at_the_first_error(tmp_path):
    ctx = _ctx(tmp_path)
    seen = []

    def work(i: int) -> int:
        if i == 2:
            raise ValueError("item 2")
        return i

    with pytest.raises(ValueError, match="item 2"):
        for value in ordered_pool(work, range(10), 2, ctx, StageStats("t"), "t"):
            seen.append(value)
    assert seen == [0, 1]


def test_ordered_pool_gives_up_when_cancelled(tmp_path):
    ctx = _ctx(tmp_path)
    gate = threading.Event()

    def work(i: int) -> int:
        gate.wait(DEADLOCK_BREAKER)
        return i

    results = ordered_pool(work, range(4), 2, ctx, StageStats("t"), "t")
    threading.Timer(0.2, ctx.cancel_event.set).start()
    with pytest.raises(Cancelled):
        next(results)
    gate.set()


def test_ordered_pool_yields_a_result_before_asking_for_the_next_item(tmp_path):
    ctx = _ctx(tmp_path)
    asked_for_next, first_out = threading.Event(), threading.Event()
    waited_in_vain = []

    def items() -> Iterator[int]:
        yield 0
        asked_for_next.set()
        # An upstream stage that is still working: the next item comes much later.
        if not first_out.wait(DEADLOCK_BREAKER):
            waited_in_vain.append(True)
        yield 1

    def work(i: int) -> int:
        if i == 0:  # still running when the pool goes back to the upstream for more
            asked_for_next.wait(DEADLOCK_BREAKER)
        return i

    for value in ordered_pool(work, items(), 2, ctx, StageStats("t"), "t"):
        if value == 0:
            first_out.set()
    assert waited_in_vain == []


def test_ordered_pool_reports_a_failure_while_the_upstream_is_still_working(tmp_path):
    ctx = _ctx(tmp_path)
    asked_for_next, failure_seen = threading.Event(), threading.Event()
    waited_in_vain = []

    def items() -> Iterator[int]:
        yield 0
        asked_for_next.set()
        if not failure_seen.wait(DEADLOCK_BREAKER):
            waited_in_vain.append(True)
        yield 1

    def work(i: int) -> int:
        asked_for_next.wait(DEADLOCK_BREAKER)  # fails only once the pool is back upstream
        raise ValueError(f"item {i}")

    results = ordered_pool(work, items(), 2, ctx, StageStats("t"), "t")
    with pytest.raises(ValueError, match="item 0"):
        next(results)
    failure_seen.set()
    assert waited_in_vain == []


def test_ordered_pool_holds_at_most_two_items_per_worker(tmp_path):
    ctx = _ctx(tmp_path)
    gate, pulled, overfed = threading.Event(), [], threading.Event()
    fifth_pulled = threading.Event()

    def items() -> Iterator[int]:
        for i in range(20):
            pulled.append(i)
            if i == 4:
                fifth_pulled.set()  # four are in the pool; this one waits for a slot
            if i == 5:
                overfed.set()
            yield i

    def work(i: int) -> int:
        gate.wait(DEADLOCK_BREAKER)
        return i

    results = ordered_pool(work, items(), 2, ctx, StageStats("t", pooled=True), "t")
    consumer = Outcome(lambda: list(results))
    assert fifth_pulled.wait(DEADLOCK_BREAKER)
    assert not overfed.wait(STILL_BLOCKED_S), f"pulled {pulled} with 2 workers"
    gate.set()
    assert consumer.finished(DEADLOCK_BREAKER)
    assert consumer.value == list(range(20))


def test_ordered_pool_counts_busy_workers(tmp_path):
    ctx = _ctx(tmp_path)
    stats = StageStats("t", pooled=True)
    running = [threading.Event(), threading.Event()]
    gate = threading.Event()

    def work(i: int) -> int:
        running[i].set()
        gate.wait(DEADLOCK_BREAKER)
        return i

    consumer = Outcome(lambda: list(ordered_pool(work, range(2), 2, ctx, stats, "t")))
    assert all(event.wait(DEADLOCK_BREAKER) for event in running)
    assert stats.workers_busy == 2
    gate.set()
    assert consumer.finished(DEADLOCK_BREAKER) and consumer.value == [0, 1]
    assert stats.workers_busy == 0


def test_pool_and_feeder_threads_carry_the_stage_name_and_do_not_hold_the_process(tmp_path):
    # The runner finds a stage's leftover threads by these names (videodub-<stage>...).
    ctx = _ctx(tmp_path)
    feeder_threads, worker_threads = set(), set()

    def items() -> Iterator[int]:
        for i in range(4):
            feeder_threads.add((threading.current_thread().name,
                                threading.current_thread().daemon))
            yield i

    def work(i: int) -> int:
        worker_threads.add(threading.current_thread().name)
        return i

    assert list(ordered_pool(work, items(), 2, ctx, StageStats("tts"), "tts")) == [0, 1, 2, 3]
    assert feeder_threads == {("videodub-tts-feed", True)}
    assert worker_threads and all(name.startswith("videodub-tts_") for name in worker_threads)


def test_a_consumer_waiting_on_a_stalled_upstream_gives_up_when_cancelled(tmp_path):
    ctx = _ctx(tmp_path)
    release_upstream = threading.Event()

    def items() -> Iterator[int]:
        release_upstream.wait(DEADLOCK_BREAKER)  # an upstream stage that is still working
        yield 0

    consumer = Outcome(lambda: list(ordered_pool(lambda i: i, items(), 2, ctx,
                                                 StageStats("t"), "t")))
    assert consumer.started.wait(DEADLOCK_BREAKER)
    assert not consumer.finished(STILL_BLOCKED_S)
    ctx.cancel_event.set()
    assert consumer.finished(DEADLOCK_BREAKER / 2), "the consumer never noticed the cancellation"
    assert isinstance(consumer.error, Cancelled)
    release_upstream.set()


def test_a_cancelled_pool_returns_at_once_and_its_feeder_stops(tmp_path):
    """Cancelled while every slot is taken: the consumer does not wait for the work in hand,
    and the feeder, waiting for a slot that will never be freed, ends too."""
    ctx = _ctx(tmp_path)
    gate, started, finished = threading.Event(), threading.Event(), threading.Event()
    before = set(threading.enumerate())

    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    def work(i: int) -> int:
        started.set()
        gate.wait(DEADLOCK_BREAKER)
        finished.set()
        return i

    results = ordered_pool(work, endless(), 1, ctx, StageStats("t"), "t")
    consumer = Outcome(lambda: next(results))
    assert started.wait(DEADLOCK_BREAKER)
    ctx.cancel_event.set()
    assert consumer.finished(DEADLOCK_BREAKER / 2)
    assert isinstance(consumer.error, Cancelled)
    assert not finished.is_set()  # it returned while the work was still in hand
    gate.set()
    feeders = [t for t in threading.enumerate() if t not in before and t.name.endswith("-feed")]
    for feeder in feeders:
        feeder.join(DEADLOCK_BREAKER)
    assert not any(feeder.is_alive() for feeder in feeders), "the feeder outlived the job"


def test_ordered_pool_runs_at_most_workers_calls_at_once(tmp_path):
    # workers is a promise (espeak-ng: one at a time; max_in_flight for a server), not a hint.
    ctx = _ctx(tmp_path)
    lock, running, peak = threading.Lock(), [0], [0]

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return i

    assert list(ordered_pool(work, range(8), 2, ctx, StageStats("t"), "t")) == list(range(8))
    assert peak[0] <= 2


def test_an_upstream_failure_reaches_the_consumer_as_it_was_raised(tmp_path):
    def items() -> Iterator[int]:
        yield 0
        raise ValueError("upstream broke")

    with pytest.raises(ValueError, match="upstream broke"):
        list(ordered_pool(lambda i: i, items(), 2, _ctx(tmp_path), StageStats("t"), "t"))


def test_a_finished_call_counts_one_worker_less(tmp_path):
    ctx = _ctx(tmp_path)
    stats = StageStats("t", pooled=True)
    gates = [threading.Event(), threading.Event()]
    running = [threading.Event(), threading.Event()]

    def work(i: int) -> int:
        running[i].set()
        gates[i].wait(DEADLOCK_BREAKER)
        return i

    results = ordered_pool(work, range(2), 2, ctx, stats, "t")
    consumer = Outcome(lambda: next(results))
    assert all(event.wait(DEADLOCK_BREAKER) for event in running)
    gates[0].set()
    assert consumer.finished(DEADLOCK_BREAKER) and consumer.value == 0
    assert stats.workers_busy == 1  # the other call is still running
    gates[1].set()
    assert list(results) == [1]


# -- waiting ---------------------------------------------------------------------------

def test_waiting_counts_the_stage_idle_only_while_it_waits_for_input():
    stats = StageStats("mix")
    stats.begin()  # a stage without a pool counts as one busy worker while it runs
    seen_while_waiting: list[int] = []
    seen_while_working: list[int] = []

    def upstream() -> Iterator[str]:
        for item in ("a", "b"):
            seen_while_waiting.append(stats.workers_busy)
            yield item
        seen_while_waiting.append(stats.workers_busy)

    for item in waiting(upstream(), stats):
        seen_while_working.append(stats.workers_busy)
    assert seen_while_waiting == [0, 0, 0]
    assert seen_while_working == [1, 1]
    assert stats.workers_busy == 1  # back to busy after the upstream ended


def test_waited_adds_the_time_blocked_on_each_item():
    from videodub.run.stats import StageStats
    from videodub.run.streams import waited

    gate = threading.Event()
    st = StageStats("tts", pooled=True)
    st.begin()

    def slow():
        yield 1
        gate.wait(5)
        yield 2

    it = waited(slow(), st)
    assert next(it) == 1
    threading.Timer(0.2, gate.set).start()
    assert next(it) == 2
    assert list(it) == []
    # At least the time the second item was held back (no upper bound: the machine is shared).
    assert st.wait_s >= 0.15
