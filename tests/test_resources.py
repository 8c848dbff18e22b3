"""Worker pool sizing: cgroup limits read from (fake) cgroup files, and which limit binds."""

from __future__ import annotations

from pathlib import Path

import pytest

from videodub import machine as resources
from videodub.machine import Machine, cgroup_cpu_limit, cgroup_memory_available
from videodub.model import WorkerHint
from videodub.run.workers import plan_workers

GiB = 2**30
MiB = 2**20


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- cgroup files ----------------------------------------------------------------------

@pytest.mark.parametrize(("cpu_max", "expected"), [
    ("150000 100000\n", 1.5),
    ("200000 100000\n", 2.0),
    ("50000 100000\n", 0.5),
    ("max 100000\n", None),
])
def test_cgroup_v2_cpu_quota(tmp_path, cpu_max, expected):
    write(tmp_path, "cpu.max", cpu_max)
    assert cgroup_cpu_limit(tmp_path) == expected


@pytest.mark.parametrize(("quota", "period", "expected"), [
    ("150000\n", "100000\n", 1.5),
    ("300000\n", "100000\n", 3.0),
    ("-1\n", "100000\n", None),  # v1 writes -1 for "no quota"
])
def test_cgroup_v1_cpu_quota(tmp_path, quota, period, expected):
    write(tmp_path, "cpu/cpu.cfs_quota_us", quota)
    write(tmp_path, "cpu/cpu.cfs_period_us", period)
    assert cgroup_cpu_limit(tmp_path) == expected


def test_no_cgroup_files_means_no_cpu_limit(tmp_path):
    assert cgroup_cpu_limit(tmp_path) is None


def test_unreadable_cpu_max_falls_back_to_v1(tmp_path):
    write(tmp_path, "cpu.max", "garbage\n")
    write(tmp_path, "cpu/cpu.cfs_quota_us", "150000")
    write(tmp_path, "cpu/cpu.cfs_period_us", "100000")
    assert cgroup_cpu_limit(tmp_path) == 1.5


def test_garbage_cgroup_files_mean_no_cpu_limit(tmp_path):
    write(tmp_path, "cpu.max", "garbage\n")
    write(tmp_path, "cpu/cpu.cfs_quota_us", "lots")
    write(tmp_path, "cpu/cpu.cfs_period_us", "100000")
    assert cgroup_cpu_limit(tmp_path) is None


def test_cgroup_v2_memory_left(tmp_path):
    write(tmp_path, "memory.max", f"{2 * GiB}\n")
    write(tmp_path, "memory.current", f"{512 * MiB}\n")
    assert cgroup_memory_available(tmp_path) == 2 * GiB - 512 * MiB


def test_cgroup_v2_memory_unlimited(tmp_path):
    write(tmp_path, "memory.max", "max\n")
    write(tmp_path, "memory.current", "12345\n")
    assert cgroup_memory_available(tmp_path) is None


def test_cgroup_memory_over_limit_is_zero_not_negative(tmp_path):
    write(tmp_path, "memory.max", f"{GiB}\n")
    write(tmp_path, "memory.current", f"{GiB + 4096}\n")
    assert cgroup_memory_available(tmp_path) == 0


def test_cgroup_v1_memory(tmp_path):
    write(tmp_path, "memory/memory.limit_in_bytes", f"{4 * GiB}\n")
    write(tmp_path, "memory/memory.usage_in_bytes", f"{GiB}\n")
    assert cgroup_memory_available(tmp_path) == 3 * GiB


def test_cgroup_v1_memory_unlimited(tmp_path):
    # v1 reports "no limit" as a page-rounded 2**63 - 1.
    write(tmp_path, "memory/memory.limit_in_bytes", "9223372036854771712\n")
    write(tmp_path, "memory/memory.usage_in_bytes", f"{GiB}\n")
    assert cgroup_memory_available(tmp_path) is None


def test_no_cgroup_memory_files(tmp_path):
    assert cgroup_memory_available(tmp_path) is None


# -- the machine -----------------------------------------------------------------------

def test_machine_takes_the_cgroup_quota_below_the_affinity(monkeypatch):
    monkeypatch.setattr(resources.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(resources, "cgroup_cpu_limit", lambda: 1.5)
    monkeypatch.setattr(resources, "cgroup_memory_available", lambda: 256 * MiB)
    machine = Machine.detect()
    assert machine.cpus == 1
    assert machine.cpu_reason == "4 in affinity, cgroup quota 1.5"
    assert machine.memory_available <= 256 * MiB


def test_machine_ignores_a_quota_above_the_affinity(monkeypatch):
    monkeypatch.setattr(resources.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(resources, "cgroup_cpu_limit", lambda: 8.0)
    monkeypatch.setattr(resources, "cgroup_memory_available", lambda: None)
    machine = Machine.detect()
    assert (machine.cpus, machine.cpu_reason) == (2, "2 in affinity")
    assert machine.memory_available > 0


def test_machine_keeps_one_cpu_under_a_fractional_quota(monkeypatch):
    monkeypatch.setattr(resources.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(resources, "cgroup_cpu_limit", lambda: 0.5)
    assert Machine.detect().cpus == 1


def test_real_machine_is_sane():
    machine = Machine.detect()
    assert machine.cpus >= 1 and machine.memory_available > 0
    assert "affinity" in machine.cpu_reason


# -- plan_workers ----------------------------------------------------------------------

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
