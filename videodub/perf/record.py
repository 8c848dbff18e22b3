"""One history record from a run's ``report.json``: the job's identity, the machine's class,
and every figure normalised so runs of different lengths compare."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Which way each of the run's own quality figures (videodub/run/quality.py) gets worse, by
# its name under ``quality.`` or the start of it: +1 when it grows, -1 when it drops, 0 not a
# figure of the dub (how many lines there were, a line's id). The longest match wins.
# ``measure_s`` is the time measuring took: worse when longer, with a floor as a time.
QUALITY_DIRECTION = {
    "lines": 0, "dubbed": 0, "onset_error.n": 0, "onset_error.worst_lines_ms": 0,
    "onset_error": +1, "overrun_past_line_end": +1,
    "original_voice": +1, "original_voice.source_speech_s": 0,
    "original_voice.ducked_upper_bound": 0,
    "speed.share_le_1_1": -1, "speed.share_le_1_25": -1, "speed.max": +1,
    "speed.sped_up_though_fit": +1, "speed.slowed": 0,
    "overflow": +1, "overlaps": +1, "truncated": +1, "truncated.by_line": 0,
    "pushed_lines": 0, "cut_at_end_s": +1, "suspect": 0, "candidates": 0, "measure_s": +1,
    "subtitles": +1, "subtitles.cues": 0, "subtitles.most_lines_a_cue": 0,
}
# The run's quality figures that grow with the input, kept per line or per minute of media
# (``quality.overflow.lines_per_line``). They compare with dubs of the same input only
# (depends_on_input); the time measuring took compares with runs of other inputs.
QUALITY_PER_LINE = ("overflow.lines", "overlaps.count", "truncated.lines",
                    "overrun_past_line_end.lines", "speed.sped_up_though_fit",
                    "subtitles.cues_over_fast_cps")
QUALITY_PER_MIN = ("overflow.seconds", "truncated.seconds", "overrun_past_line_end.total_s",
                   "original_voice.uncovered_source_speech_s", "measure_s")
# Other quality figures (a plugin's): worse when higher if the name holds one of these words
# (counts of problems, errors, offsets), else a score where a drop is bad.
WORSE_WHEN_HIGHER = ("overflow", "error", "drift", "offset", "lag", "wer", "clip", "miss",
                     "late", "early", "violation", "overlap")
# The quality figure that counts the lines that overflow their slot.
OVERFLOW_LINES = "overflow.lines"


@dataclass
class StageFigures:
    stage: str
    impl: str
    wall_s: float
    cpu_s: float
    items: int
    workers: int
    worker_reason: str
    peak_rss_mb: float
    cached: bool
    wait_s: float = 0.0  # waiting for input after it began (see run/stats.py)
    load: float = 0.0  # share of the usable CPUs other processes used while it ran

    @property
    def own_s(self) -> float:
        """The stage's own time: its wall less what it waited for its upstream."""
        return max(0.0, self.wall_s - self.wait_s)


@dataclass
class ProviderFigures:
    stage: str
    model: str
    calls: int
    p50_ms: float | None
    p95_ms: float | None
    retries: int
    rate_limited: int
    timeouts: int
    errors: int
    tokens: int
    cost_usd: float | None
    span_s: float | None


@dataclass
class RunRecord:
    """What the history keeps of one run (the report's figures, flattened)."""

    run_id: str
    started_at: str
    status: str
    error: str | None
    input: str
    input_hash: str
    media_s: float | None
    segments: int
    profile: str
    implementations: dict[str, str]
    versions: dict[str, str]
    config_hash: str
    machine_class: str
    machine: dict[str, Any]
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    cost_usd: float | None
    stages: list[StageFigures] = field(default_factory=list)
    providers: list[ProviderFigures] = field(default_factory=list)
    quality: dict[str, float] = field(default_factory=dict)
    timeline: list[list[float]] = field(default_factory=list)
    run_dir: str = ""
    load: float = 0.0  # share of the usable CPUs other processes used during the job

    def load_of(self, metric: str) -> float:
        """How busy the machine was with other work while the metric's stage (or job) ran."""
        parts = metric.split(".")
        if parts[0] == "stage":
            return next((s.load for s in self.stages if s.stage == parts[1]), self.load)
        return self.load

    @property
    def media_min(self) -> float | None:
        return self.media_s / 60 if self.media_s else None

    def metrics(self) -> dict[str, float]:
        """Figures a baseline is kept for: ``<kind>.<name>.<figure>`` -> value (per minute
        of media where the figure grows with the input)."""
        out: dict[str, float] = {}
        per_min = self.media_min
        if per_min:
            out["job.wall_per_min"] = self.wall_s / per_min
        for st in self.stages:
            if st.cached:  # a reused result says nothing about the stage's speed
                continue
            if per_min:
                out[f"stage.{st.stage}.wall_per_min"] = st.own_s / per_min
            out[f"stage.{st.stage}.rss_mb"] = st.peak_rss_mb
        for p in self.providers:
            if p.p95_ms is not None:
                out[f"provider.{p.stage}.p95_ms"] = p.p95_ms
            if p.calls:
                out[f"provider.{p.stage}.error_rate"] = (
                    (p.rate_limited + p.timeouts + p.errors) / p.calls)
        lines = self.quality.get("lines")
        for name, value in self.quality.items():
            if name in QUALITY_PER_LINE:
                if lines:
                    out[f"quality.{name}_per_line"] = value / lines
            elif name in QUALITY_PER_MIN:
                if per_min:
                    out[f"quality.{name}_per_min"] = value / per_min
            else:
                out[f"quality.{name}"] = value
        return out

    def impl_of(self, metric: str) -> str:
        """The implementation a metric belongs to (its stage's), or the whole pipeline's."""
        parts = metric.split(".")
        if parts[0] in ("stage", "provider") and parts[1] in self.implementations:
            return self.implementations[parts[1]]
        return "+".join(self.implementations.get(s, "?") for s in sorted(self.implementations))


