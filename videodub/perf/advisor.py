"""Ranked recommendations from the history and a run's report, and the health score.

Rules are plugins: the ``perf_rules`` hook registers them (``rules.py`` holds the built-in
ones, registered by ``observer.py`` through the same hook). A rule takes the :class:`Facts`
and returns :class:`Recommendation` objects; a rule that fails is skipped with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from videodub.perf.record import RunRecord, overflow_lines

log = logging.getLogger(__name__)
IMPACT = {"high": 3, "medium": 2, "low": 1}
EFFORT = {"low": 3, "medium": 2, "high": 1}


@dataclass
class Recommendation:
    title: str
    impact: str  # high | medium | low: what it should save or fix
    effort: str  # low | medium | high: what it takes
    category: str  # throughput | memory | providers | quality | regression | reliability
    change: str  # the config change to make, as a command-line override
    why: str = ""
    rule: str = ""

    def __post_init__(self) -> None:
        if self.impact not in IMPACT or self.effort not in EFFORT:
            raise ValueError(f"impact must be one of {list(IMPACT)}, effort of {list(EFFORT)}")

    @property
    def score(self) -> int:
        return IMPACT[self.impact] * EFFORT[self.effort]


@dataclass
class Facts:
    """What rules look at: the last run (``latest``), recent runs, its regressions, the
    machine (usable CPUs, available memory in MiB)."""

    latest: RunRecord | None
    recent: list[RunRecord]
    regressions: list[dict[str, Any]] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)


Rule = Callable[[Facts], list[Recommendation]]


def collect_rules(hook: Any) -> dict[str, Rule]:
    """Every rule registered through ``perf_rules`` on ``hook`` (a plugin manager's hooks)."""
    rules: dict[str, Rule] = {}

    def register(name: str, rule: Rule, description: str = "") -> None:
        rules[name] = rule

    if hook is not None and hasattr(hook, "perf_rules"):
        hook.perf_rules(register=register)
    return rules


def advise(facts: Facts, rules: dict[str, Rule]) -> list[Recommendation]:
    """All rules' recommendations, best first (impact × ease), one per config change."""
    found: list[Recommendation] = []
    for name, rule in rules.items():
        try:
            for rec in rule(facts) or []:
                rec.rule = rec.rule or name
                found.append(rec)
        except Exception as exc:  # noqa: BLE001 - a plugin's rule
            log.warning("advisor rule %s failed and is skipped: %s: %s", name,
                        type(exc).__name__, exc)
    seen, unique = set(), []
    for rec in sorted(found, key=lambda r: -r.score):
        if rec.change not in seen:
            seen.add(rec.change)
            unique.append(rec)
    return unique


PENALTY = {"LOW": 5, "MEDIUM": 10, "HIGH": 25, "CRITICAL": 50}
WEIGHTS = {"success": 0.4, "regressions": 0.3, "memory": 0.15, "sync": 0.15}


def health(facts: Facts) -> dict[str, Any]:
    """The health score, 0-100, and its parts (docs/monitoring.md defines each)."""
    runs = facts.recent[-20:]
    success = 100.0 * sum(r.status == "ok" for r in runs) / len(runs) if runs else 100.0
    regress = max(0.0, 100.0 - sum(PENALTY.get(r.get("severity", ""), 0)
                                    for r in facts.regressions))
    memory = 100.0
    latest = facts.latest
    available = (facts.machine.get("memory_available_mb")
                 or (latest.machine.get("memory_available_mb") if latest else 0))
    if latest and available:
        used = latest.peak_rss_mb / available
        memory = 100.0 if used <= 0.5 else max(0.0, 100.0 * (1 - used) / 0.5)
    sync = 100.0
    if latest and latest.quality:
        overflow = overflow_lines(latest.quality)
        if overflow is not None and latest.segments:
            sync = max(0.0, 100.0 * (1 - overflow / latest.segments))
    parts = {"success": round(success, 1), "regressions": round(regress, 1),
             "memory": round(memory, 1), "sync": round(sync, 1)}
    score = sum(parts[k] * w for k, w in WEIGHTS.items())
    return {"score": round(score, 1), "parts": parts, "weights": dict(WEIGHTS)}


def as_dicts(recs: list[Recommendation]) -> list[dict[str, Any]]:
    return [asdict(r) for r in recs]
