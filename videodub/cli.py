"""Command line: ``python -m videodub key=value ...`` (Hydra), ``python -m videodub plugins``
and ``python -m videodub perf ...`` (``videodub/perf/cli.py``).

Before Hydra runs anything, the jobs the overrides ask for are composed (each job of a sweep
as Hydra's sweeper expands it, the first few) and validated, so that a bad implementation
name or value fails at once with one line naming the key and the choices.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from videodub.errors import VideodubError
from videodub.overrides import (CONFIG_FLAGS, MULTIRUN_FLAGS, PASS_THROUGH_FLAGS, VALUE_FLAGS,
                                plain_input, quote_values, unquote)
from videodub.providers.secrets import redact, redact_file, remember_url, remember_urls
from videodub.run.batch import register_resolver

if TYPE_CHECKING:
    from videodub.plugins import Registry

# Run folders of many inputs are named by a resolver; a launcher's worker process imports
# this module (where the task lives), so it has the resolver too.
register_resolver()

# Jobs of a sweep checked before it starts; the rest are checked as they run.
MAX_PREFLIGHT_JOBS = 16


def fail(message: str, code: int = 2) -> None:
    print(f"error: {redact(message)}", file=sys.stderr, flush=True)
    runner = sys.modules.get("videodub.run.runner")
    if runner is not None and runner.stage_threads_started():
        # After a job has run, native code may still be busy: a stage thread finishing a
        # CTranslate2 window, or the decoder's OpenMP workers winding down just after a
        # cancel. Interpreter teardown does not survive either (exit -6, "terminate called
        # without an active exception", a few Ctrl-Cs in ten on a loaded machine). Everything
        # the job keeps is already on disk, so flush and leave at once.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def run_folder(argv: list[str]) -> tuple[Path, str] | None:
    """The run folder the command line names and the key that names it; None when it is
    Hydra's default (under ``outputs/``) or made from interpolations."""
    key = "hydra.sweep.dir" if MULTIRUN_FLAGS.intersection(argv) else "hydra.run.dir"
    given = [a.split("=", 1)[1] for a in argv if a.startswith(f"{key}=")]
    value = unquote(given[-1]) if given else ""
    return None if "${" in value or not value else (Path(value), key)


def check_run_folder(folder: Path, key: str) -> None:
    """One line, before Hydra tries (and prints a traceback), when the run folder cannot be
    made: a regular file on its path, or a folder that cannot be written to."""
    folder = folder.absolute()
    for existing in [folder, *folder.parents]:
        if existing.exists():
            if not existing.is_dir():
                reason = f"{existing} is not a folder"
            elif not os.access(existing, os.W_OK | os.X_OK):
                reason = f"{existing} is not writable"
            else:
                return
            raise VideodubError(f"cannot create the run folder {folder}: {reason}; set {key} "
                                f"to a folder you can write to")


