"""Baselines per (metric, implementation, profile, machine class), and the regressions a run
shows against them.

A baseline is the median (p50), p95 and robust spread (1.4826 × the median absolute
deviation, which one slow outlier does not inflate) of the last ``perf.window`` successful
runs of the same kind (for a figure per minute of media, of the runs whose media is within
``LENGTH_FACTOR`` of this run's length; for a figure of the dub's quality, of the runs of
the same input). A run's figure is a regression only when all of these hold:

- the baseline has at least ``perf.min_samples`` runs;
- the figure is past the one-sided prediction bound ``p50 + t(confidence, n-1) ×
  spread × sqrt(1 + 1/n)``: a new run of the baseline's own kind would stay under it with
  probability ``confidence``;
- the change is larger than a floor in absolute terms (half a second of a stage, 64 MiB,
  50 ms of latency, 2 % errors), so a stage that takes milliseconds cannot cry wolf;
- the change is at least ``thresholds.low``; its size sets the severity;
- for times: the machine's other load does not explain it. The runner measures the share
  ``L`` of the usable CPUs that other processes kept busy while each stage ran; a slowdown
  up to ``1 / (1 - L)`` is what such contention alone can cause, and is only noted.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from videodub.config import PerfConfig
from videodub.perf.history import History
from videodub.perf.record import RunRecord, depends_on_input, direction

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
# A baseline whose spread is over this share of its median is flagged as noisy.
NOISY = 0.25
# The smallest change that counts, per kind of figure, in its own unit.
FLOORS = {"wall_per_min": 0.5, "rss_mb": 64.0, "p95_ms": 50.0, "error_rate": 0.02}
# Other seconds per minute of media (the time the quality figures took, seconds of lines
# that overflow...): counted over the run, like a stage's time.
PER_MIN_FLOOR = 0.5
# Levels (the original voice left in the dub, dB): a change under this is not heard.
DB_FLOOR = 3.0
# A figure per minute of media compares only with runs at most this many times longer or
# shorter: a job's fixed costs (loading the model, starting ffmpeg) weigh on a 10 s clip's
# seconds per minute six times as much as on a minute's.
LENGTH_FACTOR = 3.0


@dataclass
class Baseline:
    metric: str
    impl: str
    profile: str
    machine_class: str
    n: int
    p50: float
    p95: float
    spread: float


@dataclass
class Regression:
    metric: str
    impl: str
    severity: str
    change: float  # +0.6 = 60 % worse than the baseline's median
    value: float
    baseline: float
    bound: float
    n: int

    def line(self) -> str:
        return (f"{self.severity} regression: {self.metric} ({self.impl}) {self.value:.3g} vs "
                f"baseline {self.baseline:.3g} ({self.change:+.0%}, n={self.n})")


def t_quantile(p: float, dof: int) -> float:
    """Student's t quantile (Cornish-Fisher expansion around the normal one; within 1 % of
    the exact value for 3 or more degrees of freedom, conservative below)."""
    z = statistics.NormalDist().inv_cdf(p)
    v = max(dof, 1)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def summarize(values: list[float]) -> tuple[float, float, float]:
    """(p50, p95, spread) of a sample."""
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    mad = statistics.median(abs(v - p50) for v in ordered)
    return p50, p95, 1.4826 * mad


def update_baselines(history: History, window: int, only: list[tuple[str, str, str, str]]
                     | None = None) -> list[Baseline]:
    """Recompute the baselines (all keys, or ``only`` these) from the history and store them."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    out = []
    with history.transaction() as db:
        for metric, impl, profile, mclass in only if only is not None else history.keys():
            values = history.metric_values(metric, impl, profile, mclass, window)
            if not values:
                continue
            p50, p95, spread = summarize(values)
            db.execute("INSERT OR REPLACE INTO baselines VALUES (?,?,?,?,?,?,?,?,?)",
                       (metric, impl, profile, mclass, len(values), p50, p95, spread, now))
            out.append(Baseline(metric, impl, profile, mclass, len(values), p50, p95, spread))
    return out


def load_baselines(history: History) -> list[Baseline]:
    return [Baseline(**{k: row[k] for k in ("metric", "impl", "profile", "machine_class", "n",
                                            "p50", "p95", "spread")})
            for row in history.db.execute("SELECT * FROM baselines ORDER BY metric")]


