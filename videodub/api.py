"""videodub as a library: compose a config from overrides and run it, without ``@hydra.main``.

    from videodub.api import dub
    result = dub(["input=talk.mp4", "target_lang=es", "profile=speed"], run_dir="out/talk")
    print(result.video, result.report["wall_s"])
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from videodub.cli import check_choice
from videodub.config import JobConfig, one_line, validate
from videodub.errors import VideodubError
from videodub.plugins import Registry, collect, register_configs
from videodub.runner import Runner, RunResult


def compose_config(overrides: list[str] | None = None, with_hydra: bool = False) -> DictConfig:
    """The composed config for these overrides (the same one the command line would run);
    ``with_hydra`` keeps Hydra's own node (run dirs, help texts)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_configs(collect())
    for override in overrides or []:
        group, sep, choice = override.partition("=")
        if sep and "." not in group and "@" not in group and "," not in choice:
            check_choice(group.lstrip("+~"), choice)
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_module(config_module="videodub.conf", version_base="1.3"):
        try:
            return compose(config_name="config", overrides=list(overrides or []),
                           return_hydra_config=with_hydra)
        except (HydraException, OmegaConfBaseException) as exc:
            raise VideodubError(one_line(exc)) from exc


def compose_job(overrides: list[str] | None = None) -> JobConfig:
    return validate(compose_config(overrides))


def dub(overrides: list[str], run_dir: str | Path, registry: Registry | None = None,
        display: str = "quiet") -> RunResult:
    """Run one job into ``run_dir``; raises VideodubError for problems the user can fix."""
    return Runner(compose_job(overrides), Path(run_dir), registry=registry, display=display).run()
