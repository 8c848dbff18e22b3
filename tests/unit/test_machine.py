"""The machine a job runs on: CPU and memory limits read from (fake) cgroup files, the
affinity, and which of them binds."""

from __future__ import annotations

from pathlib import Path

import pytest

from videodub import machine as resources
from videodub.machine import Machine, cgroup_cpu_limit, cgroup_memory_available

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


# -- Ray -------------------------------------------------------------------------------

class FakeRayContext:
    def __init__(self, task_id, cpus):
        self.task_id, self.cpus = task_id, cpus

    def get_task_id(self):
        return self.task_id

    def get_assigned_resources(self):
        return {"CPU": self.cpus} if self.cpus is not None else {}


class FakeRay:
    """What ``sys.modules["ray"]`` answers in a Ray task, in the driver, or not started."""

    def __init__(self, initialized=True, task_id="t1", cpus=1.0):
        self.initialized, self.context = initialized, FakeRayContext(task_id, cpus)

    def is_initialized(self):
        return self.initialized

    def get_runtime_context(self):
        return self.context


@pytest.mark.parametrize(("ray", "expected"), [
    (FakeRay(cpus=1.0), 1.0),
    (FakeRay(cpus=0.5), 0.5),
    (FakeRay(task_id=None), None),  # the driver process
    (FakeRay(initialized=False), None),
    (FakeRay(cpus=None), None),
])
def test_cpus_ray_assigned_to_the_task(monkeypatch, ray, expected):
    monkeypatch.setitem(__import__("sys").modules, "ray", ray)
    assert resources.ray_task_cpus() == expected


def test_a_ray_task_is_sized_to_its_cpus_not_the_hosts(monkeypatch):
    monkeypatch.setattr(resources.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(resources, "cgroup_cpu_limit", lambda: None)
    monkeypatch.setitem(__import__("sys").modules, "ray", FakeRay(cpus=2.0))
    machine = Machine.detect()
    assert machine.cpus == 2 and "Ray task given 2 CPU" in machine.cpu_reason
    monkeypatch.setitem(__import__("sys").modules, "ray", FakeRay(cpus=0.5))
    assert Machine.detect().cpus == 1
