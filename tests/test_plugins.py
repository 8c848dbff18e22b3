"""Third-party plugins: installing plugins/videodub-voicefx adds tts=voicefx to the command line,
its options are validated like built-in ones, and a dub with it really changes the voice.
Registration mistakes are caught with both culprits named; a plugin that fails to import
only warns.

The package is pip-installed into the running venv for the session (offline: no index, no
build isolation) and uninstalled at the end.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pluggy
import pytest

import videodub
from videodub import plugins
from videodub.errors import VideodubError
from videodub.media import ffmpeg_exe
from videodub.plugins import collect, load_entry_points, make_plugin_manager
from videodub.api import compose_job
from videodub.audio import read_mono
from videodub.testing import median_f0

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SRC = ROOT / "plugins" / "videodub-voicefx"
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


def test_dub_uses_the_plugin_and_its_clips(dubs):
    fx, plain = dubs
    assert fx.video.is_file() and fx.video.suffix == ".mp4"
    report = fx.report()
    assert report["job"]["implementations"]["tts"] == "voicefx"
    assert report["job"]["options"]["tts"]["pitch_semitones"] == PITCH
    segs, plain_segs = fx.segments(), plain.segments()
    assert len(segs) == len(plain_segs) >= 2
    for seg, ref in zip(segs, plain_segs):
        assert Path(seg["audio_path"]).is_file()  # the clip that was mixed (the cache's copy)
        # voicefx wrote its clip next to the base voice's (kept by keep_work=true).
        base = Path(seg["extra"]["voicefx_base_clip"])
        own = base.with_name(f"{base.stem}.voicefx.wav")
        assert base.is_file() and own.is_file()
        assert own.read_bytes() == Path(seg["audio_path"]).read_bytes()
        # A pitch shift keeps the timing: the same length as espeak's clip of the line.
        assert seg["target_text"] == ref["target_text"]
        assert seg["synth_duration"] == pytest.approx(ref["synth_duration"], abs=0.01)
        assert read_mono(base)[0].shape == read_mono(own)[0].shape


def test_dub_clips_are_pitched_up(dubs):
    fx, plain = dubs

    def voice(run) -> tuple[np.ndarray, int]:
        clips = [read_mono(s["audio_path"]) for s in run.segments()]
        return np.concatenate([audio for audio, _ in clips]), clips[0][1]

    (fx_audio, rate), (plain_audio, plain_rate) = voice(fx), voice(plain)
    shift = semitones(median_f0(fx_audio, rate), median_f0(plain_audio, plain_rate))
    assert abs(shift - PITCH) < 1.0, f"clips: {shift:.2f} semitones"


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


# -- registration, in-process --------------------------------------------------------------
class Silence:
    """A tts for registration tests: writes nothing."""

    def __init__(self, options):
        self.options = options

    def synthesize(self, segment, ctx):
        return segment


@dataclasses.dataclass
class WhisperOptions:
    # How quiet, in dB.
    level_db: float = -30.0
    # A voice name.
    voice: str = "soft"
    breathy: bool = False


class RegistersTwin:
    def __init__(self, description: str) -> None:
        self.description = description

    @videodub.hookimpl
    def register_tts(self, register):
        register("twin", Silence, None, description=self.description)


def test_same_stage_and_name_from_two_plugins_names_both():
    pm = make_plugin_manager()
    pm.register(RegistersTwin("first"), name="plugin-one")
    pm.register(RegistersTwin("second"), name="plugin-two")
    with pytest.raises(VideodubError, match=r"^tts=twin is registered by two plugins: ") as err:
        collect(pm)
    assert {"plugin-one", "plugin-two"} <= set(re.split(r": | and ", str(err.value)))


def test_same_name_in_different_stages_is_fine():
    class MixerTwin:
        @videodub.hookimpl
        def register_mixers(self, register):
            register("twin", Silence, None)

    pm = make_plugin_manager()
    pm.register(RegistersTwin("voice"), name="plugin-one")
    pm.register(MixerTwin(), name="plugin-two")
    registry = collect(pm)
    assert registry.names("tts") == ["twin"] and registry.names("mix") == ["twin"]
    # Registered, but the factory's result is checked against the stage when created.
    with pytest.raises(VideodubError, match=r"mix=twin \(from plugin plugin-two\) does not "
                                            r"implement Mixer"):
        registry.get("mix", "twin").create(registry.get("mix", "twin").config())


def test_misspelled_hook_is_caught_by_check_pending():
    class Misspelled:
        @videodub.hookimpl
        def register_ttss(self, register):
            register("never", Silence)

    pm = make_plugin_manager()
    pm.register(Misspelled(), name="typo-plugin")
    with pytest.raises(pluggy.PluginValidationError, match="unknown hook 'register_ttss'"):
        pm.check_pending()


def test_hook_with_the_wrong_argument_is_refused():
    class WrongArgument:
        @videodub.hookimpl
        def register_tts(self, reg):
            reg("never", Silence)

    with pytest.raises(pluggy.PluginValidationError, match=r"\{'reg'\}"):
        make_plugin_manager().register(WrongArgument(), name="wrong-argument")


def test_registered_config_fields_become_keys():
    class Whisperer:
        @videodub.hookimpl
        def register_tts(self, register):
            register("whisper", Silence, WhisperOptions, description="A quiet voice.")

    pm = make_plugin_manager()
    for plugin in plugins.get_plugin_manager().get_plugins():  # the built-ins
        pm.register(plugin)
    pm.register(Whisperer(), name="whisperer")
    registry = collect(pm)
    impl = registry.get("tts", "whisper")
    assert impl.plugin == "whisperer" and impl.description == "A quiet voice."
    assert [f.name for f in dataclasses.fields(impl.config)] == [
        "workers", "effort", "level_db", "voice", "breathy", "impl"]
    job = compose_job(["input=talk.mp4", "target_lang=en", "tts=whisper", "tts.level_db=-40",
                       "tts.voice=hushed", "tts.breathy=true", "tts.workers=2"], registry)
    options = job.stages["tts"]
    assert (options.level_db, options.voice, options.breathy, options.workers, options.impl) == (
        -40.0, "hushed", True, 2, "whisper")
    assert impl.create(options).options is options  # the factory gets exactly these
    with pytest.raises(VideodubError, match=r"tts\.loudness"):
        compose_job(["input=talk.mp4", "target_lang=en", "tts=whisper", "tts.loudness=3"],
                    registry)


# -- plugins that fail to load ---------------------------------------------------------------
BROKEN_PLUGINS = {
    # entry-point name: (module source, the reason the warning gives)
    "broken": ("import a_missing_dependency  # not installed\n",
               "No module named 'a_missing_dependency'"),
    "typo": ("import videodub\n\n\n@videodub.hookimpl\ndef register_ttss(register):\n"
             "    pass\n", "unknown hook 'register_ttss'"),
}


def fake_distribution(folder: Path, name: str) -> Path:
    """An installed-looking distribution ``fake-<name>-plugin`` whose ``videodub`` entry point
    ``<name>`` is broken as BROKEN_PLUGINS says."""
    info = folder / f"fake_{name}_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: fake-{name}-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[videodub]\n{name} = fake_{name}_videodub_plugin\n")
    (folder / f"fake_{name}_videodub_plugin.py").write_text(BROKEN_PLUGINS[name][0])
    return folder


@pytest.mark.parametrize("name", list(BROKEN_PLUGINS))
def test_plugin_that_fails_to_load_only_warns(name, tmp_path, monkeypatch, caplog):
    monkeypatch.syspath_prepend(str(fake_distribution(tmp_path, name)))
    # Fresh module state, restored afterwards: the process-wide plugins stay as they were.
    monkeypatch.setattr(plugins, "_load_warnings", [])
    monkeypatch.setattr(plugins, "_distributions", {})
    pm = make_plugin_manager()
    with caplog.at_level(logging.WARNING, logger="videodub.plugins"):
        load_entry_points(pm)
    pm.check_pending()  # what is left is valid
    warnings = plugins.load_warnings()
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(
        f"plugin {name!r} from fake-{name}-plugin failed to load and is skipped: "
        f"{BROKEN_PLUGINS[name][1]}"), warnings
    assert warnings[0] in caplog.text
    assert pm.get_plugin(name) is None
    # Everything else loaded.
    assert "espeak" in collect(pm).names("tts")
    assert plugins.plugin_distribution("tts_espeak").startswith("videodub ")


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
