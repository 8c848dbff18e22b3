"""The data model: :class:`JobScope` (one shared object per key, closed last-made-first when
the job ends), a segment's JSON round trip, the job context's cancellation, and the worker
hint a stage gives or gets by default."""

from __future__ import annotations

import threading

import pytest

from videodub.errors import Cancelled
from videodub.model import JobContext, JobScope, Segment, WorkerHint, worker_hint


# -- JobScope --------------------------------------------------------------------------

def test_shared_creates_one_object_per_key():
    scope = JobScope()
    made: list[str] = []

    def make(name: str):
        def create() -> dict:
            made.append(name)
            return {"name": name}
        return create

    client = scope.shared(("client", "http://127.0.0.1:9/v1"), make("client"))
    again = scope.shared(("client", "http://127.0.0.1:9/v1"), make("client again"))
    limiter = scope.shared(("limiter", "chat"), make("limiter"))
    assert again is client and limiter is not client
    assert made == ["client", "limiter"]


def test_shared_creates_once_when_threads_ask_together():
    scope = JobScope()
    made: list[int] = []
    barrier = threading.Barrier(8)
    got: list[object] = []

    def create() -> object:
        made.append(1)
        return object()

    def ask() -> None:
        barrier.wait(10)
        got.append(scope.shared("client", create))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert made == [1]
    assert len(got) == 8 and all(obj is got[0] for obj in got)


def test_close_calls_the_closers_last_made_first_and_forgets_the_objects():
    scope = JobScope()
    closed: list[str] = []
    client = scope.shared("client", lambda: "client", closed.append)
    scope.shared("plain", lambda: "no closer")
    scope.shared("limiter", lambda: "limiter", closed.append)
    scope.shared("client", lambda: "another client", closed.append)  # already there
    scope.close()
    assert closed == ["limiter", "client"]
    scope.close()  # nothing left to close
    assert closed == ["limiter", "client"]
    # The next user of the scope gets new objects, not closed ones.
    assert scope.shared("client", lambda: "fresh client") == "fresh client" != client


def test_the_scope_carries_the_jobs_registry():
    registry = object()
    assert JobScope(registry).registry is registry  # type: ignore[arg-type]
    assert JobScope().registry is None


# -- Segment, JobContext, worker hints -------------------------------------------------

def test_a_segment_survives_its_json_and_ignores_keys_it_does_not_know():
    seg = Segment(3, 1.25, 2.5, "Hello.", "Hola.", slot_start=1.2, slot_end=2.9, tts_rate=1.1,
                  max_speed=1.3, audio_path="/cache/clips/x.wav", synth_duration=1.0,
                  stretch=1.2, overflow=0.05, flags=["clip_cached"], extra={"chunk": 2})
    data = seg.to_json()
    assert data["speed_factor"] == pytest.approx(1.32)  # written for people, derived again
    assert Segment.from_json({**data, "added_by_a_later_version": 1}) == seg
    assert Segment(0, 0.0, 1.0).speed_factor is None  # not mixed yet


def test_a_cancelled_context_says_so_at_the_next_check(tmp_path):
    ctx = JobContext(tmp_path / "run", "es", None)
    assert ctx.work_dir == tmp_path / "run" / "work" and ctx.work_dir.is_dir()
    ctx.check_cancelled()
    ctx.note("one line was too long")
    ctx.cancel_event.set()
    with pytest.raises(Cancelled):
        ctx.check_cancelled()
    assert ctx.notes == ["one line was too long"]


def test_a_stage_without_a_hint_gets_the_conservative_default():
    class Hinting:
        def worker_hint(self) -> WorkerHint:
            return WorkerHint(cpu_bound=False, max_concurrency=4, reason="provider limit")

    assert worker_hint(object()) == WorkerHint()
    assert WorkerHint().cpu_bound is True
    assert worker_hint(Hinting()).max_concurrency == 4


def test_a_closer_that_fails_does_not_stop_the_others(caplog):
    scope = JobScope()
    closed: list[str] = []

    def broken(_obj) -> None:
        raise OSError("connection already gone")

    scope.shared("first", lambda: "first", closed.append)
    scope.shared("broken", lambda: "broken", broken)
    scope.shared("last", lambda: "last", closed.append)
    scope.close()  # does not raise: closing never replaces the job's own outcome
    assert closed == ["last", "first"]
    assert "closing a shared object failed" in caplog.text


def test_creating_a_shared_object_may_ask_for_another():
    """A client made for the scope may want the scope's limiter: no deadlock."""
    scope = JobScope()
    got: list[object] = []

    def client() -> tuple:
        return ("client", scope.shared("limiter", lambda: "limiter"))

    worker = threading.Thread(target=lambda: got.append(scope.shared("client", client)),
                              daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "JobScope.shared deadlocked on a nested call"
    assert got == [("client", "limiter")]
