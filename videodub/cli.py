"""Command line: ``python -m videodub key=value ...`` (Hydra), and ``python -m videodub plugins``.

Before Hydra runs anything, the overrides are composed and validated here so that a bad
implementation name or value fails at once with one line naming the key and the choices.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
from importlib import resources
from pathlib import Path

from videodub.errors import VideodubError

MAX_PREFLIGHT_COMBINATIONS = 16
PASS_THROUGH_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--resolve",
                      "--shell-completion", "-sc", "--version", "--package", "-p"}


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    runner = sys.modules.get("videodub.runner")
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


def profiles() -> list[str]:
    folder = resources.files("videodub.conf") / "profile"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


# Hydra flags whose value may follow as the next argument.
VALUE_FLAGS = {"--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp",
               "--experimental-rerun", "--package", "-p"}
# Flags that select another config than the packaged one: Hydra itself validates those jobs.
CONFIG_FLAGS = {"--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp"}


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


def preflight(argv: list[str]) -> bool:
    """Compose and validate every combination the overrides ask for (the first few of a sweep).

    With ``dry_run=true``, also check each job (input, providers) and print its estimated
    cost; returns True when it did, and nothing should run."""
    from hydra import compose, initialize_config_module
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from videodub.config import one_line, validate
    try:
        parsed = OverridesParser.create().parse_overrides(_overrides(argv))
    except HydraException as exc:
        raise VideodubError(one_line(exc)) from exc
    axes: list[list[str]] = []
    for o in parsed:
        key = o.key_or_group
        if key.startswith("hydra") or o.is_delete():
            continue
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [
            o.get_value_element_as_str()]
        if o.package is None:
            for v in values:
                check_choice(key, v)
        axes.append([f"{_prefix(o)}{key}{_package(o)}={v}" for v in values])
    jobs = []
    with initialize_config_module(config_module="videodub.conf", version_base="1.3"):
        for combo in itertools.islice(itertools.product(*axes), MAX_PREFLIGHT_COMBINATIONS):
            try:
                cfg = compose(config_name="config", overrides=list(combo))
            except (HydraException, OmegaConfBaseException) as exc:
                message = one_line(exc)
                raise VideodubError(message + _known_keys(message, list(combo), compose)) from exc
            jobs.append((combo, validate(cfg)))
    if not any(job.dry_run for _, job in jobs):
        return False
    from videodub.runner import Runner

    for combo, job in jobs:
        result = Runner(job, Path("."), display="quiet").dry_run()
        label = " ".join(c for c in combo if "=" in c) if len(jobs) > 1 else ""
        print(f"{label + ': ' if label else ''}{result.report['summary']} "
              f"(checks took {result.report['preflight_s']:.2f} s)", flush=True)
    return True


def _known_keys(message: str, overrides: list[str], compose) -> str:
    """For an unknown key, the keys its parent does take."""
    match = re.search(r"Key '([^']+)' not in", message)
    if not match:
        return ""
    full_key = message.split(":", 1)[0] if ":" in message.split("Key", 1)[0] else match.group(1)
    parent = full_key.rpartition(".")[0]
    rest = [o for o in overrides if not o.lstrip("+").startswith(full_key + "=")]
    try:
        node = compose(config_name="config", overrides=rest)
        if parent:
            node = node.select(parent) if hasattr(node, "select") else node[parent]
    except Exception:  # noqa: BLE001 - only a hint
        return ""
    keys = [k for k in node.keys() if isinstance(k, str)] if hasattr(node, "keys") else []
    return f"; {parent or 'top level'} takes: {', '.join(keys)}" if keys else ""


def stored_choices(group: str) -> list[str]:
    """The implementations stored in Hydra's ConfigStore for a stage group."""
    from hydra.core.config_store import ConfigStore

    try:
        return sorted(n.removesuffix(".yaml") for n in ConfigStore.instance().list(group))
    except OSError:
        return []


def check_choice(group: str, choice: str) -> None:
    """A config-group choice names something that exists; else one line with the choices."""
    from videodub.model import STAGES

    if group in STAGES:
        names = stored_choices(group)
        if choice not in names:
            raise VideodubError(
                f"unknown {group} implementation {choice!r}; choices: {', '.join(names)}")
    elif group == "profile" and choice not in profiles():
        raise VideodubError(f"unknown profile {choice!r}; choices: {', '.join(profiles())}")


def _prefix(o) -> str:
    from hydra.core.override_parser.types import OverrideType

    return {OverrideType.ADD: "+", OverrideType.FORCE_ADD: "++"}.get(o.type, "")


def _package(o) -> str:
    return f"@{o.package}" if o.package is not None else ""


def list_plugins() -> None:
    from rich.console import Console
    from rich.table import Table

    from videodub.model import STAGES
    from videodub.plugins import collect, load_warnings, plugin_distribution

    registry = collect()
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
    from the registry and one composition."""
    from omegaconf import OmegaConf, open_dict

    from videodub.api import compose_config
    from videodub.model import STAGES

    cfg = compose_config(_overrides(argv), with_hydra=True)
    texts = cfg.hydra.help
    header, footer = str(texts.header).rstrip(), str(texts.footer).rstrip()
    with open_dict(cfg):
        del cfg["hydra"]
    print(header)
    print("\n== Configuration groups ==\nCompose your configuration from those groups (group=option)\n")
    for group in sorted([*STAGES, "profile"]):
        names = profiles() if group == "profile" else stored_choices(group)
        print(f"{group}: {', '.join(names)}")
    print("\n== Config ==\nOverride anything in the config (foo.bar=value)\n")
    print(OmegaConf.to_yaml(cfg, resolve=False).rstrip())
    print("\n" + footer)


def task(cfg) -> None:
    """The Hydra task: validate, run, print the dubbed video's path last."""
    from hydra.core.hydra_config import HydraConfig

    from videodub.config import validate
    from videodub.runner import Runner

    verbose = bool(cfg.get("verbose", False))
    try:
        job = validate(cfg)
        result = Runner(job, Path(HydraConfig.get().runtime.output_dir)).run()
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

    from videodub.plugins import collect, register_configs

    argv = list(sys.argv[1:] if argv is None else argv)
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
        register_configs(collect())
        flags = {a.split("=", 1)[0] for a in argv}
        if not PASS_THROUGH_FLAGS.intersection(flags) and not CONFIG_FLAGS.intersection(flags):
            if preflight(argv):
                return
    except VideodubError as exc:
        if verbose:
            raise
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)

    sys.argv = [sys.argv[0], *argv]
    hydra.main(config_path="conf", config_name="config", version_base="1.3")(task)()
