"""Plugin registration in this process: two plugins registering the same stage and name are
both named, a misspelled hook or a wrong argument is refused, a registered config's fields
become keys, and a plugin that fails to load only warns while the rest load.
"""

from __future__ import annotations

import dataclasses
import logging
import re

import pluggy
import pytest
from helpers_plugins import BROKEN_PLUGINS, fake_distribution

import videodub
from videodub import plugins
from videodub.api import compose_job
from videodub.errors import VideodubError
from videodub.plugins import collect, load_entry_points, make_plugin_manager


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


# -- plugins that fail to load --------------------------------------------------------------

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