def machine_class(machine: dict[str, Any]) -> str:
    """Runs compare only with runs on a like machine: CPUs, memory (GiB), GPU, architecture."""
    mem = round((machine.get("memory_total_mb") or machine.get("memory_available_mb") or 0)
                / 1024)
    gpu = (machine.get("gpu") or "nogpu").replace(" ", "_")
    return f"{machine.get('usable_cpus', '?')}cpu-{mem}g-{gpu}-{platform.machine()}"


def input_hash(path: str) -> str:
    """Size and the first MiB's digest: cheap, and stable for the same file. An input that
    is not a readable file (a URL) is known by its name."""
    try:
        p = Path(path)
        with p.open("rb") as f:
            head = f.read(1 << 20)
        return hashlib.sha256(str(p.stat().st_size).encode() + head).hexdigest()[:16]
    except OSError:
        return hashlib.sha256(path.encode()).hexdigest()[:16] if path else ""


def config_hash(options: dict[str, Any], profile: str) -> str:
    blob = json.dumps({"options": options, "profile": profile}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def quality_figures(report: dict[str, Any]) -> dict[str, float]:
    """Every number under ``report["quality"]``, flattened (``sync.overflow_s``), whatever
    its layout: the quality section is read generically."""
    out: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, (int, float)):
            out[prefix] = float(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)

    walk("", report.get("quality") or {})
    return out


def direction(metric: str) -> int:
    """+1 when a growth of ``metric`` is bad (every time, memory, latency and error figure),
    -1 when a drop is, 0 when it is not compared (a quality figure that only describes the
    input, such as how many lines it had)."""
    if not metric.startswith("quality."):
        return +1
    name = metric.removeprefix("quality.")
    for per, names in (("_per_line", QUALITY_PER_LINE), ("_per_min", QUALITY_PER_MIN)):
        if name.endswith(per) and name.removesuffix(per) in names:
            name = name.removesuffix(per)
    starts = [k for k in QUALITY_DIRECTION if name == k or name.startswith(k + ".")]
    if starts:
        return QUALITY_DIRECTION[max(starts, key=len)]
    return +1 if any(word in name.lower() for word in WORSE_WHEN_HIGHER) else -1


def depends_on_input(metric: str) -> bool:
    """A figure of the dub itself: how much of a talk is left uncovered, how many lines
    overflow, how far onsets land depend on the talk's pauses and on how long its
    translation runs as much as on videodub, so it compares only with dubs of the same
    input. The time measuring took is a time, compared like a stage's."""
    return metric.startswith("quality.") and not metric.startswith("quality.measure_s")


def overflow_lines(quality: dict[str, float]) -> float | None:
    """How many lines overflowed their slot, from a run's flattened quality figures (or, from
    a layout of another version, the first figure named with both overflow and count)."""
    if OVERFLOW_LINES in quality:
        return quality[OVERFLOW_LINES]
    counts = [v for k, v in quality.items() if "overflow" in k and "count" in k]
    return counts[0] if counts else None


def from_report(report: dict[str, Any], run_id: str, run_dir: str = "") -> RunRecord:
    job = report.get("job") or {}
    machine = report.get("machine") or {}
    stages = [StageFigures(stage=name, impl=s.get("impl", ""), wall_s=s.get("wall_s", 0.0),
                           cpu_s=s.get("cpu_s", 0.0), items=s.get("items", 0),
                           workers=s.get("workers", 0), worker_reason=s.get("worker_reason", ""),
                           peak_rss_mb=s.get("peak_rss_mb", 0.0), cached=bool(s.get("cached")),
                           wait_s=s.get("wait_s", 0.0), load=s.get("load", 0.0))
              for name, s in (report.get("stages") or {}).items()]
    providers = [ProviderFigures(
        stage=p.get("stage", name), model=p.get("model", ""), calls=p.get("calls", 0),
        p50_ms=p.get("latency_p50_ms"), p95_ms=p.get("latency_p95_ms"),
        retries=p.get("retries", 0), rate_limited=p.get("rate_limited_429", 0),
        timeouts=p.get("timeouts", 0), errors=p.get("server_errors", 0),
        tokens=p.get("tokens_in", 0) + p.get("tokens_out", 0), cost_usd=p.get("cost_usd"),
        span_s=p.get("span_s")) for name, p in (report.get("providers") or {}).items()]
    versions = dict(report.get("versions") or {})
    versions.update({s: v for s, v in (job.get("packages") or {}).items()})
    profile = job.get("profile", "custom")
    return RunRecord(
        run_id=run_id, started_at=job.get("started_at", ""), status=report.get("status", "?"),
        error=report.get("error"), input=job.get("input", ""),
        input_hash=input_hash(job.get("input", "")), media_s=job.get("media_duration_s"),
        segments=(job.get("segments") or {}).get("target", 0), profile=profile,
        implementations=dict(job.get("implementations") or {}), versions=versions,
        config_hash=config_hash(job.get("options") or {}, profile),
        machine_class=machine_class(machine), machine=machine,
        wall_s=report.get("wall_s", 0.0), cpu_s=report.get("cpu_s", 0.0),
        peak_rss_mb=report.get("peak_rss_mb", 0.0), cost_usd=report.get("cost_usd"),
        stages=stages, providers=providers, quality=quality_figures(report),
        timeline=list(report.get("timeline") or []), run_dir=run_dir,
        load=report.get("load", 0.0) or 0.0)
