"""Typed configuration: the top-level schema, the per-stage base options, and validation.

Every implementation's options dataclass is combined with its stage's base dataclass
below, so the keys a profile sets (``align.max_speed``, ``transcribe.effort``...) exist
whatever implementation the user picks.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from videodub.errors import VideodubError
from videodub.languages import check_language
from videodub.model import STAGES
from videodub.providers.secrets import remember_urls
from videodub.providers.usage import Price, default_prices
from videodub.subtitles import SubtitleLayout


class Effort(str, Enum):
    """How much work a stage should spend on quality (profiles set it per stage)."""

    high = "high"
    medium = "medium"
    low = "low"


class Validation(str, Enum):
    """How thoroughly ingest checks the input: full decode, headers and a probe, or nothing."""

    full = "full"
    quick = "quick"
    none = "none"


class Display(str, Enum):
    auto = "auto"  # rich on a terminal, plain lines otherwise
    rich = "rich"
    plain = "plain"
    quiet = "quiet"  # only the final path and errors


def _register_resolvers() -> None:
    """``${videodub_pid:}``, the process id: the default run folder carries it after the time,
    so two jobs started in the same second never share a folder."""
    if not OmegaConf.has_resolver("videodub_pid"):
        OmegaConf.register_new_resolver("videodub_pid", os.getpid)


_register_resolvers()


def transport(default: Any) -> Any:
    """A field that changes how a stage's result is obtained, not what it is (pool size,
    timeouts, retries, rate limits, key variable): such fields are left out of cache keys, so
    changing them reuses earlier results."""
    return field(default=default, metadata={"transport": True})


def result_options(options: Any) -> dict[str, Any]:
    """The options that can change a stage's result, for cache keys."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
            if not f.metadata.get("transport")}


@dataclass
class StageOptions:
    """Options every stage accepts."""

    # Upper bound on this stage's workers; 0 lets the runner decide from the machine.
    workers: int = transport(0)
    # Quality/effort trade-off; each implementation documents what it changes.
    effort: Effort = Effort.medium

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")


@dataclass
class IngestOptions(StageOptions):
    # full: decode every packet of every stream; quick: probe headers; none: trust the file.
    validation: Validation = Validation.quick


@dataclass
class TranscribeOptions(StageOptions):
    # A line the recogniser doubts (suspect_* flags): keep_original plays the original audio
    # there instead of a dubbed invention; dub voices it anyway; drop leaves it silent.
    # Applied after recognition, so it is left out of the transcript's cache key.
    on_suspect: str = transport("keep_original")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.on_suspect not in ("keep_original", "dub", "drop"):
            raise ValueError(f"on_suspect must be keep_original, dub or drop, got {self.on_suspect}")


@dataclass
class TranslateOptions(StageOptions):
    # Segments per translation call, for implementations that batch (None: the whole transcript).
    batch_size: Optional[int] = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class AlignOptions(StageOptions):
    # Largest speed-up applied to a line to fit its slot (1.0 = never speed up).
    max_speed: float = 1.3
    # Let a line run on into the silence before the next line.
    borrow_silence: bool = True
    # Slowest speed a clip much shorter than its line may be played at (1.0 = never slow down).
    min_speed: float = 0.9
    # Move each line's start and end to the speech onset/offset measured in the source audio.
    snap_to_speech: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1.0 <= self.max_speed <= 4.0:
            raise ValueError(f"max_speed must be between 1.0 and 4.0, got {self.max_speed}")
        if not 0.5 <= self.min_speed <= 1.0:
            raise ValueError(f"min_speed must be between 0.5 and 1.0, got {self.min_speed}")


@dataclass
class TTSOptions(StageOptions):
    pass


@dataclass
class MixOptions(StageOptions):
    pass


@dataclass
class MuxOptions(StageOptions):
    pass


STAGE_OPTIONS: dict[str, type] = {
    "ingest": IngestOptions,
    "transcribe": TranscribeOptions,
    "translate": TranslateOptions,
    "align": AlignOptions,
    "tts": TTSOptions,
    "mix": MixOptions,
    "mux": MuxOptions,
}


@dataclass
class RunnerConfig:
    display: Display = Display.auto
    # Cap on any stage's worker pool; 0 means size from the machine and the providers.
    max_workers: int = 0
    # Segments buffered between two stages before the upstream stage waits.
    queue_size: int = 64
    # Only stage start/end lines, no periodic progress (the speed profile sets it).
    minimal_logging: bool = False


