"""How many workers each stage gets: usable CPUs, available memory, and provider limits."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from videodub.model import WorkerHint

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by a cgroup quota (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), if any."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def cgroup_memory_available(root: Path = CGROUP_ROOT) -> int | None:
    """Bytes left under a cgroup memory limit, if one is set."""
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit = (root / limit_file).read_text().strip()
            usage = int((root / usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:
            return None
        return max(0, int(limit) - usage)
    return None


@dataclass(frozen=True)
class Machine:
    cpus: int  # usable CPUs: affinity and cgroup quota, not just the core count
    memory_available: int  # bytes
    cpu_reason: str

    @classmethod
    def detect(cls) -> Machine:
        try:
            affinity = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            affinity = psutil.cpu_count() or 1
        quota = cgroup_cpu_limit()
        cpus = affinity
        reason = f"{affinity} in affinity"
        if quota is not None and math.floor(quota) < cpus:
            cpus = max(1, math.floor(quota))
            reason += f", cgroup quota {quota:g}"
        memory = psutil.virtual_memory().available
        cg_mem = cgroup_memory_available()
        if cg_mem is not None:
            memory = min(memory, cg_mem)
        return cls(cpus=cpus, memory_available=memory, cpu_reason=reason)


@dataclass(frozen=True)
class WorkerPlan:
    workers: int
    reason: str


def plan_workers(hint: WorkerHint, machine: Machine, configured: int = 0,
                 runner_cap: int = 0, pending_items: int | None = None,
                 memory_share: float = 0.5) -> WorkerPlan:
    """Choose a pool size for one stage and say which limit chose it.

    - CPU-bound work gets at most one worker per usable CPU; I/O-bound work (network
      providers) is not limited by CPUs, only by the provider's concurrency.
    - Workers times the stage's per-worker memory estimate stays within ``memory_share`` of
      the available memory.
    - The implementation's hard cap (``max_concurrency``), the stage's ``workers`` option and
      the runner's ``max_workers`` apply last.
    """
    limits: list[tuple[int, str]] = []
    if hint.cpu_bound:
        limits.append((machine.cpus, f"cpu: {machine.cpus} usable ({machine.cpu_reason})"))
    else:
        limits.append((64, "I/O-bound: 64 at most"))
    mem_workers = int(machine.memory_available * memory_share / max(hint.memory_mb, 1) / 2**20)
    limits.append((mem_workers, f"memory: {machine.memory_available / 2**30:.1f} GiB available, "
                                f"~{hint.memory_mb:.0f} MiB per worker"))
    if hint.max_concurrency:
        limits.append((hint.max_concurrency,
                       f"implementation limit {hint.max_concurrency}"
                       + (f" ({hint.reason})" if hint.reason else "")))
    if configured:
        limits.append((configured, f"configured workers={configured}"))
    if runner_cap:
        limits.append((runner_cap, f"runner.max_workers={runner_cap}"))
    if pending_items is not None:
        limits.append((max(1, pending_items), f"only {pending_items} items"))
    workers, reason = min(limits, key=lambda item: item[0])
    return WorkerPlan(workers=max(1, workers), reason=reason)
