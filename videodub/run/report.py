"""``report.json``: what a job did, how long each stage took, what it used and what it cost."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
from dataclasses import dataclass
from enum import Enum
from typing import Any

import videodub
from videodub.config import JobConfig
from videodub.errors import Cancelled
from videodub.machine import Machine
from videodub.model import JobContext, Segment
from videodub.plugins import Registry, plugin_distribution
from videodub.providers.secrets import redact
from videodub.providers.usage import Estimate, ProviderStats
from videodub.run.stats import ProcessMonitor, StageStats


@dataclass
class JobRecord:
    """Everything the report is made from, as the runner has it when the job ends."""

    job: JobConfig
    registry: Registry
    machine: Machine
    status: str
    started_at: dt.datetime
    wall_s: float
    monitor: ProcessMonitor
    stats: dict[str, StageStats]
    ctx: JobContext | None
    source_segments: list[Segment]
    target_segments: list[Segment]
    providers: list[ProviderStats]
    outputs: dict[str, str]
    errors: list[BaseException]
    preflight_s: float | None = None
    estimate: Estimate | None = None
    quality: dict[str, Any] | None = None  # run/quality.py
    origin: float | None = None  # the job's start (time.monotonic), for the stages' timeline


def error_line(errors: list[BaseException]) -> str | None:
    """The first error as one line, secrets masked; None for a cancelled or clean job."""
    if not errors or isinstance(errors[0], Cancelled):
        return None
    lines = [line.strip() for line in str(errors[0]).splitlines() if line.strip()]
    return redact(lines[0]) if lines else type(errors[0]).__name__


def job_cost(providers: dict[str, dict[str, Any]]) -> float | None:
    """What the provider calls cost at list prices (None if no provider is priced)."""
    priced = [p["cost_usd"] for p in providers.values() if p["cost_usd"] is not None]
    return round(sum(priced), 6) if priced else None


def build_report(r: JobRecord) -> dict[str, Any]:
    job, ctx = r.job, r.ctx
    media = ctx.media if ctx else None
    duration = media.duration if media else None
    providers = {p.stage: p.as_report(job.prices) for p in r.providers}
    return {
        "status": r.status,
        "error": error_line(r.errors),
        "job": {
            "input": job.input,
            "target_lang": job.target_lang,
            "source_lang": ctx.source_lang if ctx else job.source_lang,
            "profile": job.profile_name,
            "implementations": {s: o.impl for s, o in job.stages.items()},
            "packages": {s: plugin_distribution(r.registry.get(s, o.impl).plugin)
                         for s, o in job.stages.items()},
            "options": {s: plain(dataclasses.asdict(o)) for s, o in job.stages.items()},
            "started_at": r.started_at.isoformat(timespec="seconds"),
            "host": platform.node(),
            "pid": os.getpid(),
            "media_duration_s": round(duration, 3) if duration else None,
            "title": media.extra.get("title") if media else None,
            "url": media.extra.get("url") if media else None,
            "segments": {"source": len(r.source_segments), "target": len(r.target_segments)},
        },
        "wall_s": round(r.wall_s, 3),
        "realtime_factor": round(r.wall_s / duration, 4) if duration else None,
        "cpu_s": round(r.monitor.cpu_total, 3),
        "peak_rss_mb": round(r.monitor.peak_rss / 2**20, 1),  # children included
        "peak_rss_children_mb": round(r.monitor.peak_children_rss / 2**20, 1),
        # Share of the usable CPUs other processes kept busy during the job (0-1).
        "load": round(r.monitor.others_busy_s / r.wall_s, 3) if r.wall_s > 0 else 0.0,
        "machine": {"usable_cpus": r.machine.cpus, "cpu_reason": r.machine.cpu_reason,
                    "memory_available_mb": round(r.machine.memory_available / 2**20),
                    "memory_total_mb": round(r.machine.memory_total / 2**20),
                    "gpu": r.machine.gpu},
        "stages": {name: st.as_report(r.origin) for name, st in r.stats.items()},
        "timeline": [list(point) for point in r.monitor.timeline],
        "preflight_s": round(r.preflight_s, 3) if r.preflight_s is not None else None,
        "providers": providers,
        "cost_usd": job_cost(providers),
        "estimate": r.estimate.as_report() if r.estimate else None,
        "quality": r.quality,
        "outputs": dict(r.outputs),
        "notes": list(ctx.notes) if ctx else [],
        "versions": {"videodub": videodub.__version__, "python": platform.python_version()},
    }


def plain(value: Any) -> Any:
    """Config values as JSON: enums by their value."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value
