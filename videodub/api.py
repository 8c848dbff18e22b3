"""videodub as a library, and the one way a config is composed from overrides: the command
line, the library call, the pre-run checks and the tests all go through :func:`compose`.

    from videodub.api import dub
    result = dub(["input=talk.mp4", "target_lang=es", "profile=speed"], run_dir="out/talk")
    print(result.video, result.report["wall_s"])
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from videodub.config import JobConfig, explain, validate
from videodub.errors import VideodubError
from videodub.inputs import with_ingest_for
from videodub.overrides import quote_values
from videodub.plugins import Registry, installed_registry, register_configs

if TYPE_CHECKING:
    from videodub.run.runner import RunResult

CONFIG_MODULE = "videodub.conf"
CONFIG_NAME = "config"
# A project's own config folder (``hydra.searchpath`` in conf/config.yaml), beside the videos.
USER_CONF = Path("conf")


def quiet_missing_user_conf() -> None:
    """The user's ./conf is optional: Hydra warns when a search path is missing."""
    warnings.filterwarnings("ignore", message=r"provider=hydra\.searchpath in main, path=conf is not available")


@contextmanager
def _hydra(registry: Registry | None) -> Iterator[None]:
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    register_configs(registry or installed_registry())
    quiet_missing_user_conf()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        yield


def compose(overrides: Sequence[str] = (), registry: Registry | None = None,
            with_hydra: bool = False) -> DictConfig:
    """The config these overrides make, exactly as ``python -m videodub`` would run it, with
    the implementations of ``registry`` (the installed ones by default). ``with_hydra`` keeps
    Hydra's own node (run dirs, help texts). Values Hydra's grammar refuses unquoted (a link
    with ``?v=``, a path with parentheses) are quoted as the command line quotes them. A
    mistake is one-line VideodubError."""
    from hydra import compose as hydra_compose
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    with _hydra(registry):
        try:
            overrides = with_ingest_for(quote_values(list(overrides)))
            return hydra_compose(config_name=CONFIG_NAME, overrides=overrides,
                                 return_hydra_config=with_hydra)
        except (HydraException, OmegaConfBaseException) as exc:
            raise VideodubError(explain(exc)) from exc


def group_options(groups: Sequence[str], registry: Registry | None = None) -> dict[str, list[str]]:
    """The choices of each config group, as Hydra sees them: registered implementations,
    packaged profiles, and the user's own under ./conf."""
    from hydra.core.global_hydra import GlobalHydra

    with _hydra(registry):
        loader = GlobalHydra.instance().config_loader()
        options = {group: set(loader.get_group_options(group)) for group in groups}
    # The primary config adds ./conf to the search path only while it composes.
    for group in groups:
        options[group].update(p.stem for p in (USER_CONF / group).glob("*.yaml"))
    return {group: sorted(names) for group, names in options.items()}


def compose_job(overrides: Sequence[str] = (), registry: Registry | None = None) -> JobConfig:
    """:func:`compose`, validated into the typed job the runner takes."""
    return validate(compose(overrides, registry))


def dub(overrides: Sequence[str], run_dir: str | Path, registry: Registry | None = None,
        display: str = "quiet") -> RunResult:
    """Run one job into ``run_dir``; raises VideodubError for problems the user can fix."""
    # The runner (and numpy, psutil, rich behind it) loads only when a job runs: --help and
    # config checks stay quick.
    from videodub.run.runner import Runner

    registry = registry or installed_registry()
    return Runner(compose_job(overrides, registry), Path(run_dir), registry=registry,
                  display=display).run()


__all__ = ["compose", "compose_job", "dub", "group_options"]
