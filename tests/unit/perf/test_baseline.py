"""videodub/perf/baseline.py: a real slowdown is a regression of the right severity, noise
and thin baselines are not, and only like runs are compared."""

from __future__ import annotations

import random

import pytest

from videodub.config import PerfConfig, PerfThresholds
from videodub.perf.baseline import (Baseline, classify, compare, load_baselines, summarize,
                                    t_quantile, update_baselines)
from videodub.perf.history import History

from .records import make_record


def noisy_history(path, n=10, seed=1, **kwargs) -> History:
    rnd = random.Random(seed)
    hist = History(path)
    for i in range(n):
        j = lambda x: x * rnd.uniform(0.95, 1.05)  # noqa: E731 - 5 % noise
        hist.append(make_record(i, {"transcribe": j(4.0), "tts": j(2.0), "mix": j(1.0)},
                                **kwargs))
    update_baselines(hist, window=20)
    return hist


def test_t_quantile_is_close_to_the_table():
    # Student's t, one-sided 95 %: 9 dof 1.833, 4 dof 2.132, 30 dof 1.697.
    assert t_quantile(0.95, 9) == pytest.approx(1.833, rel=0.01)
    assert t_quantile(0.95, 4) == pytest.approx(2.132, rel=0.02)
    assert t_quantile(0.95, 30) == pytest.approx(1.697, rel=0.01)


def test_summarize_is_robust_to_one_outlier():
    p50, p95, spread = summarize([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 50.0])
    assert p50 == 1.0 and p95 == 50.0 and spread < 0.2


def test_a_doubled_stage_is_critical_and_the_others_are_quiet(tmp_path):
    with noisy_history(tmp_path / "h.sqlite") as hist:
        slow = make_record(99, {"transcribe": 4.02, "tts": 4.4, "mix": 0.99})
        found = compare(slow, hist, PerfConfig())
    metrics = {r.metric: r.severity for r in found.regressions}
    assert metrics["stage.tts.wall_per_min"] == "CRITICAL"
    assert not any(m.startswith(("stage.transcribe", "stage.mix")) for m in metrics)
    assert found.compared > 0


@pytest.mark.parametrize("factor,severity", [(1.12, "LOW"), (1.3, "MEDIUM"), (1.6, "HIGH"),
                                             (2.5, "CRITICAL")])
def test_severity_follows_the_thresholds(factor, severity):
    base = Baseline("stage.tts.wall_per_min", "espeak", "balanced", "m", 10, 2.0, 2.1, 0.02)
    reg = classify("stage.tts.wall_per_min", 2.0 * factor, base, PerfConfig(), media_min=10)
    assert reg is not None and reg.severity == severity


def test_thresholds_are_configurable():
    base = Baseline("stage.tts.wall_per_min", "espeak", "balanced", "m", 10, 2.0, 2.1, 0.02)
    opts = PerfConfig(thresholds=PerfThresholds(low=0.5, medium=0.6, high=0.7, critical=0.8))
    assert classify("stage.tts.wall_per_min", 2.3, base, opts, media_min=10) is None
    assert classify("stage.tts.wall_per_min", 3.7, base, opts, media_min=10).severity == "CRITICAL"


def test_a_change_within_the_spread_is_noise():
    # 30 % slower, but the baseline itself spreads that much.
    base = Baseline("stage.tts.wall_per_min", "espeak", "balanced", "m", 10, 2.0, 3.0, 0.5)
    assert classify("stage.tts.wall_per_min", 2.6, base, PerfConfig(), media_min=10) is None


def test_more_confidence_asks_for_more():
    base = Baseline("stage.tts.wall_per_min", "espeak", "balanced", "m", 6, 2.0, 2.5, 0.3)
    assert classify("stage.tts.wall_per_min", 2.8, base, PerfConfig(confidence=0.9),
                    media_min=10) is not None
    assert classify("stage.tts.wall_per_min", 2.8, base, PerfConfig(confidence=0.999),
                    media_min=10) is None


