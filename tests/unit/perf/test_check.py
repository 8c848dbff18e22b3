"""videodub/perf/check.py: the CI gate's comparison of ratios with the committed baseline."""

from __future__ import annotations

import json

import pytest

from videodub.config import PerfThresholds
from videodub.errors import VideodubError
from videodub.perf.check import FLOORS, Gate, _machine, evaluate, load_baseline, save_baseline
from videodub.perf.record import machine_class

BASE = {"job_over_asr": 1.6, "calls_per_segment": 2.0, "rss_mb_per_media_min": 1500.0,
        "api_span_over_wall": 0.05}


def baseline(**suites):
    return {"machine_class": machine_class(_machine()), "suites": suites}


def test_the_same_ratios_pass():
    result = evaluate("smoke", dict(BASE), baseline(smoke=BASE), PerfThresholds(), Gate())
    assert result.regressions == [] and result.failures == [] and result.health == 100


def test_a_doubled_ratio_is_critical_and_fails_the_gate():
    ratios = dict(BASE, calls_per_segment=4.5)  # a retry storm: over twice the calls per line
    result = evaluate("smoke", ratios, baseline(smoke=BASE), PerfThresholds(), Gate())
    assert [(r["metric"], r["severity"]) for r in result.regressions] == [
        ("calls_per_segment", "CRITICAL")]
    assert result.failures == ["1 CRITICAL regressions (at most 0)", "health 50 < 60"]


def test_three_highs_fail_two_pass():
    worse = {k: v * 1.6 + FLOORS[k] for k, v in BASE.items()}
    two = dict(BASE, job_over_asr=worse["job_over_asr"], rss_mb_per_media_min=2400.0)
    result = evaluate("smoke", two, baseline(smoke=BASE), PerfThresholds(), Gate(min_health=0))
    assert [r["severity"] for r in result.regressions] == ["HIGH", "HIGH"]
    assert result.failures == []
    three = dict(two, calls_per_segment=3.2)
    result = evaluate("smoke", three, baseline(smoke=BASE), PerfThresholds(), Gate(min_health=0))
    assert result.failures == ["3 HIGH regressions (at most 2)"]


def test_changes_under_the_noise_floor_are_ignored():
    # api_span_over_wall tripled, but 0.05 -> 0.15 is under its floor of 0.15.
    ratios = dict(BASE, api_span_over_wall=0.15)
    assert evaluate("smoke", ratios, baseline(smoke=BASE), PerfThresholds(),
                    Gate()).regressions == []


def test_health_gate():
    ratios = dict(BASE, job_over_asr=2.8)  # HIGH: health 75
    assert evaluate("smoke", ratios, baseline(smoke=BASE), PerfThresholds(),
                    Gate(min_health=80)).failures == ["health 75 < 80"]


def test_no_baseline_for_the_suite_says_so():
    result = evaluate("basic", dict(BASE), baseline(smoke=BASE), PerfThresholds(), Gate())
    assert result.failures == [] and "no committed baseline for suite basic" in result.notes[0]


def test_a_baseline_from_another_machine_class_is_compared_and_said():
    other = {"machine_class": "64cpu-512g-A100-x86_64", "suites": {"smoke": BASE}}
    result = evaluate("smoke", dict(BASE, calls_per_segment=4.5), other, PerfThresholds(),
                      Gate())
    assert "recorded on 64cpu-512g-A100-x86_64" in result.notes[0]
    assert result.regressions[0]["severity"] == "CRITICAL"


def test_baseline_file_round_trip_and_bad_file(tmp_path):
    path = tmp_path / "b.json"
    save_baseline(path, "smoke", BASE)
    save_baseline(path, "basic", dict(BASE, job_over_asr=1.7))
    data = load_baseline(path)
    assert data["suites"]["smoke"] == BASE and data["suites"]["basic"]["job_over_asr"] == 1.7
    path.write_text("{not json")
    with pytest.raises(VideodubError, match="unreadable"):
        load_baseline(path)


def test_the_committed_baseline_has_the_smoke_suite(project_root):
    data = json.loads((project_root / "benchmarks" / "perf_baseline.json").read_text())
    assert set(data["suites"]["smoke"]) == set(BASE)
