"""The installed package works on its own: build a wheel offline, install it into a folder,
and run it from outside the repository, where only the installed copy can be found.

The wheel must carry the Hydra configs (videodub/conf) and the entry points that make the
built-in implementations plugins; without them a pip-installed videodub has no stages.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

PROFILES = ("quality", "balanced", "speed")
# Left out of the build copy: version control, environments, build and run leftovers.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "venv", "outputs", "multirun",
                                     "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", "*.pyc")
HELP_MARKER = "installed-copy-marker-7f3a"


def can_build_wheels_without_isolation() -> bool:
    """``--no-build-isolation`` uses this environment's setuptools: it needs bdist_wheel."""
    import setuptools

    major, minor = (int(p) for p in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def run(cmd: list[str], cwd: Path,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, project_root) -> Path:
    if not can_build_wheels_without_isolation():
        pytest.skip("building without isolation needs setuptools>=70.1 or the wheel package "
                    "in this environment (add one to the test extra)")
    # Build from a copy, so setuptools' build/ and egg-info never land in the work tree.
    source = tmp_path_factory.mktemp("source") / "videodub"
    shutil.copytree(project_root, source, ignore=NOT_SOURCES)
    out = tmp_path_factory.mktemp("wheelhouse")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(out), "."], cwd=source)
    wheels = list(out.glob("videodub-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
         str(target), str(wheel)], cwd=target)
    return target


def installed_env(target: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(target)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def test_wheel_has_configs_and_entry_points(wheel, project_root):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "videodub/conf/config.yaml" in names
        for profile in PROFILES:
            assert f"videodub/conf/profile/{profile}.yaml" in names
        entry_points_txt = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        parser = configparser.ConfigParser()
        parser.read_string(zf.read(entry_points_txt).decode())
    declared = tomllib.loads((project_root / "pyproject.toml").read_text())
    plugins = dict(parser["videodub"])
    assert plugins == declared["project"]["entry-points"]["videodub"]
    builtin_modules = {f"videodub.builtin.{p.stem}"
                       for p in (project_root / "videodub" / "builtin").glob("*.py")
                       if p.stem != "__init__"}
    # Every built-in stage implementation, and the run history's observer (docs/monitoring.md).
    assert set(plugins.values()) == builtin_modules | {"videodub.perf.observer"}
    assert parser["console_scripts"]["videodub"] == "videodub.cli:main"


def test_installed_copy_is_the_one_that_runs(installed, tmp_path):
    probe = ("import importlib.metadata as md, videodub, videodub.api\n"
             "from importlib import resources\n"
             "print(videodub.__file__)\n"
             "print(resources.files('videodub.conf'))\n"
             "print(md.distribution('videodub').locate_file(''))\n"
             "print(','.join(videodub.api.group_options(['profile'])['profile']))\n")
    out = run([sys.executable, "-c", probe], cwd=tmp_path, env=installed_env(installed))
    package, conf, dist, profiles = out.stdout.splitlines()
    for path in (package, conf, dist):
        assert Path(path).resolve().is_relative_to(installed.resolve()), path
    assert sorted(profiles.split(",")) == sorted(PROFILES)


def test_installed_help_and_plugins(installed, tmp_path):
    # Mark the installed copy's config: --help can only show the marker if it reads that copy.
    config = installed / "videodub" / "conf" / "config.yaml"
    config.write_text(config.read_text().replace("Docs: docs/", f"Docs ({HELP_MARKER}): docs/"))
    env = installed_env(installed)

    help_text = run([sys.executable, "-m", "videodub", "--help"], cwd=tmp_path, env=env).stdout
    assert HELP_MARKER in help_text
    assert "profile: balanced, quality, speed" in help_text
    assert "translate: none, openai, subtitles" in help_text
    assert "max_speed: 1.3" in help_text  # the balanced profile is applied

    listing = run([sys.executable, "-m", "videodub", "plugins"], cwd=tmp_path, env=env).stdout
    for stage, name in (("ingest", "local"), ("transcribe", "faster_whisper"),
                        ("translate", "none"), ("translate", "subtitles"), ("align", "length"),
                        ("tts", "espeak"), ("mix", "duck"), ("mux", "ffmpeg"),
                        ("transcribe", "openai"), ("translate", "openai"), ("tts", "openai")):
        row = re.compile(rf"│\s*{stage}\s*│\s*{name}\s*│")
        assert any(row.search(line) for line in listing.splitlines()), (stage, name, listing)
    assert "warning:" not in listing
    assert "failed to load" not in listing