def test_a_tiny_stage_cannot_cry_wolf():
    # align takes milliseconds: tripled, it is still under a quarter second in all.
    base = Baseline("stage.align.wall_per_min", "length", "balanced", "m", 10, 0.01, 0.01, 0.0)
    assert classify("stage.align.wall_per_min", 0.03, base, PerfConfig(), media_min=1) is None


def test_the_time_the_quality_figures_take_cannot_cry_wolf_either():
    # Measuring takes ~10 ms a minute: doubled on a busy machine it is noise; a second more
    # over the run is not.
    metric = "quality.measure_s_per_min"
    base = Baseline(metric, "x", "balanced", "m", 10, 0.012, 0.013, 0.001)
    assert classify(metric, 0.024, base, PerfConfig(), media_min=2) is None
    assert classify(metric, 0.6, base, PerfConfig(), media_min=2).severity == "CRITICAL"


def test_too_few_runs_compare_nothing(tmp_path):
    with noisy_history(tmp_path / "h.sqlite", n=3) as hist:
        found = compare(make_record(99, {"transcribe": 4.0, "tts": 9.0, "mix": 1.0}), hist,
                        PerfConfig())
    assert found.regressions == [] and found.compared == 0
    assert "no baseline with 5+ runs" in found.notes[0]


def test_another_machine_class_is_not_compared_and_says_so(tmp_path):
    with noisy_history(tmp_path / "h.sqlite") as hist:
        other = make_record(99, {"transcribe": 4.0, "tts": 9.0, "mix": 1.0},
                            machine_class="64cpu-512g-A100-x86_64")
        found = compare(other, hist, PerfConfig())
    assert found.regressions == []
    assert "other machine classes" in found.notes[0]


def test_memory_latency_errors_and_quality_regress_too(tmp_path):
    from videodub.perf.record import ProviderFigures

    def provider(p95, errors):
        return [ProviderFigures("translate", "m", 20, p95 / 2, p95, 0, errors, 0, 0, 100, None,
                                1.0)]

    hist = History(tmp_path / "h.sqlite")
    rnd = random.Random(2)
    for i in range(8):
        hist.append(make_record(i, rss=300 * rnd.uniform(0.98, 1.02),
                                providers=provider(200 * rnd.uniform(0.95, 1.05), 0),
                                quality={"sync.score": 0.9 * rnd.uniform(0.99, 1.01),
                                         "sync.overflow_count": 1.0}))
    update_baselines(hist, window=20)
    bad = make_record(99, rss=700, providers=provider(600, 5),
                      quality={"sync.score": 0.5, "sync.overflow_count": 4.0})
    found = {r.metric for r in compare(bad, hist, PerfConfig()).regressions}
    hist.close()
    assert {"stage.tts.rss_mb", "provider.translate.p95_ms", "provider.translate.error_rate",
            "quality.sync.score", "quality.sync.overflow_count"} <= found


# The run's own quality section as videodub/run/quality.py writes it, flattened.
DUB = {"lines": 30.0, "dubbed": 30.0, "onset_error.n": 30.0, "onset_error.p95_ms": 40.0,
       "onset_error.worst_lines_ms.0": 45.0, "overrun_past_line_end.lines": 0.0,
       "original_voice.uncovered_source_speech_s": 5.0,
       "original_voice.source_speech_s": 60.0, "original_voice.original_under_dub_db": -98.0,
       "speed.share_le_1_25": 1.0, "speed.max": 1.0, "speed.slowed": 20.0,
       "speed.sped_up_though_fit": 0.0, "overflow.lines": 0.0, "overlaps.count": 0.0,
       "overlaps.longest_s": 0.0, "truncated.lines": 0.0, "cut_at_end_s": 0.0,
       "suspect.lines": 0.0, "candidates.compared": 0.0, "measure_s": 0.012}


