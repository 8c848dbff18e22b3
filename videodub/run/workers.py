"""How many workers each stage gets: usable CPUs, available memory, and the stage's own limits."""

from __future__ import annotations

from dataclasses import dataclass

from videodub.machine import Machine
from videodub.model import WorkerHint


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
