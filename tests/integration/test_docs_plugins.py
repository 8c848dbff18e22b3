"""docs/plugins.md stays true to the code: every hook has a section whose signature matches
its hookspec, the documented interfaces match videodub/model.py and the ``register``
callback, quotes of the voicefx plugin match its source, and every hook's example is a
working plugin — the seven run together as one real job."""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT

import videodub
from videodub import hookspecs
from videodub.errors import VideodubError
from videodub.model import STAGE_PROTOCOLS, WorkerHint
from videodub.plugins import STAGE_HOOKS, collect, make_plugin_manager
from videodub.api import compose_job
from videodub.testing import TTSSuite, median_f0, registry_with

DOC = (PROJECT_ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
VOICEFX = PROJECT_ROOT / "plugins" / "videodub-voicefx"
HOOK_HEADING = re.compile(r"^### `(\w+)\(([^)]*)\)`\s*$", re.M)
CODE_BLOCK = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.M | re.S)


def hookspec_functions() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in vars(hookspecs).items()
            if callable(fn) and hasattr(fn, "videodub_spec")}


def hook_sections() -> dict[str, tuple[str, str]]:
    """hook name -> (documented parameter list, the section's text)."""
    found = list(HOOK_HEADING.finditer(DOC))
    sections = {}
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else DOC.find("\n## ", m.end())
        sections[m.group(1)] = (m.group(2), DOC[m.end(): end if end != -1 else len(DOC)])
    return sections


def params(text: str) -> list[str]:
    """'a, b=None, c=""' -> ['a', 'b=None', 'c=""'] (spaces dropped)."""
    return [p.replace(" ", "") for p in text.split(",") if p.strip()]


def signature_params(sig: inspect.Signature, skip_self: bool = False) -> list[str]:
    out = []
    for p in sig.parameters.values():
        if (skip_self and p.name == "self") or p.name.startswith("_"):
            continue
        if p.default is inspect.Parameter.empty:
            out.append(p.name)
        else:
            default = f'"{p.default}"' if isinstance(p.default, str) else repr(p.default)
            out.append(f"{p.name}={default}")
    return out


SECTIONS = hook_sections()


def example_module(hook: str) -> types.ModuleType:
    """The python block of a hook's section, executed as a module."""
    blocks = [code for lang, code in CODE_BLOCK.findall(SECTIONS[hook][1]) if lang == "python"]
    assert len(blocks) == 1, f"the {hook} section should have one python example"
    module = types.ModuleType(f"videodub_docs_example_{hook}")
    module.__file__ = f"docs/plugins.md#{hook}"
    sys.modules[module.__name__] = module  # dataclasses and pickling look classes up here
    exec(compile(blocks[0], module.__file__, "exec"), module.__dict__)
    return module


# -- hooks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("hook", sorted(hookspec_functions()))
def test_every_hook_has_a_section_with_its_signature(hook):
    assert hook in SECTIONS, f"docs/plugins.md has no section '### `{hook}(...)`'"
    documented = params(SECTIONS[hook][0])
    actual = signature_params(hookspec_functions()[hook])
    assert documented == actual, f"{hook}: documented ({documented}), hookspec ({actual})"


def test_no_section_for_a_hook_that_does_not_exist():
    assert set(SECTIONS) <= set(hookspec_functions()), set(SECTIONS) - set(hookspec_functions())


def test_hook_sections_cover_every_stage():
    assert set(STAGE_HOOKS.values()) <= set(hookspec_functions())
    assert set(hookspec_functions()) - set(STAGE_HOOKS.values()) == set(OBSERVER_HOOKS)


OBSERVER_HOOKS = ("job_started", "stage_finished", "job_finished", "perf_rules")


@pytest.mark.parametrize("hook", OBSERVER_HOOKS)
def test_observer_hook_example_is_a_plugin(hook):
    module = example_module(hook)
    implementations = [fn for fn in vars(module).values() if hasattr(fn, "videodub_impl")]
    assert [fn.__name__ for fn in implementations] == [hook]
    assert inspect.signature(implementations[0]) == hookspec_functions()[hook]
    pm = make_plugin_manager()
    pm.register(module, name=f"docs-{hook}")
    pm.check_pending()
    if hook == "perf_rules":
        from videodub.perf.advisor import Facts, advise, collect_rules
        from videodub.perf.record import from_report

        rules = collect_rules(pm.hook)
        latest = from_report({"peak_rss_mb": 3000.0, "status": "ok"}, "r")
        assert [r.change for r in advise(Facts(latest, [latest]), rules)] == [
            "runner.queue_size=16"]