@dataclass
class PerfThresholds:
    """Slowdowns (fraction over the baseline's median) that make each regression severity."""

    low: float = 0.10
    medium: float = 0.20
    high: float = 0.50
    critical: float = 1.00

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.medium <= self.high <= self.critical:
            raise ValueError("perf.thresholds must be 0 < low <= medium <= high <= critical")


@dataclass
class PerfConfig:
    """Run history, baselines and regression checks (docs/monitoring.md)."""

    # SQLite history of every run; null or "" turns it off; VIDEODUB_HISTORY overrides it.
    history: Optional[str] = "outputs/history.sqlite"
    # Compare each run with its baselines at the end and report regressions.
    compare: bool = True
    # Refresh the baselines of a run's keys after it is recorded.
    auto_baseline: bool = True
    # One-sided confidence that a slowdown is not noise, from the baseline's spread and size.
    confidence: float = 0.95
    # Runs a baseline needs before anything is compared with it.
    min_samples: int = 5
    # Recent successful runs a baseline is made from.
    window: int = 20
    thresholds: PerfThresholds = field(default_factory=PerfThresholds)

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"perf.confidence must be in [0.5, 1), got {self.confidence}")
        if self.min_samples < 2 or self.window < self.min_samples:
            raise ValueError("perf.min_samples must be >= 2 and perf.window >= perf.min_samples")


@dataclass
class VideodubConfig:
    # The video (or audio) file to dub.
    input: str = MISSING
    # Language of the dub, an ISO 639-1 code (es, de, en...).
    target_lang: str = MISSING
    # Language spoken in the input; null detects it.
    source_lang: Optional[str] = None
    # Set by the selected profile.
    profile_name: str = "custom"
    # Show tracebacks for errors.
    verbose: bool = False
    # Reuse transcripts and clips from earlier runs of the same input and options.
    cache: bool = True
    cache_dir: str = "outputs/cache"
    # Cap on the cache's size in GB, kept after each job by removing the least recently used
    # entries (never one a running job uses); 0: no cap.
    cache_max_gb: float = 20.0
    # Entries unused for longer than this many days are removed after each job; 0: kept.
    cache_max_age_days: float = 30.0
    # Keep the run's intermediate audio (work/) after a successful run.
    keep_work: bool = False
    # Check everything, print the estimated cost of the paid calls, and stop before any work.
    dry_run: bool = False
    # US dollars per model, for cost estimates and the report (the providers' list prices).
    prices: Dict[str, Price] = field(default_factory=default_prices)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    perf: PerfConfig = field(default_factory=PerfConfig)
    subtitles: SubtitleLayout = field(default_factory=SubtitleLayout)
    ingest: Any = MISSING
    transcribe: Any = MISSING
    translate: Any = MISSING
    align: Any = MISSING
    tts: Any = MISSING
    mix: Any = MISSING
    mux: Any = MISSING


def implementation_config(stage: str, name: str, options: type | None) -> type:
    """The dataclass stored in the config group: the plugin's options, the stage's base
    options, and ``impl`` naming the selected implementation."""
    base = STAGE_OPTIONS[stage]
    bases: tuple[type, ...] = (base,)
    if options is not None:
        if not dataclasses.is_dataclass(options):
            raise TypeError(f"{stage}={name}: config must be a dataclass, got {options!r}")
        bases = (options,) if issubclass(options, base) else (options, base)
    cls_name = "".join(p.capitalize() for p in f"{stage}_{name}".split("_")) + "Config"
    return dataclasses.make_dataclass(
        cls_name, [("impl", str, field(default=name))], bases=bases,
        namespace={"__post_init__": _check_all_bases})


def _check_all_bases(self) -> None:
    """Run every base's own ``__post_init__`` once: a plugin's check must not hide the
    stage's (``workers >= 0``), nor the other way round."""
    seen = set()
    for klass in type(self).__mro__[1:]:
        check = klass.__dict__.get("__post_init__")
        if check is not None and check not in seen and check is not _check_all_bases:
            seen.add(check)
            check(self)


@dataclass
class JobConfig:
    """A validated job: plain values plus one options object per stage."""

    input: str
    target_lang: str
    source_lang: str | None
    profile_name: str
    verbose: bool
    cache: bool
    cache_dir: str
    keep_work: bool
    runner: RunnerConfig
    stages: dict[str, Any]  # stage -> options dataclass instance (with .impl)
    dry_run: bool = False
    prices: dict[str, Price] = field(default_factory=default_prices)
    cache_max_gb: float = 20.0
    cache_max_age_days: float = 30.0
    perf: PerfConfig = field(default_factory=PerfConfig)
    subtitles: SubtitleLayout = field(default_factory=SubtitleLayout)

    def __post_init__(self) -> None:
        if self.cache_max_gb < 0 or self.cache_max_age_days < 0:
            raise VideodubError("cache_max_gb and cache_max_age_days must be >= 0 (0: no limit)")


