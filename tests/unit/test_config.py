"""Configuration, composed in this process: what each profile sets, override precedence, the
user's ./conf folder, one-line errors, plugin configs, and which options count for a cache key
(``transport`` fields do not)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pytest
from conftest import PROJECT_ROOT
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from omegaconf import OmegaConf

from videodub import hookimpl
from videodub.api import compose, compose_job, group_options
from videodub.cli import preflight
from videodub.config import (
    STAGE_OPTIONS, AlignOptions, Effort, Validation, implementation_config, result_options,
    transport, validate)
from videodub.errors import VideodubError
from videodub.model import STAGES
from videodub.plugins import collect, make_plugin_manager, register_configs

PROFILE_DIR = PROJECT_ROOT / "videodub" / "conf" / "profile"
REQUIRED = ["input=talk.mp4", "target_lang=es"]


def leaves(node: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def composed_leaves(overrides: list[str]) -> dict[str, object]:
    """Compose with Hydra's own API, the way ``@hydra.main`` would."""
    register_configs(collect())
    with initialize_config_module(config_module="videodub.conf", version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=overrides)
    return leaves(OmegaConf.to_container(cfg, enum_to_str=True))


# -- profiles --------------------------------------------------------------------------

def test_profiles_are_the_files_in_conf_profile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./conf here: the packaged profiles only
    packaged = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
    assert group_options(["profile"])["profile"] == packaged
    assert {"quality", "balanced", "speed"} <= set(group_options(["profile"])["profile"])


USER_CONF = PROJECT_ROOT / "conf"


def test_the_users_conf_folder_adds_profiles_and_variants(tmp_path, monkeypatch):
    """./conf is on the search path: the repository's example profile and tts variant compose,
    are listed as choices, and run the implementation they configure."""
    import shutil

    shutil.copytree(USER_CONF, tmp_path / "conf")
    monkeypatch.chdir(tmp_path)
    options = group_options(["profile", "tts"])
    assert "lecture" in options["profile"] and "narrator" in options["tts"]
    job = compose_job([*REQUIRED, "profile=lecture", "tts=narrator", "tts.pitch=45"])
    assert job.profile_name == "lecture"
    assert job.stages["align"].max_speed == 1.2  # the user's profile
    assert job.stages["translate"].batch_size == 24  # from balanced, which it starts from
    assert job.stages["ingest"].validation == Validation.full
    tts = job.stages["tts"]
    assert (tts.impl, tts.words_per_minute, tts.pitch) == ("espeak", 150, 45)
    # Elsewhere the same names are unknown, with the choices.
    monkeypatch.chdir(tmp_path.parent)
    with pytest.raises(VideodubError, match="unknown profile 'lecture'; choices: balanced"):
        compose_job([*REQUIRED, "profile=lecture"])


@pytest.mark.parametrize("profile", ["quality", "balanced", "speed"])
def test_profile_sets_every_value_its_file_names(profile):
    declared = OmegaConf.to_container(OmegaConf.load(PROFILE_DIR / f"{profile}.yaml"))
    declared.pop("defaults", None)
    expected = leaves(declared)
    assert len(expected) > 5
    actual = composed_leaves([*REQUIRED, f"profile={profile}"])
    assert {k: actual[k] for k in expected} == expected
    assert actual["profile_name"] == profile


def test_quality_profile_values():
    job = compose_job([*REQUIRED, "profile=quality"])
    assert job.profile_name == "quality"
    assert job.stages["ingest"].validation is Validation.full
    assert job.stages["align"].max_speed == 1.2
    assert job.stages["translate"].batch_size == 32
    assert all(job.stages[s].effort is Effort.high for s in ("transcribe", "align", "mix"))
    assert job.runner.minimal_logging is False


def test_speed_profile_values():
    job = compose_job([*REQUIRED, "profile=speed"])
    assert job.stages["ingest"].validation is Validation.none
    assert job.stages["align"].max_speed == 1.5
    assert job.stages["translate"].batch_size == 16
    assert job.stages["transcribe"].effort is Effort.low
    assert job.runner.minimal_logging is True


def test_balanced_is_the_default_profile():
    assert composed_leaves(REQUIRED) == composed_leaves([*REQUIRED, "profile=balanced"])
    job = compose_job(REQUIRED)
    assert job.profile_name == "balanced"
    assert job.stages["ingest"].validation is Validation.quick
    assert job.stages["align"].max_speed == 1.3


