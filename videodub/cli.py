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
from videodub.providers.secrets import redact

if TYPE_CHECKING:
    from videodub.plugins import Registry

# Jobs of a sweep checked before it starts; the rest are checked as they run.
MAX_PREFLIGHT_JOBS = 16
PASS_THROUGH_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--resolve",
                      "--shell-completion", "-sc", "--version", "--package", "-p"}
MULTIRUN_FLAGS = {"-m", "--multirun"}
# Hydra flags whose value may follow as the next argument.
VALUE_FLAGS = {"--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp",
               "--experimental-rerun", "--package", "-p"}
# Flags that select another config than the packaged one: Hydra itself validates those jobs.
CONFIG_FLAGS = {"--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp"}


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
        raise VideodubError(one_line(exc)) from exc
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
    try:
        job = validate(cfg)
        result = Runner(job, Path(HydraConfig.get().runtime.output_dir), installed_registry()).run()
    except VideodubError as exc:
        if verbose:
            raise
        logging.getLogger("videodub").info("failed: %s", exc)
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; completed work is kept (subtitles, cached transcript and clips)", 130)
    except Exception as exc:  # noqa: BLE001 - a bug: still one line unless verbose
        if verbose:
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (run with verbose=true for details)", 1)
    if result.video is None:  # dry_run=true with a config Hydra composed from elsewhere
        print(result.report["summary"], flush=True)
        return
    print(result.video, flush=True)


def main(argv: list[str] | None = None) -> None:
    import hydra

    from videodub.api import quiet_missing_user_conf
    from videodub.plugins import installed_registry, register_configs

    argv = list(sys.argv[1:] if argv is None else argv)
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
        registry = installed_registry()
        register_configs(registry)
        flags = {a.split("=", 1)[0] for a in argv}
        if not PASS_THROUGH_FLAGS.intersection(flags) and not CONFIG_FLAGS.intersection(flags):
            if preflight(argv, registry):
                return
    except VideodubError as exc:
        if verbose:
            raise
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)

    quiet_missing_user_conf()
    sys.argv = [sys.argv[0], *argv]
    hydra.main(config_path="conf", config_name="config", version_base="1.3")(task)()
