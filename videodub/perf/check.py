"""``perf check --suite smoke|basic``: a fixed benchmark set, gated on ratios measured in the
same run (absolute seconds are noise on a shared machine), against the baseline committed in
``benchmarks/perf_baseline.json``.

The set: a generated talk (espeak speech, ffmpeg video) dubbed offline, and a short talk
dubbed through the loopback server. The ratios:

- ``job_over_asr``: the offline job's wall over its recognition stage's (what the rest of
  the pipeline adds on top of Whisper, which the other stages stream behind);
- ``calls_per_segment``: server calls (retries included) per dubbed line;
- ``rss_mb_per_media_min``: the offline job's peak RSS (children included) per minute of media;
- ``api_span_over_wall``: the longest provider's first-request-to-last-answer span over the
  loopback job's wall (the calls on its critical path).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videodub.config import PerfThresholds
from videodub.errors import VideodubError
from videodub.machine import Machine
from videodub.perf.baseline import SEVERITIES
from videodub.perf.record import machine_class

SUITES = {
    # lines of the generated talk, repeats (the median is kept)
    "smoke": {"lines": 3, "repeat": 1},
    "basic": {"lines": 6, "repeat": 3},
}
KEY_ENV = "VIDEODUB_PERF_CHECK_KEY"
# Changes smaller than these, in the ratio's own unit, are noise on a shared 2-CPU machine
# (measured: api_span_over_wall moves between 0.02 and 0.06 from run to run).
FLOORS = {"job_over_asr": 0.5, "calls_per_segment": 0.25, "rss_mb_per_media_min": 250.0,
          "api_span_over_wall": 0.15}


@dataclass
class Gate:
    max_critical: int = 0
    max_high: int = 2
    min_health: float = 60.0


@dataclass
class Result:
    suite: str
    ratios: dict[str, float]
    regressions: list[dict[str, Any]] = field(default_factory=list)
    health: float = 100.0
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def measure(suite: str, work: Path) -> dict[str, float]:
    """Run the suite's benchmark set in ``work``; the ratios (medians over its repeats)."""
    from videodub.api import dub
    from videodub.plugins import installed_registry
    from videodub.testing.benchmark import loopback_overrides
    from videodub.testing.loopback import LoopbackServer
    from videodub.testing.samples import ENGLISH_TALK, make_talk, write_translation_srt

    spec = SUITES[suite]
    registry = installed_registry()
    talk = work / "talk.mp4"
    subs = write_translation_srt(make_talk(talk, ENGLISH_TALK[: spec["lines"]]),
                                 work / "talk.es.srt")
    short = work / "short.mp4"
    make_talk(short, ENGLISH_TALK[:2], video=False)
    common = ["cache=false", f"perf.history={work / 'history.sqlite'}"]
    samples: dict[str, list[float]] = {}
    for i in range(spec["repeat"]):
        job = [f"input={talk}", "target_lang=es", "translate=subtitles",
               f"translate.file={subs}", *common]
        offline = dub(job, work / f"offline{i}", registry).report
        asr = offline["stages"]["transcribe"]["wall_s"]
        media_min = (offline["job"]["media_duration_s"] or 1) / 60
        with LoopbackServer(api_key="sk-perf-check") as server, _env(KEY_ENV, "sk-perf-check"):
            overrides = [f"input={short}", "target_lang=es", *common,
                         *loopback_overrides(server, KEY_ENV)]
            api = dub(overrides, work / f"api{i}", registry).report
        calls = sum(p["calls"] for p in api["providers"].values())
        spans = [p["span_s"] or 0 for p in api["providers"].values()]
        for name, value in (
                ("job_over_asr", offline["wall_s"] / max(asr, 1e-3)),
                ("calls_per_segment", calls / max(api["job"]["segments"]["target"], 1)),
                ("rss_mb_per_media_min", offline["peak_rss_mb"] / media_min),
                ("api_span_over_wall", max(spans) / max(api["wall_s"], 1e-3))):
            samples.setdefault(name, []).append(value)
    return {k: round(sorted(v)[len(v) // 2], 4) for k, v in samples.items()}


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def evaluate(suite: str, ratios: dict[str, float], baseline: dict[str, Any],
             thresholds: PerfThresholds, gate: Gate) -> Result:
    """Compare the ratios with the committed baseline and apply the gate."""
    result = Result(suite, ratios)
    base = (baseline.get("suites") or {}).get(suite)
    here = machine_class(_machine())
    if not base:
        result.notes.append(f"no committed baseline for suite {suite}: nothing compared "
                            f"(record one with --update-baseline)")
    else:
        if baseline.get("machine_class") not in (None, here):
            result.notes.append(f"the baseline was recorded on {baseline['machine_class']}, "
                                f"this is {here}: ratios are compared, absolute figures not")
        limits = (thresholds.low, thresholds.medium, thresholds.high, thresholds.critical)
        for name, value in ratios.items():
            ref = base.get(name)
            if not ref:
                continue
            change = value / ref - 1
            if value - ref < FLOORS.get(name, 0.0):
                continue
            severity = None
            for sev, limit in zip(SEVERITIES, limits):
                if change >= limit:
                    severity = sev
            if severity:
                result.regressions.append({"metric": name, "severity": severity,
                                           "value": value, "baseline": ref,
                                           "change": round(change, 4)})
    penalty = {"LOW": 5, "MEDIUM": 10, "HIGH": 25, "CRITICAL": 50}
    result.health = max(0.0, 100.0 - sum(penalty[r["severity"]] for r in result.regressions))
    apply_gate(result, gate)
    return result


def apply_gate(result: Result, gate: Gate) -> None:
    count = {s: sum(r["severity"] == s for r in result.regressions) for s in SEVERITIES}
    if count["CRITICAL"] > gate.max_critical:
        result.failures.append(f"{count['CRITICAL']} CRITICAL regressions "
                               f"(at most {gate.max_critical})")
    if count["HIGH"] > gate.max_high:
        result.failures.append(f"{count['HIGH']} HIGH regressions (at most {gate.max_high})")
    if result.health < gate.min_health:
        result.failures.append(f"health {result.health:.0f} < {gate.min_health:g}")


def _machine() -> dict[str, Any]:
    m = Machine.detect()
    return {"usable_cpus": m.cpus, "memory_total_mb": m.memory_total / 2**20, "gpu": m.gpu}


def load_baseline(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VideodubError(f"perf baseline {path} is unreadable: {exc}") from None


def save_baseline(path: Path, suite: str, ratios: dict[str, float]) -> None:
    from videodub.media import write_json_atomic

    data = load_baseline(path)
    data["machine_class"] = machine_class(_machine())
    data.setdefault("suites", {})[suite] = ratios
    write_json_atomic(path, data)


def run_suite(suite: str, baseline_path: Path, thresholds: PerfThresholds, gate: Gate,
              update: bool = False) -> Result:
    if suite not in SUITES:
        raise VideodubError(f"unknown suite {suite!r}; choices: {', '.join(SUITES)}")
    with tempfile.TemporaryDirectory(prefix="videodub-perf-check-") as tmp:
        ratios = measure(suite, Path(tmp))
    if update:
        save_baseline(baseline_path, suite, ratios)
    return evaluate(suite, ratios, load_baseline(baseline_path), thresholds, gate)
