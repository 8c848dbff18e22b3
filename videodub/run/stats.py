"""Live per-stage counters and process sampling, shared by the runner, the display and the report."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil


@dataclass
class StageStats:
    name: str
    impl: str = ""
    unit: str = "segments"
    total: float | None = None
    done: float = 0
    items: int = 0
    workers: int = 0
    workers_busy: int = 0
    worker_reason: str = ""
    started: float | None = None
    finished: float | None = None
    cpu_s: float = 0.0
    peak_rss: int = 0
    cached: bool = False
    # Time it waited for input after it began: a streaming stage's wall includes its
    # upstream's pace; wall - wait is its own.
    wait_s: float = 0.0
    # Seconds weighted by the share of the usable CPUs other processes kept busy meanwhile:
    # ``load`` in the report, what tells a slow stage from a busy machine.
    others_busy_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # Stages without a pool count as one busy worker while they run.
    pooled: bool = False

    def begin(self) -> None:
        with self._lock:
            if self.started is None:
                self.started = time.monotonic()
                if not self.pooled:
                    self.workers_busy = 1

    def finish(self) -> None:
        with self._lock:
            self.finished = time.monotonic()
            if not self.pooled:
                self.workers_busy = 0
            if self.total is None:
                self.total = self.done

    def advance(self, amount: float = 1, items: int = 1) -> None:
        with self._lock:
            self.done += amount
            self.items += items

    def waited(self, seconds: float) -> None:
        with self._lock:
            if self.started is not None and self.finished is None:
                self.wait_s += seconds

    def busy(self, delta: int) -> None:
        with self._lock:
            self.workers_busy = max(0, self.workers_busy + delta)

    @property
    def active(self) -> bool:
        return self.started is not None and self.finished is None

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    @property
    def throughput(self) -> float:
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    def as_report(self, origin: float | None = None) -> dict:
        """The stage's figures; with ``origin`` (the job's start, monotonic), also when it
        began and ended from then (``start_s``, ``end_s``): stages overlap."""
        since = {}
        if origin is not None and self.started is not None:
            since = {"start_s": round(self.started - origin, 3),
                     "end_s": round((self.finished or time.monotonic()) - origin, 3)}
        return {
            "impl": self.impl,
            "wall_s": round(self.elapsed, 3),
            **since,
            "cpu_s": round(self.cpu_s, 3),
            "items": self.items,
            "unit": self.unit,
            "done": round(self.done, 3),
            "workers": self.workers,
            "worker_reason": self.worker_reason,
            "peak_rss_mb": round(self.peak_rss / 2**20, 1),
            "cached": self.cached,
            "wait_s": round(min(self.wait_s, self.elapsed), 3),
            "load": round(self.others_busy_s / self.elapsed, 3) if self.elapsed > 0 else 0.0,
        }


class ProcessMonitor(threading.Thread):
    """Samples process CPU and RSS (child processes included); splits each interval's CPU among the stages busy in it.

    A child process's CPU time is counted when it exits, so the runner samples once more
    just before a stage finishes: its last ffmpeg run is charged to it. RSS is the process's
    own plus every live child's (ffmpeg, a download): what the job holds in memory."""

    def __init__(self, stages: list[StageStats], interval: float = 0.1,
                 children: Callable[[], list[int]] | None = None) -> None:
        super().__init__(name="videodub-monitor", daemon=True)
        self.stages = stages
        self.interval = interval
        self.proc = psutil.Process()
        self.cpu_percent = 0.0
        self.rss = 0  # this process and its children
        self.peak_rss = 0
        self.children_rss = 0
        self.peak_children_rss = 0
        self.cpu_total = 0.0
        self._halt = threading.Event()
        self._sample_lock = threading.Lock()
        self._last_cpu = self._cpu()
        self._last_time = self._t0 = time.monotonic()
        # (seconds since start, CPU %, RSS MiB with children), one point per ``every`` seconds.
        self.timeline: list[tuple[float, float, float]] = []
        self.every = 0.5
        try:
            self._cpus = sorted(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            self._cpus = list(range(psutil.cpu_count() or 1))
        self._last_busy = self._machine_busy()
        self._last_children_cpu = 0.0
        # The job's child processes by pid (JobContext.child_pids): asking the job is cheap,
        # where psutil's children() reads every process on the machine (~7 ms a sample).
        self._child_pids = children or (lambda: [])
        self._child_procs: dict[int, psutil.Process] = {}
        self.others_busy_s = 0.0  # the whole run's, as StageStats.others_busy_s

    def _cpu(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def _machine_busy(self) -> float:
        """CPU seconds every process has used on the CPUs this one may run on."""
        try:
            times = psutil.cpu_times(percpu=True)
        except (psutil.Error, OSError):
            return 0.0
        busy = 0.0
        for i in self._cpus:
            if i < len(times):
                t = times[i]
                busy += sum(t) - t.idle - getattr(t, "iowait", 0.0)
        return busy

    def _children(self) -> tuple[int, float]:
        """RSS and CPU seconds of the running child processes (ffmpeg): a stage's memory
        includes what it spawns, and their CPU is not the machine's other load."""
        rss, cpu = 0, 0.0
        pids = set(self._child_pids())
        for pid in list(self._child_procs):
            if pid not in pids:
                del self._child_procs[pid]
        for pid in pids:
            try:
                child = self._child_procs.get(pid) or self._child_procs.setdefault(
                    pid, psutil.Process(pid))
                rss += child.memory_info().rss
                t = child.cpu_times()
                cpu += t.user + t.system
            except psutil.Error:
                pass
        return rss, cpu

    def sample(self) -> None:
        with self._sample_lock:
            self._sample()

    def _sample(self) -> None:
        now_cpu, now = self._cpu(), time.monotonic()
        delta = max(0.0, now_cpu - self._last_cpu)
        elapsed = max(now - self._last_time, 1e-6)
        self._last_cpu, self._last_time = now_cpu, now
        self.cpu_total += delta
        children_rss, children_cpu = self._children()
        machine_busy = self._machine_busy()
        # Ours: this process, its reaped children (in ``delta``) and its running ones.
        ours = delta + max(0.0, children_cpu - self._last_children_cpu)
        others = max(0.0, machine_busy - self._last_busy - ours)
        self._last_busy, self._last_children_cpu = machine_busy, children_cpu
        share = min(1.0, others / (elapsed * max(len(self._cpus), 1)))
        self.others_busy_s += share * elapsed
        if elapsed >= self.interval / 2:  # a final sample right after the last one says nothing
            self.cpu_percent = 100.0 * delta / elapsed
        try:
            self.rss = self.proc.memory_info().rss + children_rss
        except psutil.Error:
            return
        self.children_rss = children_rss
        self.peak_rss = max(self.peak_rss, self.rss)
        self.peak_children_rss = max(self.peak_children_rss, self.children_rss)
        at = now - self._t0
        if not self.timeline or at - self.timeline[-1][0] >= self.every:
            self.timeline.append((round(at, 2), round(self.cpu_percent, 1),
                                  round(self.rss / 2**20, 1)))
        active = [s for s in self.stages if s.active]
        for s in active:
            s.peak_rss = max(s.peak_rss, self.rss)
            s.others_busy_s += share * elapsed
        # CPU goes to the stages doing work (by busy workers), not to those waiting for input.
        busy = [s for s in active if s.workers_busy > 0] or active
        weights = [max(s.workers_busy, 1) for s in busy]
        for s, w in zip(busy, weights):
            s.cpu_s += delta * w / sum(weights)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=1)
        self.sample()
