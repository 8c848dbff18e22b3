"""Shared fixtures: synthesized talks, the loopback server, and the paths the tests need.

Making media is session-scoped, so many tests share one talk. Everything is written under
pytest's temporary directory. The command-line runner and the finished dubs that only the
command-line tests read are in ``e2e/conftest.py``.

Fixtures:

- ``talk``: a ~27 s English talk video (:func:`videodub.testing.samples.make_talk`, the first
  2 s silent), its script and the Spanish translation as an SRT file (a :class:`Talk`);
- ``short_talk``: the same with two lines (~9 s), for sweeps and repeated runs;
- ``four_lines``: four short lines, audio only (~8 s), for runs against the loopback server;
- ``talk_factory``: makes other talks (audio only, other lines...) into a folder;
- ``project_root``: the checkout (also ``PROJECT_ROOT``, to import);
- ``jfk_flac``: the path of ``../shared/media/jfk.flac``, or a skip when it is absent;
- ``loopback``: a :class:`videodub.testing.loopback.LoopbackServer` on 127.0.0.1 that requires the
  key in ``$VIDEODUB_TEST_KEY`` (set for the test); ``openai_overrides(server)`` gives the
  overrides that point all three OpenAI stages at it; ``server_factory(**options)`` starts
  servers with other options (``started_servers()`` is the same for module-scoped use);
- ``forget_secrets`` (autouse): the secrets a test makes the process remember are forgotten
  after it.

Marker: ``@pytest.mark.needs_jfk`` skips a test, with the reason, when that file is absent
(a fresh clone has no ``../shared``). ``slow`` is registered in pyproject.toml.
"""

from __future__ import annotations

import contextlib
import os
import signal
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


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "needs_jfk: needs ../shared/media/jfk.flac; skipped where it is absent")
    # A shell starts a background job (nohup ... &) with SIGINT ignored, and children inherit
    # that: the Ctrl-C tests' subprocesses would never see their SIGINT. Run as a terminal
    # would (a Python handler is reset to the default in a child, an ignored signal is not).
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_runtest_setup(item) -> None:
    if item.get_closest_marker("needs_jfk") and not JFK_FLAC.is_file():
        pytest.skip(JFK_SKIP_REASON)


def pytest_terminal_summary(terminalreporter, config) -> None:
    """Repeat the shuffle's seed at the end (the header that shows it is hidden by ``-q``)."""
    if not config.pluginmanager.hasplugin("random_order"):
        return
    from random_order.config import Config

    order = Config(config)
    if order.bucket_type != "none":
        terminalreporter.write_line(f"test order: --random-order-bucket={order.bucket_type} "
                                    f"--random-order-seed={order.seed} replays it")


@pytest.fixture(scope="session", autouse=True)
def run_history(tmp_path_factory) -> Iterator[Path]:
    """Runs made by the tests (in this process and the command lines they start) record
    themselves in a history of the session's own, never in the checkout's outputs/; tests of
    the history itself point VIDEODUB_HISTORY elsewhere with monkeypatch."""
    path = tmp_path_factory.mktemp("history") / "history.sqlite"
    before = os.environ.get("VIDEODUB_HISTORY")
    os.environ["VIDEODUB_HISTORY"] = str(path)
    yield path
    if before is None:
        os.environ.pop("VIDEODUB_HISTORY", None)
    else:
        os.environ["VIDEODUB_HISTORY"] = before


@pytest.fixture(autouse=True)
def forget_secrets() -> Iterator[None]:
    """The secrets a test makes the process remember (API keys read by providers, keys the
    secrets tests remember) are forgotten after it: they are process-wide, and no test may
    depend on what another one left behind."""
    from videodub.providers import secrets

    with secrets._lock:
        before = set(secrets._secrets)
    yield
    with secrets._lock:
        secrets._secrets.clear()
        secrets._secrets.update(before)


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


# Four short spoken lines: one translation batch at the default profile.
FOUR_LINES = [("Hello and welcome to the talk.", ""), ("Today we look at a video.", ""),
              ("Then it is translated.", ""), ("Thank you for watching.", "")]


# The tone of the multi-track talk's first audio track (Hz, above most of the voice's
# energy), at its own sample rate.
TONE_HZ, TONE_RATE = 5000.0, 22050


@pytest.fixture(scope="session")
def multitrack_talk(short_talk: Talk, tmp_path_factory) -> Path:
    """The short talk as a Matroska file with two audio tracks and a subtitle track, as films
    come: track 0 a 5 kHz tone at 22.05 kHz tagged ``fre`` ("Commentary"), track 1 the talk
    tagged ``eng``, and an SRT subtitle tagged ``ger``."""
    from videodub.media import run_ffmpeg

    folder = tmp_path_factory.mktemp("multitrack")
    srt = folder / "de.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,500\nGuten Tag\n\n", encoding="utf-8")
    path = folder / "multi.mkv"
    run_ffmpeg(["-v", "error", "-i", str(short_talk.path),
                "-f", "lavfi", "-i", f"sine=frequency={TONE_HZ:g}:sample_rate={TONE_RATE}:duration=8",
                "-i", str(srt), "-map", "0:v", "-map", "1:a", "-map", "0:a", "-map", "2:s",
                "-c:v", "copy", "-c:a:0", "aac", "-c:a:1", "copy", "-c:s", "srt",
                "-metadata:s:a:0", "language=fre", "-metadata:s:a:0", "title=Commentary",
                "-metadata:s:a:1", "language=eng", "-metadata:s:s:0", "language=ger",
                str(path)], None, "making the multi-track talk")
    return path


@pytest.fixture(scope="session")
def four_lines(tmp_path_factory) -> Talk:
    """FOUR_LINES spoken (~8 s, audio only), for runs against the loopback server."""
    return make_sample_talk(tmp_path_factory.mktemp("four"), "four.mp4", FOUR_LINES, pause=0.8,
                            video=False)


@pytest.fixture(scope="session")
def jfk_flac() -> Path:
    """``../shared/media/jfk.flac`` (reference text in ../shared/media/README.md), or skip."""
    if not JFK_FLAC.is_file():
        pytest.skip(JFK_SKIP_REASON)
    return JFK_FLAC


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