def _overrides(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in VALUE_FLAGS:
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def job_overrides(argv: list[str]) -> list[list[str]]:
    """The overrides of each job the command line asks for, as Hydra's basic sweeper splits
    a sweep (``profile=speed,quality`` is two jobs); Hydra's own keys are left to Hydra."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from videodub.config import one_line

    try:
        parsed = OverridesParser.create().parse_overrides(_overrides(argv))
    except HydraException as exc:
        raise VideodubError(
            f"{one_line(exc)}; quote a value with characters Hydra's grammar does not read "
            f"unquoted, inside the shell's quotes: \"key='value'\"") from exc
    parsed = [o for o in parsed if not o.key_or_group.startswith("hydra") and not o.is_delete()]
    sweeps = [o for o in parsed if o.is_sweep_override()]
    if sweeps and not MULTIRUN_FLAGS.intersection(argv):
        raise VideodubError(f"{sweeps[0].input_line} asks for several jobs; add -m (--multirun) "
                            f"to run one per value, or quote the value to keep it one string")
    batches = BasicSweeper.split_arguments(parsed, None)
    return [job for batch in batches for job in batch] or [[]]


def preflight(argv: list[str], registry: Registry | None = None) -> bool:
    """Compose and validate the jobs the command line asks for (the first few of a sweep).

    With ``dry_run=true``, also check each job (input, providers) and print its estimated
    cost; returns True when it did, and nothing should run."""
    from videodub.api import compose_job
    from videodub.run.runner import Runner

    jobs_overrides = job_overrides(argv)
    jobs = [(overrides, compose_job(overrides, registry))
            for overrides in jobs_overrides[:MAX_PREFLIGHT_JOBS]]
    if not any(job.dry_run for _, job in jobs):
        return False
    for overrides, job in jobs:
        result = Runner(job, Path("."), registry, display="quiet").dry_run()
        label = " ".join(overrides) if len(jobs) > 1 else ""
        print(f"{label + ': ' if label else ''}{result.report['summary']} "
              f"(checks took {result.report['preflight_s']:.2f} s)", flush=True)
    return True


def cache_command(argv: list[str]) -> None:
    """``python -m videodub cache [prune] [cache_dir=...] [cache_max_gb=...]
    [cache_max_age_days=...]``: the cache's size per kind; ``prune`` applies the limits now."""
    import time

    from videodub.api import compose
    from videodub.run.prune import limits, prune, usage

    do_prune = bool(argv) and argv[0] == "prune"
    overrides = [a for a in argv[1 if do_prune else 0:]]
    bad = [a for a in overrides if a.split("=", 1)[0] not in
           ("cache_dir", "cache_max_gb", "cache_max_age_days")]
    if bad:
        raise VideodubError(f"cache takes prune, cache_dir=, cache_max_gb=, cache_max_age_days=; "
                            f"got {bad[0]}")
    cfg = compose(overrides)
    root = Path(str(cfg.cache_dir)).resolve()
    if do_prune:
        max_bytes, max_age = limits(float(cfg.cache_max_gb), float(cfg.cache_max_age_days))
        result = prune(root, max_bytes, max_age)
        print(f"removed {len(result.removed)} entries ({result.freed / 2**20:.1f} MiB)"
              + (f"; {result.kept_in_use / 2**20:.1f} MiB over the cap kept for running jobs"
                 if result.kept_in_use else "")
              + (f"; {len(result.stale_temporaries)} half-written files of stopped jobs removed"
                 if result.stale_temporaries else ""))
    rows = usage(root)
    now = time.time()
    for kind, row in sorted(rows.items()):
        print(f"{kind:<14} {int(row['entries']):>7} entries {row['bytes'] / 2**20:>10.1f} MiB  "
              f"oldest use {(now - row['oldest_use']) / 86400:.1f} days ago")
    total = sum(r["bytes"] for r in rows.values())
    print(f"{root}: {total / 2**20:.1f} MiB in {sum(int(r['entries']) for r in rows.values())} "
          f"entries (cap {float(cfg.cache_max_gb):g} GB, age limit "
          f"{float(cfg.cache_max_age_days):g} days; 0 = none)")


def list_plugins() -> None:
    from rich.console import Console
    from rich.table import Table

    from videodub.model import STAGES
    from videodub.plugins import installed_registry, load_warnings, plugin_distribution

    registry = installed_registry()
    table = Table(title="videodub implementations", title_justify="left")
    for col in ("stage", "name", "plugin", "package", "description"):
        table.add_column(col)
    for stage in STAGES:
        for name in registry.names(stage):
            impl = registry.by_stage[stage][name]
            table.add_row(stage, name, impl.plugin, plugin_distribution(impl.plugin),
                          impl.description)
    console = Console(width=140)
    console.print(table)
    for warning in load_warnings():
        console.print(f"warning: {warning}")


def print_help(argv: list[str]) -> None:
    """Groups, choices and the composed config. Hydra's own --help lists groups by deep-copying
    its config repository once per group, which takes most of a second; this is the same page
    from one composition."""
    from omegaconf import OmegaConf, open_dict

    from videodub.api import compose, group_options
    from videodub.model import STAGES

    cfg = compose(_overrides(argv), with_hydra=True)
    texts = cfg.hydra.help
    header, footer = str(texts.header).rstrip(), str(texts.footer).rstrip()
    with open_dict(cfg):
        del cfg["hydra"]
    print(header)
    print("\n== Configuration groups ==\nCompose your configuration from those groups (group=option)\n")
    for group, names in group_options([*STAGES, "profile"]).items():
        print(f"{group}: {', '.join(names)}")
    print("\n== Config ==\nOverride anything in the config (foo.bar=value)\n")
    print(OmegaConf.to_yaml(cfg, resolve=False).rstrip())
    print("\n" + footer)


def task(cfg) -> None:
    """The Hydra task: validate, run, print the dubbed video's path last."""
    from hydra.core.hydra_config import HydraConfig

    from videodub.config import validate
    from videodub.plugins import installed_registry
    from videodub.run.runner import Runner

    verbose = bool(cfg.get("verbose", False))
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if cfg.get("input"):
        # A link's secrets: masked in what this process writes, and in what Hydra wrote
        # before the job started (its record of the config, a sweep's list of jobs).
        remember_url(str(cfg.input))
        subdir = run_dir / str(hydra_cfg.output_subdir or ".hydra")
        for path in [*subdir.glob("*.yaml"), Path(str(hydra_cfg.sweep.dir)) / "multirun.yaml"]:
            redact_file(path)
    # One input of many: a failure is that input's line in the summary, the others go on;
    # an input an earlier run of the same job finished is skipped.
    one_of_many = _one_of_many()
    if one_of_many and _skip_if_done(cfg, run_dir):
        return
    try:
        job = validate(cfg)
        display, label = None, ""
        if _in_parallel_sweep():
            # Jobs side by side write to one terminal: lines, each naming its job as Hydra's
            # launch list does, instead of live tables drawn over each other.
            label = f"#{hydra_cfg.job.num} "
            display = "plain" if job.runner.display.value == "auto" else None
        result = Runner(job, run_dir, installed_registry(), display=display, label=label).run()
    except VideodubError as exc:
        if verbose:
            raise
        logging.getLogger("videodub").info("failed: %s", exc)
        if one_of_many:
            return _failed_one(cfg, run_dir, str(exc))
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; completed work is kept (subtitles, cached transcript and clips)", 130)
    except Exception as exc:  # noqa: BLE001 - a bug: still one line unless verbose
        if verbose:
            raise
        message = f"internal error: {type(exc).__name__}: {exc} (run with verbose=true for details)"
        if one_of_many:
            return _failed_one(cfg, run_dir, message)
        fail(message, 1)
    if one_of_many and result.video is not None:
        from videodub.run.batch import mark_done

        mark_done(run_dir, cfg, result.video)
    if result.video is None:  # dry_run=true with a config Hydra composed from elsewhere
        print(result.report["summary"], flush=True)
        return
    print(result.video, flush=True)


def _in_parallel_sweep() -> bool:
    """Whether this job may run beside others of its sweep (any launcher but Hydra's basic
    one, which runs them one after another)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    config = HydraConfig.get()
    return (config.mode == RunMode.MULTIRUN
            and not str(config.launcher.get("_target_", "")).endswith(".BasicLauncher"))


def _one_of_many() -> bool:
    from hydra.core.hydra_config import HydraConfig

    callbacks = HydraConfig.get().get("callbacks") or {}
    return any(str(cb.get("_target_", "")).endswith("batch.InputsSummary")
               for cb in callbacks.values())


def _skip_if_done(cfg, run_dir: Path) -> bool:
    from videodub.run.batch import already_done

    marker = run_dir / "skipped"
    video = already_done(run_dir, cfg)
    if video is None:
        # A fresh attempt: nothing of an earlier one may speak for it in the summary.
        for name in ("skipped", "done.json", "report.json"):
            (run_dir / name).unlink(missing_ok=True)
        return False
    marker.touch()
    print(redact(f"{cfg.input}: done earlier, skipped: {video}"), flush=True)
    return True


def _failed_one(cfg, run_dir: Path, message: str) -> None:
    from videodub.run.batch import record_failure

    line = message if str(cfg.input) in message else f"{cfg.input}: {message}"
    print(f"error: {redact(line)}", file=sys.stderr, flush=True)
    record_failure(run_dir, redact(str(cfg.input)), redact(message))


def main(argv: list[str] | None = None) -> None:
    import hydra

    import videodub.config  # noqa: F401 - registers the resolver the run folder's name uses
    from videodub.api import quiet_missing_user_conf
    from videodub.inputs import with_ingest_for
    from videodub.launchers import check_ray_address
    from videodub.plugins import installed_registry, register_configs
    from videodub.run.batch import batch_argv, last_failed

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["cache"]:
        try:
            cache_command(argv[1:])
        except VideodubError as exc:
            fail(str(exc))
        return
    if argv[:1] == ["perf"]:
        from videodub.perf.cli import main as perf_main

        code = perf_main(argv[1:])
        sys.stdout.flush()
        sys.exit(code)
    if argv[:1] in (["plugins"], ["--plugins"]):
        try:
            list_plugins()
        except VideodubError as exc:
            fail(str(exc))
        return
    verbose = any(a in ("verbose=true", "verbose=True") for a in argv)
    if ("--help" in argv or "-h" in argv) and "--hydra-help" not in argv:
        try:
            print_help(argv)
        except VideodubError as exc:
            fail(str(exc))
        return
    try:
        argv = quote_values(plain_input(argv))
        # Many inputs (a folder, a glob, a list) become a sweep; a URL picks ingest=url.
        argv = with_ingest_for(batch_argv(argv))
        remember_urls(" ".join(argv))  # a link's password or signature is never written
        check_ray_address(argv)
        registry = installed_registry()
        register_configs(registry)
        flags = {a.split("=", 1)[0] for a in argv}
        if not PASS_THROUGH_FLAGS.intersection(flags) and not CONFIG_FLAGS.intersection(flags):
            folder = run_folder(argv)
            key = "hydra.sweep.dir" if MULTIRUN_FLAGS.intersection(argv) else "hydra.run.dir"
            check_run_folder(*(folder or (Path("outputs"), key)))
            if preflight(argv, registry):
                return
            if folder is not None and folder[1] == "hydra.run.dir":
                from videodub.run.ownership import hold_for_process

                hold_for_process(folder[0])  # before Hydra writes its files into it
    except VideodubError as exc:
        if verbose:
            raise
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)

    quiet_missing_user_conf()
    sys.argv = [sys.argv[0], *argv]
    hydra.main(config_path="conf", config_name="config", version_base="1.3")(task)()
    if last_failed():
        sys.exit(1)