@pytest.mark.parametrize("hook", sorted(STAGE_HOOKS.values()))
def test_hook_example_is_a_plugin_for_its_stage(hook):
    module = example_module(hook)
    implementations = [fn for fn in vars(module).values() if hasattr(fn, "videodub_impl")]
    assert [fn.__name__ for fn in implementations] == [hook]
    # The signature in the example's def is the hookspec's.
    assert inspect.signature(implementations[0]) == hookspec_functions()[hook]
    pm = make_plugin_manager()
    pm.register(module, name=f"docs-{hook}")
    pm.check_pending()
    registry = collect(pm)
    stage = next(s for s, h in STAGE_HOOKS.items() if h == hook)
    names = {s: registry.names(s) for s in registry.by_stage if registry.names(s)}
    assert list(names) == [stage], names
    impl = registry.get(stage, names[stage][0])
    assert impl.description
    obj = impl.create(impl.config())  # raises unless it implements the stage's protocol
    assert isinstance(obj, STAGE_PROTOCOLS[stage])


# -- interfaces ------------------------------------------------------------------------------
def test_register_callback_is_documented_as_it_is():
    captured = {}

    class Probe:
        @videodub.hookimpl
        def register_tts(self, register):
            captured["register"] = register

    pm = make_plugin_manager()
    pm.register(Probe(), name="probe")
    collect(pm)
    actual = signature_params(inspect.signature(captured["register"]))
    documented = re.search(r"^register\((.*)\)$", DOC, re.M)
    assert documented, "docs/plugins.md shows no `register(...)` line"
    assert params(documented.group(1)) == actual


@pytest.mark.parametrize("stage", list(STAGE_PROTOCOLS))
def test_stage_protocol_row_matches_model(stage):
    protocol = STAGE_PROTOCOLS[stage]
    methods = [name for name, value in vars(protocol).items()
               if inspect.isfunction(value) and not name.startswith("_")]
    assert len(methods) == 1, methods
    sig = inspect.signature(getattr(protocol, methods[0]))
    args = ", ".join(signature_params(sig, skip_self=True))
    text = f"{methods[0]}({args}) -> {sig.return_annotation}"
    row = f"| {stage} | `{protocol.__name__}` | `{text}` |"
    assert row in DOC, f"docs/plugins.md should have the row: {row}"


def test_translator_attributes_are_documented():
    attributes = [n for n in getattr(STAGE_PROTOCOLS["translate"], "__annotations__", {})]
    assert attributes == ["batch_size"]
    assert "`batch_size`" in DOC


@pytest.mark.parametrize("field", dataclasses.fields(WorkerHint), ids=lambda f: f.name)
def test_worker_hint_fields_are_documented_with_defaults(field):
    default = f'"{field.default}"' if isinstance(field.default, str) else repr(field.default)
    assert f"| `{field.name}` | `{default}` |" in DOC, f"WorkerHint.{field.name} = {default}"


