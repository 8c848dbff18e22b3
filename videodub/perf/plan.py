"""What the runner would choose on this machine for a job, without running it: each stage's
workers and the limit that set them (the runner's own ``plan_workers``), chunk sizes, and the
memory left over."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from videodub.api import compose_job
from videodub.machine import Machine
from videodub.model import JobScope, worker_hint
from videodub.plugins import Registry, installed_registry
from videodub.run.workers import plan_workers

# A plan needs a job, not a file: these stand in when the command line names none.
PLACEHOLDERS = {"input": "plan.mp4", "target_lang": "es"}


@dataclass
class StagePlan:
    stage: str
    impl: str
    workers: int
    reason: str
    cpu_bound: bool
    memory_mb_per_worker: float


@dataclass
class Plan:
    machine: dict[str, Any]
    profile: str
    stages: list[StagePlan]
    chunks: dict[str, Any]
    memory_planned_mb: float
    memory_headroom_mb: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        m = self.machine
        out = [f"machine: {m['usable_cpus']} usable CPUs ({m['cpu_reason']}), "
               f"{m['memory_available_mb']} MiB available; profile {self.profile}"]
        for s in self.stages:
            out.append(f"  {s.stage:<10} {s.impl:<15} {s.workers:>2} workers  ({s.reason})")
        out.append("chunks: " + ", ".join(f"{k}={v}" for k, v in self.chunks.items()))
        out.append(f"memory: ~{self.memory_planned_mb:.0f} MiB planned for the pools, "
                   f"{self.memory_headroom_mb:.0f} MiB headroom")
        return out


def make_plan(overrides: Sequence[str] = (), registry: Registry | None = None,
              machine: Machine | None = None) -> Plan:
    """The plan for the job these overrides make (placeholders for a missing input/language)."""
    registry = registry or installed_registry()
    given = {o.split("=", 1)[0].lstrip("+") for o in overrides}
    full = [*overrides, *(f"{k}={v}" for k, v in PLACEHOLDERS.items() if k not in given)]
    job = compose_job(full, registry)
    machine = machine or Machine.detect()
    scope = JobScope(registry)
    stages = []
    try:
        for stage, opts in job.stages.items():
            obj = registry.get(stage, opts.impl).create(opts, scope)
            hint = worker_hint(obj)
            plan = plan_workers(hint, machine, configured=opts.workers,
                                runner_cap=job.runner.max_workers)
            stages.append(StagePlan(stage, opts.impl, plan.workers, plan.reason, hint.cpu_bound,
                                    hint.memory_mb))
    finally:
        scope.close()
    planned = sum(s.workers * s.memory_mb_per_worker for s in stages)
    available = machine.memory_available / 2**20
    chunks = {"translate.batch_size": getattr(job.stages["translate"], "batch_size", None),
              "runner.queue_size": job.runner.queue_size}
    return Plan(
        machine={"usable_cpus": machine.cpus, "cpu_reason": machine.cpu_reason,
                 "memory_available_mb": round(available), "gpu": machine.gpu},
        profile=job.profile_name, stages=stages, chunks=chunks,
        memory_planned_mb=round(planned, 1), memory_headroom_mb=round(available - planned, 1))
