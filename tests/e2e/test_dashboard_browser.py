"""The dashboard in a real headless Chromium (Debian's ``chromium``): it loads from a file
with no network, logs nothing to the console, draws every plot, and a screenshot is taken.
Skipped with the reason when Chromium is not installed (``.ci/run`` installs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .test_perf_cli import build_history, perf

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; "
                             ".ci/run installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=8000"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium(page: Path, profile: Path, *action: str) -> subprocess.CompletedProcess:
    """Run Chromium on ``page`` with a fresh profile; ``action`` is --dump-dom or
    --screenshot=..."""
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *action,
                           page.as_uri()], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HOME": str(profile)})


def console_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("dash")
    reg = {"metric": "stage.tts.wall_per_min", "impl": "espeak", "severity": "HIGH",
           "change": 0.8, "value": 5.0, "baseline": 2.0, "bound": 2.2, "n": 11}
    out = tmp / "dashboard.html"
    run = perf("dashboard", "--out", str(out), history=build_history(tmp / "h.sqlite", [reg]))
    assert run.returncode == 0, run.stderr
    return out


def test_the_console_check_catches_a_broken_page(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>notDefinedAnywhere();</script></body></html>")
    run = chromium(page, tmp_path / "profile", "--dump-dom")
    assert any("notDefinedAnywhere" in ln for ln in console_lines(run.stderr)), run.stderr[-2000:]


def test_the_dashboard_draws_its_plots_with_no_console_errors(dashboard, tmp_path):
    run = chromium(dashboard, tmp_path / "profile", "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    assert console_lines(run.stderr) == []
    dom = run.stdout
    # plotly.js replaced each figure's empty div with its SVG drawing.
    drawn = {}
    for part in dom.split('id="plot-')[1:]:
        drawn[part.split('"', 1)[0]] = part.count('class="main-svg"')
    assert set(drawn) == {"health", "trends", "breakdown", "resources", "providers"}
    assert all(count >= 1 for count in drawn.values()), drawn
    assert "stage.tts.wall_per_min" in dom and "translate.max_in_flight" in dom


def test_a_screenshot_of_the_dashboard(dashboard, tmp_path):
    shot = tmp_path / "dashboard.png"
    run = chromium(dashboard, tmp_path / "profile", f"--screenshot={shot}",
                   "--window-size=1280,1800", "--hide-scrollbars")
    assert run.returncode == 0, run.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC)
    # A page of plots compresses far worse than a blank one (~10 kB at this size).
    assert len(data) > 60_000, len(data)