def test_quotes_of_voicefx_match_its_source():
    """A block that mostly quotes voicefx must quote it exactly (and not be stale)."""
    sources = {p: [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
               for p in [VOICEFX / "pyproject.toml", VOICEFX / "videodub_voicefx" / "__init__.py",
                         VOICEFX / "tests" / "test_voicefx.py"]}
    quotes = 0
    for _, code in CODE_BLOCK.findall(DOC):
        lines = [ln.strip() for ln in code.splitlines() if ln.strip()]
        for path, source in sources.items():
            matching = [ln for ln in lines if ln in source]
            if len(matching) >= 3 and len(matching) >= len(lines) / 2:
                stale = [ln for ln in lines if ln not in source]
                assert not stale, f"docs/plugins.md quotes {path.name} with lines it lacks: {stale}"
                quotes += 1
    assert quotes >= 5  # the entry point, options, hook, worker hint, synthesize, suite...


def test_entry_point_group_is_the_documented_one():
    from videodub.plugins import ENTRY_POINT_GROUP

    assert f"[project.entry-points.{ENTRY_POINT_GROUP}]" in DOC
    assert f"in the group `{ENTRY_POINT_GROUP}`" in DOC


# -- the examples at work -------------------------------------------------------------------
EXAMPLES = {hook: example_module(hook) for hook in sorted(SECTIONS)}


class TestBeepExample(TTSSuite):
    """The register_tts example passes the suite tts plugins are held to."""

    impl_name = "beep"
    overrides = {"frequency": 660.0}
    invalid_overrides = [{"frequency": "high"}]
    plugins = [EXAMPLES["register_tts"]]


def write_source_srt(script, path: Path) -> Path:
    from datetime import timedelta

    import srt

    subs = [srt.Subtitle(i + 1, timedelta(seconds=line.start), timedelta(seconds=line.end),
                         line.text) for i, line in enumerate(script)]
    path.write_text(srt.compose(subs), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def examples_registry():
    return registry_with(list(EXAMPLES.values()))


def example_overrides(short_talk, srt_path: Path, *extra: str) -> list[str]:
    return [f"input={short_talk.path}", "target_lang=en", "profile=speed", "cache=false",
            "ingest=capped", "transcribe=srt", f"transcribe.file={srt_path}",
            "translate=glossary", "+translate.terms.videos=films",
            "align=fixed_rate", "align.rate=1.2", "tts=beep", "mix=voice_only", "mux=audio",
            *extra]


@pytest.fixture(scope="module")
def examples_job(short_talk, examples_registry, tmp_path_factory):
    from videodub.run.runner import Runner

    tmp = tmp_path_factory.mktemp("docs_examples")
    srt_path = write_source_srt(short_talk.script, tmp / "short.en.srt")
    job = compose_job(example_overrides(short_talk, srt_path), examples_registry)
    return Runner(job, tmp / "run", registry=examples_registry, display="quiet").run()


def test_examples_run_as_one_job(examples_job, short_talk):
    import av

    result = examples_job
    assert result.report["status"] == "ok"
    assert result.report["job"]["implementations"] == {
        "ingest": "capped", "transcribe": "srt", "translate": "glossary", "align": "fixed_rate",
        "tts": "beep", "mix": "voice_only", "mux": "audio"}
    # mux=audio: an audio file, as long as the input.
    assert result.video.suffix == ".m4a" and result.video.is_file()
    with av.open(str(result.video)) as container:
        assert not container.streams.video
        stream = container.streams.audio[0]
        audio = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(stream)])
        rate = stream.rate
    assert abs(len(audio) / rate - short_talk.duration) < 0.2
    segs = result.segments
    # transcribe=srt and translate=glossary.
    assert [s.source_text for s in segs] == [line.text for line in short_talk.script]
    assert "making films for everyone" in segs[0].target_text
    for seg in segs:
        # align=fixed_rate, and tts=beep honouring the rate it asked for.
        assert seg.tts_rate == 1.2
        assert seg.synth_duration == pytest.approx(len(seg.target_text) * 0.07 / 1.2, abs=0.01)
        # mix=voice_only: the beep where the line is, nothing of the original (speech, hum)
        # in the gap after it.
        start = int(seg.slot_start * rate)
        beep = audio[start + int(0.05 * rate): start + int((seg.synth_duration - 0.05) * rate)]
        assert median_f0(beep, rate, fmax=600) == pytest.approx(440, rel=0.03)
        gap_start = start + int((seg.synth_duration + 0.1) * rate)
        gap = audio[gap_start: int(seg.slot_end * rate)]
        if len(gap) > 0.1 * rate:
            assert np.sqrt(np.mean(gap ** 2)) < 0.01 * np.sqrt(np.mean(beep ** 2))


def test_example_options_fail_in_one_line(short_talk, examples_registry, tmp_path):
    from videodub.run.runner import Runner

    srt_path = write_source_srt(short_talk.script, tmp_path / "short.en.srt")
    missing = r"^transcribe\.file: .* missing mandatory value: file$"
    with pytest.raises(VideodubError, match=missing):
        compose_job([o for o in example_overrides(short_talk, srt_path)
                     if not o.startswith("transcribe.file")], examples_registry)
    job = compose_job(example_overrides(short_talk, srt_path, "ingest.max_minutes=0.05"),
                      examples_registry)
    with pytest.raises(VideodubError, match=r"more than ingest\.max_minutes=0\.05$"):
        Runner(job, tmp_path / "run", registry=examples_registry, display="quiet").run()
