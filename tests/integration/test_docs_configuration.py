"""docs/configuration.md documents every key of every built-in implementation and profile."""

from __future__ import annotations

import dataclasses
import re

import pytest
from conftest import PROJECT_ROOT

from videodub.config import RunnerConfig, VideodubConfig
from videodub.model import STAGES
from videodub.plugins import collect, plugin_distribution

DOCS = PROJECT_ROOT / "docs"
CONFIG_DOC = (DOCS / "configuration.md").read_text(encoding="utf-8")
PROFILE_DOC = (DOCS / "profiles.md").read_text(encoding="utf-8")
BUILTIN = "videodub"


def documented(key: str) -> bool:
    return re.search(rf"`{re.escape(key)}[`= ]", CONFIG_DOC) is not None


def builtin_implementations():
    registry = collect()
    for stage in STAGES:
        for name, impl in registry.by_stage[stage].items():
            if plugin_distribution(impl.plugin).split()[0] == BUILTIN:
                yield stage, name, impl


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(VideodubConfig)
                                   if f.name not in STAGES and f.name != "runner"])
def test_top_level_keys_are_documented(field):
    assert documented(field), f"`{field}` missing from docs/configuration.md"


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(RunnerConfig)])
def test_runner_keys_are_documented(field):
    assert documented(f"runner.{field}"), f"`runner.{field}` missing from docs/configuration.md"


def test_every_builtin_option_is_documented():
    missing = []
    for stage, name, impl in builtin_implementations():
        assert f"`{stage}={name}`" in CONFIG_DOC, f"{stage}={name} not described"
        for f in dataclasses.fields(impl.config):
            if f.name in ("workers", "effort", "impl"):
                continue  # documented once as <stage>.<key>
            if not documented(f"{stage}.{f.name}") and f"`{stage}.{f.name}`" not in CONFIG_DOC:
                missing.append(f"{stage}.{f.name}")
    assert not missing, f"undocumented keys: {missing}"


def test_profiles_table_covers_what_profiles_set():
    from omegaconf import OmegaConf

    conf = PROJECT_ROOT / "videodub" / "conf" / "profile"
    for path in conf.glob("*.yaml"):
        data = OmegaConf.to_container(OmegaConf.load(path))
        data.pop("defaults", None)
        data.pop("profile_name", None)
        for section, values in data.items():
            for key in values:
                if key == "effort":
                    continue
                assert f"`{section}.{key}`" in PROFILE_DOC, (
                    f"{path.name} sets {section}.{key}, not in docs/profiles.md")