def dub_history(path) -> History:
    """Eight runs of 30-line, one-minute inputs, one line of each overflowing its slot."""
    hist = History(path)
    rnd = random.Random(3)
    for i in range(8):
        quality = {**DUB, "onset_error.p95_ms": 40.0 * rnd.uniform(0.95, 1.05),
                   "measure_s": 0.012 * rnd.uniform(0.9, 1.1),
                   "overflow.lines": 1.0,
                   "original_voice.uncovered_source_speech_s": 5.0 * rnd.uniform(0.9, 1.1)}
        hist.append(make_record(i, quality=quality, media_s=60.0))
    update_baselines(hist, window=20)
    return hist


@pytest.mark.parametrize("figure, value", [
    ("overlaps.count", 2.0), ("overlaps.longest_s", 0.8), ("speed.sped_up_though_fit", 3.0),
    ("speed.max", 1.6), ("speed.share_le_1_25", 0.7), ("original_voice.original_under_dub_db",
                                                       -30.0),
    ("overflow.lines", 6.0), ("cut_at_end_s", 1.5), ("onset_error.p95_ms", 400.0),
    ("original_voice.uncovered_source_speech_s", 20.0)])
def test_a_worse_dub_is_a_quality_regression(tmp_path, figure, value):
    with dub_history(tmp_path / "h.sqlite") as hist:
        found = compare(make_record(99, quality={**DUB, figure: value}, media_s=60.0), hist,
                        PerfConfig())
    [regression] = found.regressions
    assert regression.metric.removesuffix("_per_line").removesuffix("_per_min") == (
        f"quality.{figure}")


def test_a_dubs_quality_compares_only_with_dubs_of_the_same_input(tmp_path):
    # Another talk with more, shorter pauses and a wordier translation: more of it uncovered,
    # more lines overflowing, onsets further off. That is the input, not a regression; the
    # same figures on the input of the history are.
    other = {**DUB, "overflow.lines": 10.0, "original_voice.uncovered_source_speech_s": 50.0,
             "onset_error.p95_ms": 150.0}
    expected = {"quality.overflow.lines_per_line", "quality.onset_error.p95_ms",
                "quality.original_voice.uncovered_source_speech_s_per_min"}
    with dub_history(tmp_path / "h.sqlite") as hist:
        found = compare(make_record(99, quality=other, input_hash="other"), hist, PerfConfig())
        assert found.regressions == []
        assert any("quality figures not compared: fewer than 5 runs of this input" in n
                   for n in found.notes), found.notes
        same = compare(make_record(99, quality=other), hist, PerfConfig()).regressions
        assert {r.metric for r in same} == expected
        # Five dubs of the other input make its own baseline, and a worse dub of it regresses.
        for i in range(5):
            hist.append(make_record(20 + i, quality=other, input_hash="other"))
        update_baselines(hist, window=20)
        assert compare(make_record(99, quality=other, input_hash="other"), hist,
                       PerfConfig()).regressions == []
        worse = {**other, "overflow.lines": 20.0}
        regs = compare(make_record(99, quality=worse, input_hash="other"), hist,
                       PerfConfig()).regressions
    assert [r.metric for r in regs] == ["quality.overflow.lines_per_line"]


def test_the_time_measuring_took_compares_across_inputs(tmp_path):
    # A time, like a stage's: another input of a similar length is a fair comparison.
    with dub_history(tmp_path / "h.sqlite") as hist:
        regs = compare(make_record(99, quality={**DUB, "measure_s": 3.0}, input_hash="other"),
                       hist, PerfConfig()).regressions
    assert [r.metric for r in regs] == ["quality.measure_s_per_min"]


@pytest.mark.parametrize("figure, value", [
    ("lines", 5.0), ("dubbed", 80.0), ("speed.slowed", 0.0), ("speed.slowed", 29.0),
    ("original_voice.source_speech_s", 10.0), ("onset_error.p95_ms", 10.0),
    ("overlaps.count", 0.0), ("measure_s", 0.001), ("measure_s", 0.03),
    ("original_voice.original_under_dub_db", -96.0), ("speed.share_le_1_25", 1.0)])
