"""What this machine (or the container or Ray task it runs in) lets a job use: CPUs and memory."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

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


def ray_task_cpus() -> float | None:
    """CPUs Ray assigned to the task this process runs (``hydra/launcher=ray``), if it runs
    one: Ray does not pin a task to CPUs, it only counts them, so affinity shows the host's."""
    ray = sys.modules.get("ray")  # never imported here: only a process Ray started has it
    if ray is None:
        return None
    try:
        if not ray.is_initialized():
            return None
        context = ray.get_runtime_context()
        if context.get_task_id() is None:  # the driver, not a task
            return None
        cpus = context.get_assigned_resources().get("CPU")
    except Exception:  # noqa: BLE001 - any Ray version or state without the answer
        return None
    return float(cpus) if cpus else None


@dataclass(frozen=True)
class Machine:
    cpus: int  # usable CPUs: affinity and cgroup quota, not just the core count
    memory_available: int  # bytes
    cpu_reason: str
    memory_total: int = 0  # bytes, for the machine's class in the run history
    gpu: str | None = None  # the first GPU's name, when a driver shows one

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
        ray_cpus = ray_task_cpus()
        if ray_cpus is not None and math.floor(ray_cpus) < cpus:
            cpus = max(1, math.floor(ray_cpus))
            reason += f", Ray task given {ray_cpus:g} CPU"
        memory = psutil.virtual_memory().available
        cg_mem = cgroup_memory_available()
        if cg_mem is not None:
            memory = min(memory, cg_mem)
        return cls(cpus=cpus, memory_available=memory, cpu_reason=reason,
                   memory_total=psutil.virtual_memory().total, gpu=detect_gpu())


def detect_gpu(root: Path = Path("/proc/driver/nvidia/gpus")) -> str | None:
    """The first NVIDIA GPU's model as the driver reports it; None without one."""
    try:
        for info in sorted(root.glob("*/information")):
            for line in info.read_text().splitlines():
                if line.startswith("Model:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None
