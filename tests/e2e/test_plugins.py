"""Third-party plugins through the command line: installing plugins/videodub-voicefx adds
tts=voicefx, its options are validated like built-in ones, and a dub with it really changes
the voice. A plugin that fails to import only warns; one that registers badly is one error
line naming it. (Registration checked in this process: ``unit/test_plugins.py``.)

The package is pip-installed into the running venv for the session (offline: no index, no
build isolation) and uninstalled at the end. The tests that read ``dubs`` (two whole dubs)
are marked ``slow``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT
from helpers_plugins import BROKEN_PLUGINS, fake_distribution

from videodub.audio import read_mono
from videodub.media import ffmpeg_exe
from videodub.testing import median_f0

PLUGIN_SRC = PROJECT_ROOT / "plugins" / "videodub-voicefx"
DIST = "videodub-voicefx"
PITCH = 5.0


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)


def editable_install() -> bool:
    """Whether a developer has the plugin installed in editable mode (then it is left alone)."""
    try:
        direct_url = importlib.metadata.distribution(DIST).read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return False
    return bool(direct_url and json.loads(direct_url).get("dir_info", {}).get("editable"))


@pytest.fixture(scope="session")
def voicefx_installed(tmp_path_factory) -> None:
    if editable_install():
        yield
        return
    # Built from a copy: a build writes build/ and *.egg-info next to the sources.
    src = tmp_path_factory.mktemp("voicefx") / "videodub-voicefx"
    shutil.copytree(PLUGIN_SRC, src, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    proc = pip("install", "--no-index", "--no-deps", "--no-build-isolation", str(src))
    if proc.returncode != 0:
        # A venv without setuptools: let pip fetch the build backend for an isolated build.
        proc = pip("install", "--no-deps", str(src))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        yield
    finally:
        pip("uninstall", "-y", DIST)


def videodub_cli(*args: str, cwd: Path, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess:
    # Never reach the model hub.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "videodub", *args], cwd=cwd, env=env,
                          capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)


# -- the installed plugin, through the command line ----------------------------------------
def test_plugins_command_lists_voicefx_with_its_package(voicefx_installed, tmp_path):
    proc = videodub_cli("plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [re.split(r"\s*│\s*", line.strip("│ ")) for line in proc.stdout.splitlines()]
    voicefx = [row for row in rows if row[:2] == ["tts", "voicefx"]]
    assert voicefx, proc.stdout
    assert voicefx[0][2] == "voicefx"  # the entry point's name
    assert re.fullmatch(r"videodub[-_]voicefx 0\.1\.0", voicefx[0][3]), voicefx[0]
    # The built-ins are still there.
    assert any(row[:2] == ["tts", "espeak"] for row in rows)


def test_out_of_range_option_fails_in_one_line(voicefx_installed, run_cli, short_talk):
    run = run_cli(f"input={short_talk.path}", "target_lang=en", "translate=none",
                  "tts=voicefx", "tts.pitch_semitones=99")
    assert run.returncode == 2, run.describe()
    assert run.stderr.strip().splitlines() == [
        "error: tts: pitch_semitones must be between -12 and 12, got 99.0"], run.describe()
    assert not run.media_files() and not (run.run_dir / "report.json").exists()


def test_options_appear_in_the_composed_config(voicefx_installed, tmp_path):
    proc = videodub_cli("tts=voicefx", "--cfg", "job", "--package", "tts", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for key in ("base: espeak", "pitch_semitones: 0.0", "reverb_room: 0.0", "gain_db: 0.0",
                "impl: voicefx"):
        assert key in proc.stdout, proc.stdout


@pytest.fixture(scope="module")
def dubs(voicefx_installed, run_cli, short_talk, tmp_path_factory):
    """The short talk re-voiced twice, with voicefx (+5 semitones) and with plain espeak,
    sharing a cache (the transcript is made once) and keeping their clips."""
    cache = tmp_path_factory.mktemp("plugin_cache")
    common = [f"input={short_talk.path}", "target_lang=en", "translate=none", "profile=speed",
              "keep_work=true"]
    fx = run_cli(*common, "tts=voicefx", f"tts.pitch_semitones={PITCH}", cache_dir=cache).check()
    plain = run_cli(*common, "tts=espeak", cache_dir=cache).check()
    return fx, plain


def first_audio_track(video: Path, out: Path) -> tuple[np.ndarray, int]:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(video), "-map", "0:a:0",
                    "-ac", "1", "-ar", "22050", str(out)], check=True, capture_output=True)
    return read_mono(out)


def semitones(higher: float, lower: float) -> float:
    return 12 * np.log2(higher / lower)


@pytest.mark.slow
def test_dub_uses_the_plugin_and_its_clips(dubs):
    fx, plain = dubs
    assert fx.video.is_file() and fx.video.suffix == ".mp4"
    report = fx.report()
    assert report["job"]["implementations"]["tts"] == "voicefx"
    assert report["job"]["options"]["tts"]["pitch_semitones"] == PITCH
    segs, plain_segs = fx.segments(), plain.segments()
    assert len(segs) == len(plain_segs) >= 2
    assert sum("clip_cached" in s["flags"] for s in segs) <= 1
    for seg, ref in zip(segs, plain_segs):
        assert Path(seg["audio_path"]).is_file()  # the clip that was mixed (the cache's copy)
        if "clip_cached" in seg["flags"]:
            # The line the voice's speaking rate was measured on: its clip came back from the
            # cache when the line was synthesized, with no plugin extras.
            continue
        # voicefx wrote its clip next to the base voice's (kept by keep_work=true).
        base = Path(seg["extra"]["voicefx_base_clip"])
        own = base.with_name(f"{base.stem}.voicefx.wav")
        assert base.is_file() and own.is_file()
        assert own.read_bytes() == Path(seg["audio_path"]).read_bytes()
        # A pitch shift keeps the timing: the same length as espeak's clip of the line.
        assert seg["target_text"] == ref["target_text"]
        assert seg["synth_duration"] == pytest.approx(ref["synth_duration"], abs=0.01)
        assert read_mono(base)[0].shape == read_mono(own)[0].shape


@pytest.mark.slow
def test_dub_clips_are_pitched_up(dubs):
    fx, plain = dubs

    def voice(run) -> tuple[np.ndarray, int]:
        clips = [read_mono(s["audio_path"]) for s in run.segments()]
        return np.concatenate([audio for audio, _ in clips]), clips[0][1]

    (fx_audio, rate), (plain_audio, plain_rate) = voice(fx), voice(plain)
    shift = semitones(median_f0(fx_audio, rate), median_f0(plain_audio, plain_rate))
    assert abs(shift - PITCH) < 1.0, f"clips: {shift:.2f} semitones"


@pytest.mark.slow
def test_dubbed_video_speaks_higher(dubs, tmp_path):
    """In the finished video's dub track, where the lines are spoken."""
    pitches = []
    for run in dubs:
        audio, rate = first_audio_track(run.video, tmp_path / f"{len(pitches)}.wav")
        spoken = [audio[int(s["slot_start"] * rate):
                        int((s["slot_start"] + s["synth_duration"] / s["stretch"]) * rate)]
                  for s in run.segments()]
        pitches.append(median_f0(np.concatenate(spoken), rate))
    shift = semitones(*pitches)
    assert abs(shift - PITCH) < 1.0, f"video: {shift:.2f} semitones ({pitches})"