def test_a_better_dub_or_another_input_is_not(tmp_path, figure, value):
    with dub_history(tmp_path / "h.sqlite") as hist:
        found = compare(make_record(99, quality={**DUB, figure: value}, media_s=60.0), hist,
                        PerfConfig())
    assert found.regressions == []


def test_times_per_minute_compare_with_runs_of_similar_length(tmp_path):
    # Ten one-minute runs; a 10 s clip's fixed costs make its seconds per minute six times
    # theirs: not a regression, and not compared until there are short runs to compare with.
    with noisy_history(tmp_path / "h.sqlite") as hist:
        short = make_record(50, {"transcribe": 4.0 / 6 * 3, "tts": 2.0 / 6 * 3, "mix": 0.5},
                            media_s=10.0)
        found = compare(short, hist, PerfConfig())
        assert found.regressions == []
        assert any("runs of media 3-30 s long" in n for n in found.notes), found.notes
        for i in range(6):
            hist.append(make_record(60 + i, {"transcribe": 2.0, "tts": 1.0, "mix": 0.5},
                                    media_s=10.0 + i))
        update_baselines(hist, window=20)
        assert compare(short, hist, PerfConfig()).regressions == []
        slow = make_record(70, {"transcribe": 2.0, "tts": 4.0, "mix": 0.5}, media_s=12.0)
        regs = compare(slow, hist, PerfConfig()).regressions
        # Against the one-minute runs alone, 4 s of tts in 12 s would be 20 s a minute, ten
        # times theirs; against the short runs it is four times.
        assert [r.metric for r in regs if r.metric.startswith("stage.")] == [
            "stage.tts.wall_per_min"]
        assert next(r for r in regs if r.metric == "stage.tts.wall_per_min").baseline == (
            pytest.approx(1.0 / 12.5 * 60, rel=0.1))


def test_baselines_are_stored_per_kind(tmp_path):
    with noisy_history(tmp_path / "h.sqlite") as hist:
        noisy_history(tmp_path / "h.sqlite", n=5, profile="speed").close()
        stored = {(b.metric, b.profile): b for b in load_baselines(hist)}
    assert stored[("stage.tts.wall_per_min", "balanced")].n == 10
    assert stored[("stage.tts.wall_per_min", "speed")].n == 5


def test_a_slowdown_the_machine_load_explains_is_only_noted(tmp_path):
    with noisy_history(tmp_path / "h.sqlite") as hist:
        busy = make_record(99, {"transcribe": 4.0, "tts": 2.0, "mix": 2.6})
        next(s for s in busy.stages if s.stage == "mix").load = 0.7  # explains up to +233 %
        found = compare(busy, hist, PerfConfig())
        assert not [r for r in found.regressions if r.metric == "stage.mix.wall_per_min"]
        assert any("stage.mix.wall_per_min +" in n and "70% of the CPUs" in n
                   for n in found.notes)
        # The same slowdown on an idle machine is a regression.
        next(s for s in busy.stages if s.stage == "mix").load = 0.0
        found = compare(busy, hist, PerfConfig())
        assert [r.severity for r in found.regressions
                if r.metric == "stage.mix.wall_per_min"] == ["CRITICAL"]


def test_a_noisy_baseline_is_flagged(tmp_path):
    hist = History(tmp_path / "h.sqlite")
    for i, tts in enumerate([1.0, 3.0, 1.5, 2.5, 1.2, 2.8, 2.0]):
        hist.append(make_record(i, {"transcribe": 4.0, "tts": tts}))
    update_baselines(hist, window=20)
    found = compare(make_record(99, {"transcribe": 4.0, "tts": 2.6}), hist, PerfConfig())
    hist.close()
    assert found.regressions == []
    assert any(n.startswith("stage.tts.wall_per_min: noisy baseline") for n in found.notes)
