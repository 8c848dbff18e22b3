"""videodub/perf/advisor.py and rules.py: rules fire on the facts that call for them, rank by
impact and effort, come from plugins through a hook; the health score and its parts."""

from __future__ import annotations

import dataclasses

import pytest

import videodub
from videodub.perf.advisor import Facts, Recommendation, advise, collect_rules, health
from videodub.perf.record import ProviderFigures
from videodub.perf.rules import RULES
from videodub.plugins import make_plugin_manager

from .records import make_record


def test_429s_advise_fewer_requests_in_flight():
    p = ProviderFigures("translate", "m", 30, 100.0, 300.0, 6, 6, 0, 0, 1000, 0.01, 3.0)
    rec = make_record(1, {"transcribe": 2.0, "translate": 6.0}, providers=[p])
    rec.stages[1].workers = 8
    [advice] = [r for r in advise(Facts(rec, [rec]), RULES) if r.category == "providers"]
    assert advice.change == "translate.max_in_flight=4"
    assert "6 of 30 calls" in advice.why


def test_a_bottleneck_held_below_the_cpus_is_raised():
    rec = make_record(1, {"transcribe": 1.0, "tts": 8.0})
    tts = next(s for s in rec.stages if s.stage == "tts")
    tts.worker_reason, tts.workers = "configured workers=1", 1
    changes = [r.change for r in advise(Facts(rec, [rec]), RULES)]
    assert "tts.workers=0" in changes


def test_no_advice_for_a_balanced_run():
    rec = make_record(1, {"transcribe": 2.0, "tts": 2.0, "mix": 1.0})
    assert advise(Facts(rec, [rec]), RULES) == []


def test_a_regression_after_an_upgrade_names_the_version():
    old = make_record(1, versions={"tts": "videodub-voicefx 0.1.0"})
    new = make_record(2, versions={"tts": "videodub-voicefx 0.2.0"})
    reg = {"metric": "stage.tts.wall_per_min", "severity": "HIGH"}
    [advice] = advise(Facts(new, [old, new], regressions=[reg]), {"r": RULES[
        "regressed_after_upgrade"]})
    assert advice.change == "pip install 'videodub-voicefx==0.1.0'"


def test_ranking_puts_high_impact_low_effort_first():
    def rule(facts):
        return [Recommendation("b", "low", "high", "throughput", "b=1"),
                Recommendation("a", "high", "low", "throughput", "a=1"),
                Recommendation("c", "medium", "low", "throughput", "c=1")]
    assert [r.title for r in advise(Facts(None, []), {"rule": rule})] == ["a", "c", "b"]


def test_rules_come_from_plugins_and_a_failing_one_is_skipped(caplog):
    class Plugin:
        @videodub.hookimpl
        def perf_rules(self, register):
            register("always", lambda facts: [
                Recommendation("try this", "high", "low", "throughput", "runner.queue_size=8")])
            register("broken", lambda facts: 1 / 0)

    pm = make_plugin_manager()
    pm.register(Plugin(), name="plugin")
    rules = collect_rules(pm.hook)
    assert set(rules) == {"always", "broken"}
    found = advise(Facts(None, []), rules)
    assert [r.change for r in found] == ["runner.queue_size=8"] and found[0].rule == "always"
    assert "broken failed" in caplog.text


def test_recommendation_values_are_checked():
    with pytest.raises(ValueError):
        Recommendation("x", "huge", "low", "throughput", "a=1")


def test_health_parts_and_score():
    ok = [make_record(i) for i in range(3)]
    failed = make_record(4, status="failed")
    h = health(Facts(ok[-1], [*ok, failed], regressions=[{"severity": "HIGH"}]))
    assert h["parts"] == {"success": 75.0, "regressions": 75.0, "memory": 100.0, "sync": 100.0}
    assert h["score"] == pytest.approx(0.4 * 75 + 0.3 * 75 + 0.15 * 100 + 0.15 * 100)


@pytest.mark.parametrize("quality", [
    {"overflow.lines": 3, "overflow.seconds": 2.5, "overlaps.count": 0},  # the run's own layout
    {"sync.overflow_count": 3}])  # another layout, read by its name
def test_health_memory_and_sync_parts(quality):
    rec = make_record(1, rss=3072, quality=quality)  # 75 % of 4096 MiB
    h = health(Facts(rec, [rec]))
    assert h["parts"]["memory"] == pytest.approx(50.0)
    assert h["parts"]["sync"] == pytest.approx(50.0)  # 3 of 6 lines overflow


@pytest.mark.parametrize("align, translate, profile, change", [
    ("length", "subtitles", "speed", "align=hybrid"),
    ("hybrid", "subtitles", "balanced", "translate=openai"),
    ("semantic", "openai", "quality", "align.max_speed=1.25"),
    ("hybrid", "openai", "balanced", None),  # shortened already, 1.3x allowed: nothing more
])
def test_overflowing_lines_are_shortened_before_they_are_sped_up(align, translate, profile,
                                                                  change):
    rec = make_record(1, quality={"overflow.lines": 2, "overflow.seconds": 3.0},
                      profile=profile)
    rec.implementations = {**rec.implementations, "align": align, "translate": translate}
    found = [r for r in advise(Facts(rec, [rec]), RULES) if r.category == "quality"]
    assert [r.change for r in found] == ([change] if change else [])
    assert all(r.title.startswith("2 of 6 lines") for r in found)
    fine = dataclasses.replace(rec, quality={"overflow.lines": 0, "overflow.seconds": 0.0})
    assert [r for r in advise(Facts(fine, [fine]), RULES) if r.category == "quality"] == []


def test_empty_history_is_healthy_and_quiet():
    assert health(Facts(None, []))["score"] == 100.0
    assert advise(Facts(None, []), RULES) == []


def test_every_builtin_rule_has_a_docstring():
    assert all(rule.__doc__ for rule in RULES.values())
    assert dataclasses.is_dataclass(Recommendation)
