"""The built-in advisor rules (registered through the ``perf_rules`` hook like any other)."""

from __future__ import annotations

from videodub.perf.advisor import Facts, Recommendation
from videodub.perf.record import overflow_lines

POOLED = ("translate", "tts")


def rate_limited(f: Facts) -> list[Recommendation]:
    """A stage waited on 429s: fewer requests at once, or a higher agreed rate."""
    out = []
    for p in f.latest.providers if f.latest else []:
        if p.rate_limited:
            st = next((s for s in f.latest.stages if s.stage == p.stage), None)
            now = st.workers if st and st.workers else 4
            out.append(Recommendation(
                f"{p.stage} waited on {p.rate_limited} rate-limit answers (429)", "high", "low",
                "providers", f"{p.stage}.max_in_flight={max(1, now // 2)}",
                f"{p.rate_limited} of {p.calls} calls were refused; if your account allows "
                f"more, raise {p.stage}.requests_per_minute instead"))
    return out


def pool_bottleneck(f: Facts) -> list[Recommendation]:
    """The slowest pooled stage ran fewer workers than the machine or its server allows."""
    if not f.latest or not f.latest.stages:
        return []
    slowest = max(f.latest.stages, key=lambda s: s.wall_s)
    if slowest.stage not in POOLED or slowest.wall_s < 0.3 * max(f.latest.wall_s, 1e-9):
        return []
    reason = slowest.worker_reason
    provider = next((p for p in f.latest.providers if p.stage == slowest.stage), None)
    if provider and not provider.rate_limited and "implementation limit" in reason:
        return [Recommendation(
            f"{slowest.stage} is the bottleneck and its server had room", "medium", "low",
            "throughput", f"{slowest.stage}.max_in_flight={slowest.workers * 2}",
            f"{slowest.stage} took {slowest.wall_s:.1f} s of {f.latest.wall_s:.1f} s with "
            f"{slowest.workers} requests at once and no 429s")]
    cpus = f.machine.get("usable_cpus") or f.latest.machine.get("usable_cpus") or 1
    if reason.startswith(("configured", "runner.max_workers")) and slowest.workers < cpus:
        key = "runner.max_workers" if reason.startswith("runner") else f"{slowest.stage}.workers"
        return [Recommendation(
            f"{slowest.stage} is the bottleneck and is held below the machine's CPUs", "medium",
            "low", "throughput", f"{key}=0",
            f"{slowest.workers} workers ({reason}); {cpus} CPUs are usable")]
    return []


def memory_headroom(f: Facts) -> list[Recommendation]:
    """A pool was sized by the memory estimate, but the run used far less than available."""
    if not f.latest:
        return []
    available = f.latest.machine.get("memory_available_mb") or 0
    cpus = f.latest.machine.get("usable_cpus") or 1
    out = []
    for st in f.latest.stages:
        if st.worker_reason.startswith("memory:") and available and \
                f.latest.peak_rss_mb < 0.25 * available and st.workers < cpus:
            out.append(Recommendation(
                f"memory allows more {st.stage} workers", "medium", "low", "memory",
                f"{st.stage}.workers={cpus}",
                f"peak RSS {f.latest.peak_rss_mb:.0f} MiB of {available} MiB available"))
    return out


def shortening_translators() -> list[str]:
    """The installed translators that can shorten a line (they implement ``shorten``)."""
    from videodub.plugins import installed_registry

    translators = installed_registry().by_stage["translate"]
    return sorted(name for name, impl in translators.items()
                  if callable(getattr(impl.factory, "shorten", None)))


def overflowing_lines(f: Facts) -> list[Recommendation]:
    """Many lines did not fit their slot: have them measured and shortened, not sped up past
    1.25x (where a listener starts to hear it)."""
    if not f.latest or not f.latest.segments:
        return []
    count = overflow_lines(f.latest.quality)
    if count is None or count / f.latest.segments <= 0.1:
        return []
    impls = f.latest.implementations
    title = f"{count:.0f} of {f.latest.segments} lines overflow their slot"
    if impls.get("align") == "length":
        change, why = "align=hybrid", ("hybrid measures every clip and asks the translator for "
                                       "a shorter line where one does not fit")
    elif impls.get("translate") not in (can := shortening_translators()) and can:
        change, why = f"translate={can[0]}", (f"translate={impls.get('translate')} cannot "
                                              "shorten a line that does not fit; "
                                              f"{', '.join(can)} can")
    elif f.latest.profile == "quality":  # its cap is 1.2x
        change, why = "align.max_speed=1.25", ("the lines were already shortened; a little "
                                               "more speed-up is still not heard")
    else:
        return []
    return [Recommendation(title, "medium", "low", "quality", change, why)]


def regressed_after_upgrade(f: Facts) -> list[Recommendation]:
    """A stage regressed and its package's version changed since the run before."""
    if not f.latest or len(f.recent) < 2:
        return []
    before = [r for r in f.recent if r is not f.latest and r.run_id != f.latest.run_id]
    if not before:
        return []
    prev = before[-1].versions
    out = []
    for reg in f.regressions:
        stage = reg["metric"].split(".")[1] if reg["metric"].startswith("stage.") else None
        if stage and prev.get(stage) and prev[stage] != f.latest.versions.get(stage):
            old = prev[stage].replace(" ", "==")
            out.append(Recommendation(
                f"{stage} regressed ({reg['severity']}) after {prev[stage]} became "
                f"{f.latest.versions.get(stage)}", "high", "medium", "regression",
                f"pip install '{old}'", "pin the version it ran well with, and report it"))
    return out


def transcribe_dominates(f: Facts) -> list[Recommendation]:
    """Recognition is most of the job and the profile is not the fast one."""
    if not f.latest or f.latest.profile == "speed":
        return []
    tr = next((s for s in f.latest.stages if s.stage == "transcribe" and not s.cached), None)
    if tr and f.latest.wall_s and tr.wall_s > 0.6 * f.latest.wall_s:
        return [Recommendation(
            "transcription is most of the job", "medium", "low", "throughput",
            "profile=speed", f"transcribe took {tr.wall_s:.1f} s of {f.latest.wall_s:.1f} s; "
            "the speed profile decodes with less effort")]
    return []


def failing_runs(f: Facts) -> list[Recommendation]:
    """Recent runs fail: the error is the first thing to fix."""
    failed = [r for r in f.recent[-20:] if r.status == "failed"]
    if len(failed) >= 2:
        return [Recommendation(
            f"{len(failed)} of the last {len(f.recent[-20:])} runs failed", "high", "medium",
            "reliability", "verbose=true", f"last error: {failed[-1].error}")]
    return []


RULES = {rule.__name__: rule for rule in (
    rate_limited, pool_bottleneck, memory_headroom, overflowing_lines, regressed_after_upgrade,
    transcribe_dominates, failing_runs)}
