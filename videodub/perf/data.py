"""The figures the dashboard and its JSON endpoints show, gathered once from the history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videodub.perf.advisor import Facts, advise, as_dicts, health
from videodub.perf.history import History, HistoryError
from videodub.perf.record import RunRecord


def open_history(path: Path) -> tuple[History | None, str | None]:
    """The history, or None and why: a missing database is an empty history, not an error."""
    if not path.exists():
        return None, (f"no run history at {path} yet: every run records itself there "
                      f"(perf.history, VIDEODUB_HISTORY)")
    return History(path, create=False), None


def gather(path: Path, rules: dict[str, Any], days: float = 30, last: int = 15
           ) -> dict[str, Any]:
    """Everything one page shows; raises HistoryError for a database that cannot be read."""
    hist, note = open_history(path)
    runs: list[RunRecord] = []
    if hist is not None:
        with hist:
            runs = hist.runs(limit=2000, since_days=days)
            if not runs:
                note = f"the run history at {path} has no runs in the last {days:g} days"
    latest = runs[-1] if runs else None
    regressions = list(getattr(latest, "regressions", []) or []) if latest else []
    facts = Facts(latest=latest, recent=runs[-20:], regressions=regressions,
                  machine=latest.machine if latest else {})
    return {
        "history": str(path), "note": note, "runs": runs, "latest": latest,
        "regressions": regressions, "health": health(facts),
        "recommendations": as_dicts(advise(facts, rules)[:5]) if latest else [],
    }


def summary(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of ``gather``'s result (the endpoints' answer)."""
    latest: RunRecord | None = data["latest"]
    return {
        "history": data["history"], "note": data["note"], "runs": len(data["runs"]),
        "latest": None if latest is None else {
            "run_id": latest.run_id, "status": latest.status, "profile": latest.profile,
            "wall_s": latest.wall_s,
            "stages": {s.stage: {"impl": s.impl, "wall_s": s.wall_s, "workers": s.workers,
                                 "worker_reason": s.worker_reason} for s in latest.stages},
            "machine_class": latest.machine_class},
        "regressions": data["regressions"], "health": data["health"],
        "recommendations": data["recommendations"],
    }


__all__ = ["HistoryError", "gather", "open_history", "summary"]