def validate(cfg: DictConfig) -> JobConfig:
    """Turn a composed config into typed objects, raising one-line VideodubErrors."""
    for key in ("input", "target_lang"):
        if OmegaConf.is_missing(cfg, key):
            raise VideodubError(f"{key} is required (e.g. input=talk.mp4 target_lang=es)")
    if cfg.input is None or not str(cfg.input).strip():
        raise VideodubError("input is empty; name the video to dub (e.g. input=talk.mp4)")
    # A link's password or signature (the input's, a server's base_url) is never written.
    remember_urls(OmegaConf.to_yaml(cfg, resolve=False))
    try:
        target = check_language(str(cfg.target_lang), "target_lang")
        source = check_language(str(cfg.source_lang), "source_lang") if cfg.source_lang else None
        runner = OmegaConf.to_object(cfg.runner)
        prices = OmegaConf.to_object(cfg.prices) if "prices" in cfg else default_prices()
        perf = OmegaConf.to_object(cfg.perf) if "perf" in cfg else PerfConfig()
        subtitles = (OmegaConf.to_object(cfg.subtitles) if "subtitles" in cfg
                     else SubtitleLayout())
    except OmegaConfBaseException as exc:
        raise VideodubError(one_line(exc)) from exc
    except ValueError as exc:
        raise VideodubError(str(exc)) from exc
    stages: dict[str, Any] = {}
    for stage in STAGES:
        node = cfg.get(stage)
        if node is None or not isinstance(node, DictConfig):
            raise VideodubError(f"no {stage} implementation selected (set {stage}=<name>)")
        try:
            stages[stage] = OmegaConf.to_object(node)
        except (ValueError, TypeError) as exc:
            raise VideodubError(f"{stage}: {exc}") from exc
        except OmegaConfBaseException as exc:
            raise VideodubError(one_line(exc)) from exc
    return JobConfig(
        # ``~`` reaches here when the shell did not expand it (quoted, or after ``key=``).
        input=os.path.expanduser(str(cfg.input)), target_lang=target, source_lang=source,
        profile_name=str(cfg.profile_name), verbose=bool(cfg.verbose), cache=bool(cfg.cache),
        cache_dir=str(cfg.cache_dir), keep_work=bool(cfg.keep_work), runner=runner, stages=stages,
        dry_run=bool(cfg.get("dry_run", False)), prices=prices, perf=perf, subtitles=subtitles,
        cache_max_gb=float(cfg.get("cache_max_gb", 20.0)),
        cache_max_age_days=float(cfg.get("cache_max_age_days", 30.0)))


def explain(exc: BaseException) -> str:
    """A Hydra or OmegaConf error as the one line a user needs: for an unknown choice, the
    choices; for an unknown key, the keys its parent takes; otherwise the key and the problem."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    chain = _chain(exc)
    for e in chain:
        if isinstance(e, MissingConfigException) and e.missing_cfg_file and e.options:
            group, _, choice = e.missing_cfg_file.rpartition("/")
            what = f"{group} implementation" if group in STAGES else group or "config"
            return f"unknown {what} {choice!r}; choices: {', '.join(sorted(e.options))}"
    message = one_line(exc)
    for e in chain:
        if (isinstance(e, (ConfigKeyError, ConfigAttributeError)) and e.parent_node is not None
                and e.full_key):
            parent = e.full_key.rpartition(".")[0]
            keys = [k for k in e.parent_node.keys() if isinstance(k, str) and k != "hydra"]
            if keys:
                return f"{message}; {parent or 'top level'} takes: {', '.join(keys)}"
    return message


def _chain(exc: BaseException | None) -> list[BaseException]:
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def one_line(exc: BaseException) -> str:
    """OmegaConf/Hydra errors span several lines; keep the ones that name the key and the problem."""
    chain = _chain(exc)
    lines = [ln.strip() for e in chain for ln in str(e).splitlines() if ln.strip()]
    exc = chain[0]
    full_key = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("full_key:")), None)
    detail = [ln for ln in lines if not ln.startswith(("full_key:", "object_type=", "reference_type=",
                                                        "To append to your config", "Set the environment"))]
    if not detail:
        return type(exc).__name__
    head = detail[0]
    # Hydra's first line is often only "Error merging override x=y": the cause follows it.
    if len(detail) > 1 and (head.startswith(("Error merging", "Could not override"))):
        head = detail[1]
    if full_key and full_key not in head:
        head = f"{full_key}: {head}"
    return head