def test_voicefx_own_tests_pass_against_the_installed_package(voicefx_installed, tmp_path):
    """The package's tests (the shared tts suite and more), run the way its author would."""
    src = tmp_path / "videodub-voicefx"
    shutil.copytree(PLUGIN_SRC / "tests", src / "tests")
    shutil.copy(PLUGIN_SRC / "pyproject.toml", src)
    # No sources beside the tests: what they import is the installed package.
    probe = subprocess.run(
        [sys.executable, "-c", "import videodub_voicefx; print(videodub_voicefx.__file__)"],
        cwd=tmp_path, capture_output=True, text=True)
    assert "site-packages" in probe.stdout or editable_install(), probe
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(src / "tests")], cwd=tmp_path, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", proc.stdout)


# -- plugins that fail to load ---------------------------------------------------------------
def test_broken_plugins_do_not_stop_the_command_line(tmp_path):
    site = tmp_path / "site"
    for name in BROKEN_PLUGINS:
        fake_distribution(site, name)
    env = {"PYTHONPATH": str(site)}
    proc = videodub_cli("plugins", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "espeak" in proc.stdout
    for name, (_, reason) in BROKEN_PLUGINS.items():
        assert re.search(rf"warning: plugin '{name}' from fake-{name}-plugin failed to load and "
                         rf"is skipped: {re.escape(reason)}", proc.stdout), proc.stdout
    # A run's preflight still works (and still finds the user's mistake).
    proc = videodub_cli("input=talk.mp4", "target_lang=en", "tts=nope", cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: unknown tts implementation 'nope'; choices: espeak"), proc.stderr


BAD_REGISTRATIONS = {
    "clash": 'register("espeak", Synth, None)',
    "nodataclass": 'register("nodataclass", Synth, dict)',
}


@pytest.mark.parametrize("name", list(BAD_REGISTRATIONS))
def test_bad_registration_is_one_error_line_naming_the_plugin(name, tmp_path):
    info = tmp_path / f"fake_{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-{name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[videodub]\n{name} = fake_{name}_plugin\n")
    (tmp_path / f"fake_{name}_plugin.py").write_text(
        "import videodub\nfrom videodub.builtin.tts_espeak import EspeakSynthesizer as Synth\n\n\n"
        f"@videodub.hookimpl\ndef register_tts(register):\n    {BAD_REGISTRATIONS[name]}\n")
    for args in (["plugins"], ["input=talk.mp4", "target_lang=en"]):
        proc = videodub_cli(*args, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr, proc.stderr
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
        assert len(errors) == 1 and name in errors[0], proc.stderr
