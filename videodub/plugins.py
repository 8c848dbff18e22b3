"""Finds plugins, collects the stage implementations they register, and stores their configs.

Built-in implementations are ordinary plugins declared under the ``videodub`` entry-point
group in videodub's own package metadata; third-party packages use the same group.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

from videodub import hookspecs
from videodub.config import implementation_config
from videodub.errors import VideodubError
from videodub.model import STAGE_PROTOCOLS, STAGES, JobScope, Scoped

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "videodub"

# stage -> the hook that registers its implementations
STAGE_HOOKS = {
    "ingest": "register_ingesters",
    "transcribe": "register_transcribers",
    "translate": "register_translators",
    "align": "register_aligners",
    "tts": "register_tts",
    "mix": "register_mixers",
    "mux": "register_muxers",
}


@dataclass(frozen=True)
class Implementation:
    stage: str
    name: str
    factory: Callable[[Any], Any]
    config: type  # the dataclass stored in the config group
    description: str
    plugin: str  # the plugin (entry point) that registered it

    def create(self, options: Any, scope: JobScope | None = None) -> Any:
        """The stage object for one job, given the job's scope if it asks for one (outside a
        job, a scope of its own with the installed implementations)."""
        obj = self.factory(options)
        protocol = STAGE_PROTOCOLS[self.stage]
        if not isinstance(obj, protocol):
            raise VideodubError(
                f"{self.stage}={self.name} (from plugin {self.plugin}) does not implement "
                f"{protocol.__name__}")
        if isinstance(obj, Scoped):
            obj.attach(scope if scope is not None else JobScope(installed_registry()))
        return obj


class Registry:
    """All implementations, by stage and name."""

    def __init__(self) -> None:
        self.by_stage: dict[str, dict[str, Implementation]] = {s: {} for s in STAGES}
        # The hooks of the plugin manager it was collected from: observers and advisor rules.
        self.hook: Any = None

    def add(self, impl: Implementation) -> None:
        existing = self.by_stage[impl.stage].get(impl.name)
        if existing is not None:
            raise VideodubError(
                f"{impl.stage}={impl.name} is registered by two plugins: "
                f"{existing.plugin} and {impl.plugin}")
        self.by_stage[impl.stage][impl.name] = impl

    def get(self, stage: str, name: str) -> Implementation:
        try:
            return self.by_stage[stage][name]
        except KeyError:
            raise VideodubError(
                f"unknown {stage} implementation {name!r}; choices: {', '.join(self.names(stage))}"
            ) from None

    def names(self, stage: str) -> list[str]:
        return sorted(self.by_stage[stage])


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("videodub")
    pm.add_hookspecs(hookspecs)
    return pm


_lock = threading.Lock()
_pm: pluggy.PluginManager | None = None
_load_warnings: list[str] = []
_distributions: dict[str, str] = {}  # plugin name -> "dist version"


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every installed plugin loaded (once)."""
    global _pm
    with _lock:
        if _pm is None:
            pm = make_plugin_manager()
            load_entry_points(pm)
            pm.check_pending()
            _pm = pm
        return _pm


def load_entry_points(pm: pluggy.PluginManager) -> None:
    """Load every ``videodub`` entry point; a broken third-party plugin warns, it does not stop us."""
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None:
            continue
        dist = ep.dist.name if ep.dist else "?"
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            # A misspelled hook name is accepted silently by register(); check now, per
            # plugin, so that the culprit is the one skipped.
            pm.check_pending()
        except Exception as exc:  # noqa: BLE001 - any error in someone else's package
            if dist == "videodub":
                raise
            if pm.get_plugin(ep.name) is not None:
                pm.unregister(name=ep.name)
            reason = " ".join(str(exc).split()) or type(exc).__name__
            message = f"plugin {ep.name!r} from {dist} failed to load and is skipped: {reason}"
            _load_warnings.append(message)
            log.warning(message)
            continue
        if ep.dist is not None:
            _distributions[ep.name] = f"{ep.dist.name} {ep.dist.version}"


def load_warnings() -> list[str]:
    return list(_load_warnings)


def collect(pm: pluggy.PluginManager | None = None) -> Registry:
    """Call every registration hook and build the registry."""
    pm = pm or get_plugin_manager()
    registry = Registry()
    registry.hook = pm.hook
    for stage, hook_name in STAGE_HOOKS.items():
        hook = getattr(pm.hook, hook_name)
        for hookimpl in reversed(hook.get_hookimpls()):
            plugin_name = pm.get_name(hookimpl.plugin) or repr(hookimpl.plugin)

            def register(name: str, factory: Callable[[Any], Any], config: type | None = None,
                         description: str = "", _stage: str = stage, _plugin: str = plugin_name
                         ) -> None:
                try:
                    options = implementation_config(_stage, name, config)
                except TypeError as exc:
                    raise VideodubError(f"plugin {_plugin}: {exc}") from exc
                registry.add(Implementation(stage=_stage, name=name, factory=factory,
                                            config=options, description=description,
                                            plugin=_plugin))

            hookimpl.function(register=register)
    return registry


_installed: Registry | None = None


def installed_registry() -> Registry:
    """The implementations of every installed plugin, collected once per process: the
    command line and the library build on this one, and pass it on."""
    global _installed
    with _lock:
        registry = _installed
    if registry is None:
        registry = collect()
        with _lock:
            _installed = _installed or registry
            registry = _installed
    return registry


def plugin_distribution(plugin_name: str) -> str:
    """'distribution version' of an entry-point plugin, or '-' for one registered in code."""
    return _distributions.get(plugin_name, "-")


def register_configs(registry: Registry) -> None:
    """Store each implementation's config in Hydra's ConfigStore, one group per stage."""
    from hydra.core.config_store import ConfigStore

    from videodub.config import VideodubConfig

    cs = ConfigStore.instance()
    cs.store(name="videodub_schema", node=VideodubConfig)
    for stage in STAGES:
        for name, impl in registry.by_stage[stage].items():
            cs.store(group=stage, name=name, node=impl.config)
