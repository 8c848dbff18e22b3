"""Shared fixtures: synthesized talks, a command-line runner, and completed dubs to assert on.

The expensive things (making media, running the whole pipeline) are session-scoped, so many
tests read the outputs of one run. Everything is written under pytest's temporary directory:
every command-line run gets its own ``hydra.run.dir`` and, unless told otherwise, its own
``cache_dir``, and runs with the Hugging Face hub switched to offline mode.

Fixtures:

- ``talk``: a ~27 s English talk video (:func:`videodub.samples.make_talk`, the first 2 s
  silent), its script and the Spanish translation as an SRT file (a :class:`Talk`);
- ``short_talk``: the same with two lines (~9 s), for sweeps and repeated runs;
- ``talk_factory``: makes other talks (audio only, other lines...) into a folder;
- ``run_cli``: run ``python -m videodub`` in a subprocess, returns a :class:`CliRun`;
- ``spanish_dub``: a finished dub of ``talk`` into Spanish (``translate=subtitles``, default
  profile);
- ``english_revoice``: a finished English re-voice of ``talk`` (``translate=none``,
  ``profile=speed``);
- ``jfk_flac``: the path of ``../shared/media/jfk.flac``, or a skip when it is absent;
- ``loopback``: a :class:`videodub.testing.loopback.LoopbackServer` on 127.0.0.1 that requires the
  key in ``$VIDEODUB_TEST_KEY`` (set for the test); ``openai_overrides(server)`` gives the
  overrides that point all three OpenAI stages at it; ``server_factory(**options)`` starts
  servers with other options (``started_servers()`` is the same for module-scoped use).

Marker: ``@pytest.mark.needs_jfk`` skips a test, with the reason, when that file is absent
(a fresh clone has no ``../shared``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from videodub.testing.samples import ENGLISH_TALK, SampleLine, make_talk, write_translation_srt

PROJECT_ROOT = Path(__file__).resolve().parents[1]
JFK_FLAC = PROJECT_ROOT.parent / "shared" / "media" / "jfk.flac"
JFK_SKIP_REASON = (f"{JFK_FLAC} is absent: the shared sample media sits beside the project "
                   "checkout, not in it")

# Suffixes of the media files a run may write (finished or partial).
MEDIA_SUFFIXES = {".mp4", ".m4a", ".wav", ".mkv", ".mov", ".aac", ".flac"}


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "needs_jfk: needs ../shared/media/jfk.flac; skipped where it is absent")


def pytest_runtest_setup(item) -> None:
    if item.get_closest_marker("needs_jfk") and not JFK_FLAC.is_file():
        pytest.skip(JFK_SKIP_REASON)


@dataclass(frozen=True)
class Talk:
    """A synthesized talk: the media file, its timed script, its Spanish subtitles."""

    path: Path
    script: list[SampleLine]
    translation_srt: Path

    @property
    def duration(self) -> float:
        import av

        with av.open(str(self.path)) as container:
            return container.duration / 1_000_000


def make_sample_talk(folder: Path, name: str = "talk.mp4",
                     lines: list[tuple[str, str]] | None = None, **kwargs: Any) -> Talk:
    """Write a talk (``make_talk`` options pass through) and its translation SRT into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    script = make_talk(path, lines, **kwargs)
    srt_path = write_translation_srt(script, folder / f"{path.stem}.es.given.srt")
    return Talk(path=path, script=script, translation_srt=srt_path)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def talk_factory() -> Callable[..., Talk]:
    """``talk_factory(folder, name="talk.mp4", lines=None, **make_talk_options) -> Talk``"""
    return make_sample_talk


@pytest.fixture(scope="session")
def talk(tmp_path_factory) -> Talk:
    """The six-line English talk (~27 s, the first 2 s silent), 320x240 H.264 + AAC."""
    return make_sample_talk(tmp_path_factory.mktemp("talk"), lead_in=2.0)


@pytest.fixture(scope="session")
def short_talk(tmp_path_factory) -> Talk:
    """A two-line English talk (~9 s): for runs whose content does not matter much."""
    return make_sample_talk(tmp_path_factory.mktemp("short_talk"), "short.mp4", ENGLISH_TALK[:2])


@pytest.fixture(scope="session")
def jfk_flac() -> Path:
    """``../shared/media/jfk.flac`` (reference text in ../shared/media/README.md), or skip."""
    if not JFK_FLAC.is_file():
        pytest.skip(JFK_SKIP_REASON)
    return JFK_FLAC


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


TEST_KEY_ENV = "VIDEODUB_TEST_KEY"
TEST_KEY = "sk-loopback-7f3c9a1e5b2d4c6e8a0f"


def openai_overrides(server: Any, stages: tuple[str, ...] = ("transcribe", "translate", "tts"),
                     fast_retries: bool = True) -> list[str]:
    """Select the OpenAI implementation for ``stages`` and point them at ``server``."""
    out: list[str] = []
    for stage in stages:
        out += [f"{stage}=openai", f"{stage}.base_url={server.base_url}",
                f"{stage}.api_key_env={TEST_KEY_ENV}"]
        if fast_retries:
            out += [f"{stage}.retry_base_s=0.02", f"{stage}.retry_max_s=0.2"]
    return out


@contextlib.contextmanager
def started_servers() -> Iterator[Callable[..., Any]]:
    """A ``start(**LoopbackServer options)`` for servers requiring TEST_KEY; all stopped after."""
    from videodub.testing.loopback import LoopbackServer

    servers: list[LoopbackServer] = []

    def start(**options: Any) -> LoopbackServer:
        server = LoopbackServer(api_key=TEST_KEY, **options)
        server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def server_factory(monkeypatch) -> Iterator[Callable[..., Any]]:
    """Loopback servers with a test's own options; the key is in ``$VIDEODUB_TEST_KEY``
    meanwhile (for in-process providers, and subprocesses, which inherit it)."""
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    with started_servers() as start:
        yield start


@pytest.fixture
def loopback(monkeypatch):
    """A fresh loopback OpenAI-compatible server for one test, and its key in the environment."""
    from videodub.testing.loopback import LoopbackServer

    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    server = LoopbackServer(api_key=TEST_KEY)
    server.start()
    try:
        yield server
    finally:
        server.stop()
