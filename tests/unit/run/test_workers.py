"""Worker pool sizing: one worker per CPU for CPU-bound work, fewer when memory or the
implementation limits it, what is configured, the runner's cap, and the reason given."""

from __future__ import annotations

from videodub.machine import Machine
from videodub.model import WorkerHint
from videodub.run.workers import plan_workers

GiB = 2**30
MiB = 2**20

BIG = Machine(cpus=8, memory_available=64 * GiB, cpu_reason="8 in affinity")


def test_cpu_bound_work_gets_one_worker_per_cpu():
    plan = plan_workers(WorkerHint(cpu_bound=True, memory_mb=100), BIG)
    assert plan.workers == 8
    assert plan.reason == "cpu: 8 usable (8 in affinity)"


def test_memory_binds_when_workers_would_not_fit():
    machine = Machine(cpus=8, memory_available=GiB, cpu_reason="8 in affinity")
    plan = plan_workers(WorkerHint(cpu_bound=True, memory_mb=200), machine)
    assert plan.workers == 2  # half of 1 GiB over 200 MiB each
    assert plan.reason.startswith("memory: 1.0 GiB available, ~200 MiB per worker")


def test_even_without_memory_there_is_one_worker():
    machine = Machine(cpus=8, memory_available=10 * MiB, cpu_reason="8 in affinity")
    plan = plan_workers(WorkerHint(cpu_bound=True, memory_mb=400), machine)
    assert plan.workers == 1
    assert plan.reason.startswith("memory:")


def test_implementation_limit_binds_and_says_why():
    hint = WorkerHint(cpu_bound=True, memory_mb=30, max_concurrency=1,
                      reason="one global synthesizer per process")
    plan = plan_workers(hint, BIG)
    assert plan.workers == 1
    assert plan.reason == "implementation limit 1 (one global synthesizer per process)"


def test_configured_workers_bind_below_the_machine():
    plan = plan_workers(WorkerHint(), BIG, configured=3)
    assert (plan.workers, plan.reason) == (3, "configured workers=3")


def test_configured_workers_cannot_exceed_the_cpus_for_cpu_bound_work():
    plan = plan_workers(WorkerHint(cpu_bound=True), BIG, configured=32)
    assert plan.workers == 8
    assert plan.reason.startswith("cpu: 8 usable")


def test_runner_max_workers_caps_every_pool():
    plan = plan_workers(WorkerHint(cpu_bound=False, memory_mb=1), BIG, configured=16,
                        runner_cap=2)
    assert (plan.workers, plan.reason) == (2, "runner.max_workers=2")


def test_io_bound_work_is_not_limited_by_cpus():
    small = Machine(cpus=2, memory_available=16 * GiB, cpu_reason="2 in affinity")
    hint = WorkerHint(cpu_bound=False, memory_mb=5, max_concurrency=8, reason="provider limit")
    plan = plan_workers(hint, small)
    assert plan.workers == 8 > small.cpus
    assert plan.reason == "implementation limit 8 (provider limit)"
    unlimited = plan_workers(WorkerHint(cpu_bound=False, memory_mb=5), small)
    assert (unlimited.workers, unlimited.reason) == (64, "I/O-bound: 64 at most")
    configured = plan_workers(WorkerHint(cpu_bound=False, memory_mb=5), small, configured=12)
    assert (configured.workers, configured.reason) == (12, "configured workers=12")


def test_pending_items_bound_the_pool():
    plan = plan_workers(WorkerHint(cpu_bound=False, memory_mb=1), BIG, pending_items=1)
    assert (plan.workers, plan.reason) == (1, "only 1 items")


def test_zero_means_no_limit_from_configuration():
    plan = plan_workers(WorkerHint(), BIG, configured=0, runner_cap=0)
    assert plan.workers == 8