@pytest.mark.parametrize("order", ["profile first", "override first"])
def test_command_line_overrides_win_over_the_profile(order):
    overrides = ["profile=speed", "align.max_speed=1.1", "ingest.validation=full"]
    if order == "override first":
        overrides.reverse()
    job = compose_job([*REQUIRED, *overrides])
    assert job.stages["align"].max_speed == 1.1
    assert job.stages["ingest"].validation is Validation.full
    # Everything not overridden still comes from the profile.
    assert job.profile_name == "speed"
    assert job.stages["translate"].batch_size == 16
    assert job.stages["ingest"].effort is Effort.low
    preflight([*REQUIRED, *overrides])  # the command line accepts the same overrides


def test_validated_job_is_typed():
    job = compose_job([*REQUIRED, "source_lang=EN", "target_lang=pt_BR"])
    assert (job.source_lang, job.target_lang) == ("en", "pt-br")
    assert set(job.stages) == set(STAGES)
    selected = composed_leaves(REQUIRED)
    for stage, opts in job.stages.items():
        assert isinstance(opts, STAGE_OPTIONS[stage]), stage
        assert opts.impl == selected[f"{stage}.impl"]


def test_an_input_under_home_is_expanded_and_a_url_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    job = compose_job(["input='~/talks/a (1).mp4'", "target_lang=es"])
    assert job.input == f"{tmp_path}/talks/a (1).mp4"
    url = "https://example.org/~me/watch?v=1&t=2"
    assert compose_job([f"input={url}", "target_lang=es"]).input == url  # quoted for Hydra


# -- errors ----------------------------------------------------------------------------

# override -> fragments the one-line message must contain (the key, and what is wrong)
BAD_OVERRIDES = {
    "tts=nope": ["tts", "nope"],
    "ingest.validation=bogus": ["ingest.validation", "bogus"],
    "runner.display=loud": ["runner.display", "loud"],
    "align.max_speed=fast": ["align.max_speed", "fast"],
    "runner.max_workers=many": ["runner.max_workers", "many"],
    "align.max_speed=9": ["align", "max_speed", "1.0 and 4.0"],
    "translate.batch_size=0": ["translate", "batch_size"],
    "ingest.workers=-1": ["ingest", "workers"],
    "mix.loudness=3": ["mix", "loudness"],
    "translate.nope=1": ["translate.nope"],
    "target_lang=xx": ["target_lang", "xx"],
}


def check_one_line(exc: pytest.ExceptionInfo, fragments: list[str]) -> str:
    message = str(exc.value)
    assert "\n" not in message and message.strip() == message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@pytest.mark.parametrize("override", list(BAD_OVERRIDES))
def test_preflight_rejects_bad_values_in_one_line(override):
    with pytest.raises(VideodubError) as exc:
        preflight([*REQUIRED, override])
    check_one_line(exc, BAD_OVERRIDES[override])


@pytest.mark.parametrize("override", list(BAD_OVERRIDES))
def test_library_compose_and_validate_reject_bad_values_in_one_line(override):
    with pytest.raises(VideodubError) as exc:
        validate(compose([*REQUIRED, override]))
    check_one_line(exc, BAD_OVERRIDES[override])


def test_unknown_implementation_lists_the_choices():
    with pytest.raises(VideodubError) as exc:
        preflight([*REQUIRED, "tts=nope"])
    message = check_one_line(exc, ["unknown tts implementation 'nope'", "choices:"])
    assert "espeak" in message.split("choices:", 1)[1]


def test_unknown_key_lists_the_keys_its_stage_takes():
    with pytest.raises(VideodubError) as exc:
        preflight([*REQUIRED, "align.max_sped=1.2"])
    message = check_one_line(exc, ["align.max_sped"])
    assert "max_speed" in message.split("takes:", 1)[1]


@pytest.mark.parametrize("sweep", ["profile=quality,nope", "tts=espeak,nope",
                                   "align.max_speed=1.2,9"])
def test_every_value_of_a_sweep_is_checked(sweep):
    with pytest.raises(VideodubError) as exc:
        preflight(["-m", *REQUIRED, sweep])
    check_one_line(exc, ["nope" if "nope" in sweep else "max_speed"])


