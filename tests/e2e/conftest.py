"""Fixtures of the command-line tests: a runner for ``python -m videodub`` in a subprocess and
two finished dubs of the synthesized talk that many tests read.

- ``run_cli``: run ``python -m videodub`` in a subprocess, returns a :class:`CliRun`; every
  run gets its own ``hydra.run.dir`` and, unless told otherwise, its own ``cache_dir``, and
  runs with the Hugging Face hub switched to offline mode;
- ``spanish_dub``: a finished dub of ``talk`` into Spanish (``translate=subtitles``, default
  profile);
- ``english_revoice``: a finished English re-voice of ``talk`` (``translate=none``,
  ``profile=speed``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Talk

# Suffixes of the media files a run may write (finished or partial).
MEDIA_SUFFIXES = {".mp4", ".m4a", ".wav", ".mkv", ".mov", ".aac", ".flac"}


@dataclass
class CliRun:
    """The outcome of one ``python -m videodub`` subprocess."""

    overrides: list[str]  # what the caller asked for
    args: list[str]  # everything passed on the command line
    returncode: int
    stdout: str
    stderr: str
    run_dir: Path  # hydra.run.dir, or hydra.sweep.dir for a multirun
    cache_dir: Path

    @property
    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith("error: ")]

    @property
    def last_line(self) -> str:
        lines = [ln for ln in self.stdout.splitlines() if ln.strip()]
        return lines[-1].strip() if lines else ""

    @property
    def video(self) -> Path:
        """The output the run printed last (the dubbed video's path)."""
        return Path(self.last_line)

    def report(self, run_dir: Path | None = None) -> dict[str, Any]:
        return json.loads(((run_dir or self.run_dir) / "report.json").read_text(encoding="utf-8"))

    def segments(self, run_dir: Path | None = None) -> list[dict[str, Any]]:
        data = json.loads(((run_dir or self.run_dir) / "segments.json").read_text(encoding="utf-8"))
        return data["segments"]

    def media_files(self) -> list[Path]:
        """Every media file under the run dir, including hidden partial outputs."""
        if not self.run_dir.exists():
            return []
        return sorted(p for p in self.run_dir.rglob("*")
                      if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)

    def describe(self) -> str:
        return (f"python -m videodub {' '.join(self.args)}\nexit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}")

    def check(self) -> CliRun:
        """Fail the calling test with the command's output unless it succeeded."""
        assert self.returncode == 0, self.describe()
        return self


RunCli = Callable[..., CliRun]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a videodub subprocess: never reach the model hub."""
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def run_cli(tmp_path_factory) -> RunCli:
    """``run_cli(*overrides, run_dir=None, cache_dir=None, multirun=False, env=None, timeout=300)``

    Runs ``sys.executable -m videodub <overrides> hydra.run.dir=<run_dir> cache_dir=<cache_dir>``
    (``-m ... hydra.sweep.dir=<run_dir>`` when ``multirun``) from a scratch working directory,
    so nothing lands in the repository. ``run_dir`` and ``cache_dir`` default to fresh
    temporary folders; pass the same ``cache_dir`` to two runs to share their cache.
    """
    cwd = tmp_path_factory.mktemp("cwd")

    def run(*overrides: str, run_dir: Path | None = None, cache_dir: Path | None = None,
            multirun: bool = False, env: dict[str, str] | None = None,
            timeout: float = 300) -> CliRun:
        run_dir = Path(run_dir) if run_dir else tmp_path_factory.mktemp("run")
        cache_dir = Path(cache_dir) if cache_dir else tmp_path_factory.mktemp("cache")
        args = ["-m"] if multirun else []
        args += list(overrides)
        args.append(f"hydra.{'sweep' if multirun else 'run'}.dir={run_dir}")
        args.append(f"cache_dir={cache_dir}")
        proc = subprocess.run([sys.executable, "-m", "videodub", *args], cwd=cwd,
                              env=cli_env(**(env or {})), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        return CliRun(overrides=list(overrides), args=args, returncode=proc.returncode,
                      stdout=proc.stdout, stderr=proc.stderr, run_dir=run_dir, cache_dir=cache_dir)

    return run


@pytest.fixture(scope="session")
def spanish_dub(run_cli: RunCli, talk: Talk) -> CliRun:
    """``talk`` dubbed into Spanish with its given translation, default profile, fresh cache."""
    return run_cli(f"input={talk.path}", "target_lang=es", "translate=subtitles",
                   f"translate.file={talk.translation_srt}").check()


@pytest.fixture(scope="session")
def english_revoice(run_cli: RunCli, talk: Talk) -> CliRun:
    """``talk`` re-voiced in English (``translate=none``) with ``profile=speed``."""
    return run_cli(f"input={talk.path}", "target_lang=en", "translate=none",
                   "profile=speed").check()
