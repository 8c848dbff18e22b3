"""The run history's writer, as an observer plugin (entry point ``perf_history``): when a job
ends it compares the run with its baselines, adds a ``perf`` section to ``report.json``
(regressions, health, recommendations, and lines for the summary) and appends the run to the
history. It also registers the built-in advisor rules.

Watching a run never fails it: a history that cannot be opened or written (locked, corrupt,
from a newer videodub, on a read-only disk) is one warning per process and database.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import videodub
from videodub.config import PerfConfig
from videodub.perf.advisor import Facts, advise, as_dicts, collect_rules, health
from videodub.perf.baseline import compare, update_baselines
from videodub.perf.history import History, HistoryError, history_path
from videodub.perf.record import from_report
from videodub.perf.rules import RULES

log = logging.getLogger("videodub.perf")
_warned: set[str] = set()


def warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s; the run goes on without it", message)


def installed_rules() -> dict[str, Any]:
    from videodub.plugins import get_plugin_manager

    return collect_rules(get_plugin_manager().hook)


def record_run(opts: PerfConfig, path: Path, report: dict[str, Any], run_dir: Path,
               rules: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Compare, advise, append; returns the ``perf`` section (None if the history failed)."""
    rec = from_report(report, run_id=str(Path(run_dir).resolve()), run_dir=str(run_dir))
    try:
        with History(path) as hist:
            section: dict[str, Any] = {"history": str(path), "regressions": [], "notes": []}
            if opts.compare and rec.status == "ok":
                section.update(compare(rec, hist, opts).as_report())
            recent = hist.runs(limit=19) + [rec]
            facts = Facts(latest=rec, recent=recent, regressions=section["regressions"],
                          machine=rec.machine)
            section["health"] = health(facts)
            recs = advise(facts, rules if rules is not None else installed_rules())
            section["recommendations"] = as_dicts(recs[:5])
            hist.append(rec, section["regressions"], section["health"]["score"])
            if opts.auto_baseline and rec.status == "ok":
                keys = [(m, rec.impl_of(m), rec.profile, rec.machine_class)
                        for m in rec.metrics()]
                update_baselines(hist, opts.window, keys)
    except HistoryError as exc:
        warn_once(str(exc))
        return None
    section["summary"] = summary_lines(section)
    return section


def summary_lines(section: dict[str, Any]) -> list[str]:
    lines = []
    for reg in section["regressions"]:
        lines.append(f"{reg['severity']} regression: {reg['metric']} ({reg['impl']}) "
                     f"{reg['value']:.3g} vs baseline {reg['baseline']:.3g} "
                     f"({reg['change']:+.0%}, n={reg['n']})")
    h = section.get("health")
    if h:
        lines.append(f"health {h['score']:.0f}/100 ("
                     + ", ".join(f"{k} {v:.0f}" for k, v in h["parts"].items()) + ")")
    for rec in section.get("recommendations", [])[:3]:
        lines.append(f"advice: {rec['title']} -> {rec['change']}")
    return lines


@videodub.hookimpl
def job_finished(job, run_dir, report):
    path = history_path(job.perf.history)
    if path is None or report.get("status") == "dry_run":
        return
    section = record_run(job.perf, path, report, Path(run_dir))
    if section is not None:
        report["perf"] = section


@videodub.hookimpl
def perf_rules(register):
    for name, rule in RULES.items():
        register(name, rule, description=(rule.__doc__ or "").strip())