@pytest.mark.parametrize("missing", ["input", "target_lang"])
def test_required_keys(missing):
    overrides = [o for o in REQUIRED if not o.startswith(missing + "=")]
    with pytest.raises(VideodubError) as exc:
        validate(compose(overrides))
    check_one_line(exc, [f"{missing} is required"])


# -- plugin configs --------------------------------------------------------------------

@dataclass
class PlainAlignOptions:
    # A plugin's own option; the class knows nothing of videodub's AlignOptions.
    stiffness: float = 0.5


@dataclass
class DerivedAlignOptions(AlignOptions):
    stiffness: float = 0.25


def test_plain_plugin_config_gets_the_stage_keys():
    cls = implementation_config("align", "plain", PlainAlignOptions)
    names = {f.name for f in fields(cls)}
    assert names == {f.name for f in fields(AlignOptions)} | {"stiffness", "impl"}
    opts = cls()
    assert (opts.impl, opts.stiffness, opts.max_speed) == ("plain", 0.5, 1.3)
    with pytest.raises(ValueError, match="max_speed"):
        cls(max_speed=9.0)  # the stage's own checks still run


def test_derived_plugin_config_is_used_as_it_is():
    cls = implementation_config("align", "derived", DerivedAlignOptions)
    assert issubclass(cls, DerivedAlignOptions)
    assert [f.name for f in fields(cls)].count("max_speed") == 1
    assert cls().stiffness == 0.25


def test_stage_without_plugin_config_gets_the_base_options():
    cls = implementation_config("translate", "bare", None)
    assert {f.name for f in fields(cls)} == {"workers", "effort", "batch_size", "impl"}


def test_plugin_config_must_be_a_dataclass():
    with pytest.raises(TypeError, match="dataclass"):
        implementation_config("align", "bad", dict)


class PlainAlignPlugin:
    @hookimpl
    def register_aligners(self, register):
        register("plain_test", lambda options: None, PlainAlignOptions)


def test_profile_keys_reach_a_plain_plugin_config():
    pm = make_plugin_manager()
    pm.register(PlainAlignPlugin(), name="plain-align-test")
    register_configs(collect(pm))
    job = compose_job([*REQUIRED, "align=plain_test", "profile=quality", "align.stiffness=0.7"])
    opts = job.stages["align"]
    assert opts.impl == "plain_test"
    assert opts.max_speed == 1.2 and opts.effort is Effort.high  # from the profile
    assert opts.stiffness == 0.7


# -- what counts for a cache key -------------------------------------------------------

@dataclass
class VoiceOptions:
    voice: str = "calm"
    timeout_s: float = transport(30.0)
    retries: int = transport(3)


def test_transport_fields_keep_their_default_and_are_left_out_of_result_options():
    opts = VoiceOptions()
    assert (opts.voice, opts.timeout_s, opts.retries) == ("calm", 30.0, 3)
    assert result_options(opts) == {"voice": "calm"}
    assert result_options(VoiceOptions(voice="bright", timeout_s=1.0)) == {"voice": "bright"}


def test_a_plain_plugin_config_keeps_the_stage_transport_fields_out():
    # implementation_config rebuilds the dataclass: the field metadata must survive it.
    cls = implementation_config("tts", "voice_test", VoiceOptions)
    opts = cls(voice="warm", workers=3, timeout_s=2.0)
    assert result_options(opts) == {"voice": "warm", "effort": Effort.medium,
                                    "impl": "voice_test"}


def test_composed_openai_options_split_into_result_and_transport():
    job = compose_job([*REQUIRED, "tts=openai", "tts.voice=nova", "tts.workers=4",
                       "tts.max_in_flight=2", "tts.api_key_env=OTHER_KEY", "tts.timeout_s=5"])
    result = result_options(job.stages["tts"])
    assert result["voice"] == "nova" and result["impl"] == "openai"
    assert {"model", "speed", "instructions", "base_url"} <= set(result)
    # How the clips are fetched, not what they are: changing these reuses cached clips.
    assert not {"workers", "max_in_flight", "api_key_env", "timeout_s", "max_retries",
                "retry_base_s", "retry_max_s", "requests_per_minute", "tokens_per_minute",
                "preflight"} & set(result)