def classify(metric: str, value: float, base: Baseline, opts: PerfConfig,
             media_min: float | None = None) -> Regression | None:
    """The regression ``value`` is against ``base``, or None when it is within noise."""
    way = direction(metric)
    if base.n < opts.min_samples or way == 0 or base.p50 == 0 and way < 0:
        return None
    higher_bad = way > 0
    margin = t_quantile(opts.confidence, base.n - 1) * base.spread * math.sqrt(1 + 1 / base.n)
    delta = value - base.p50 if higher_bad else base.p50 - value
    if delta <= margin:
        return None
    kind = metric.rsplit(".", 1)[-1]
    per_min = kind.endswith("_per_min")
    floor = FLOORS.get(kind, PER_MIN_FLOOR if per_min else DB_FLOOR if kind.endswith("_db")
                       else 0.0)
    absolute = delta * media_min if per_min and media_min else delta
    if absolute < floor:
        return None
    change = delta / abs(base.p50) if base.p50 else math.inf
    t = opts.thresholds
    severity = None
    for name, limit in zip(SEVERITIES, (t.low, t.medium, t.high, t.critical)):
        if change >= limit:
            severity = name
    if severity is None:
        return None
    bound = base.p50 + margin if higher_bad else base.p50 - margin
    return Regression(metric, base.impl, severity, round(change, 4), round(value, 4),
                      round(base.p50, 4), round(bound, 4), base.n)


@dataclass
class Comparison:
    regressions: list[Regression]
    compared: int  # figures that had a baseline to compare with
    notes: list[str]

    def as_report(self) -> dict[str, Any]:
        return {"regressions": [asdict(r) for r in self.regressions],
                "compared": self.compared, "notes": list(self.notes)}


def of_similar_length(base: Baseline, media_s: float, history: History,
                      window: int) -> Baseline:
    """``base`` made again from the runs whose media is within ``LENGTH_FACTOR`` of
    ``media_s`` long."""
    values = history.metric_values(base.metric, base.impl, base.profile, base.machine_class,
                                   window, (media_s / LENGTH_FACTOR, media_s * LENGTH_FACTOR))
    if not values:
        return Baseline(base.metric, base.impl, base.profile, base.machine_class, 0, 0, 0, 0)
    return Baseline(base.metric, base.impl, base.profile, base.machine_class, len(values),
                    *summarize(values))


def of_same_input(base: Baseline, input_hash: str, history: History, window: int) -> Baseline:
    """``base`` made again from the runs of the input with ``input_hash``."""
    values = history.metric_values(base.metric, base.impl, base.profile, base.machine_class,
                                   window, input_hash=input_hash)
    if not values:
        return Baseline(base.metric, base.impl, base.profile, base.machine_class, 0, 0, 0, 0)
    return Baseline(base.metric, base.impl, base.profile, base.machine_class, len(values),
                    *summarize(values))


def compare(rec: RunRecord, history: History, opts: PerfConfig) -> Comparison:
    """Every figure of ``rec`` against the stored baseline of its kind."""
    stored = {(b.metric, b.impl, b.profile, b.machine_class): b for b in load_baselines(history)}
    regressions, compared, notes = [], 0, []
    other_class = False
    other_length = other_input = 0
    for metric, value in rec.metrics().items():
        impl = rec.impl_of(metric)
        base = stored.get((metric, impl, rec.profile, rec.machine_class))
        if base is None:
            other_class = other_class or any(
                k[0] == metric and k[1] == impl and k[2] == rec.profile for k in stored)
            continue
        if base.n < opts.min_samples:
            continue
        if depends_on_input(metric):
            base = of_same_input(base, rec.input_hash, history, opts.window)
            if base.n < opts.min_samples:
                other_input += 1
                continue
        elif metric.endswith("_per_min") and rec.media_s:
            base = of_similar_length(base, rec.media_s, history, opts.window)
            if base.n < opts.min_samples:
                other_length += 1
                continue
        compared += 1
        if base.p50 and base.spread / abs(base.p50) > NOISY:
            notes.append(f"{metric}: noisy baseline (spread {base.spread / abs(base.p50):.0%} "
                         f"of the median over {base.n} runs); only a large change counts")
        found = classify(metric, value, base, opts, rec.media_min)
        if found and metric.endswith("wall_per_min"):
            load = min(rec.load_of(metric), 0.95)
            explained = 1 / (1 - load) - 1
            if found.change <= explained:
                notes.append(f"{metric} {found.change:+.0%} not counted: other processes used "
                             f"{load:.0%} of the CPUs meanwhile (explains up to "
                             f"{explained:+.0%})")
                found = None
        if found:
            regressions.append(found)
    if other_length:
        notes.append(f"{other_length} figures per minute not compared: fewer than "
                     f"{opts.min_samples} runs of media {rec.media_s / LENGTH_FACTOR:.0f}-"
                     f"{rec.media_s * LENGTH_FACTOR:.0f} s long (fixed costs weigh otherwise)")
    if other_input:
        notes.append(f"{other_input} quality figures not compared: fewer than "
                     f"{opts.min_samples} runs of this input (a dub's quality depends on "
                     f"its input as much as on videodub)")
    if other_class and not compared:
        notes.append(f"baselines exist only for other machine classes than "
                     f"{rec.machine_class}: nothing compared (they would not be fair)")
    elif not compared:
        notes.append(f"no baseline with {opts.min_samples}+ runs yet for profile "
                     f"{rec.profile} on {rec.machine_class}: nothing compared")
    order = {s: i for i, s in enumerate(SEVERITIES)}
    regressions.sort(key=lambda r: (-order[r.severity], -r.change))
    return Comparison(regressions, compared, notes)
