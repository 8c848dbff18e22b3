"""The dashboard's plots from the history's runs: stage walls per minute of media, and the
providers' error counts on an axis of whole numbers from zero."""

from __future__ import annotations

from types import SimpleNamespace

from videodub.perf.dashboard import _providers, _trends


def run(at: str, media_s: float | None, walls: dict[str, float], errors: int = 0):
    stages = [SimpleNamespace(stage=name, wall_s=wall) for name, wall in walls.items()]
    provider = SimpleNamespace(stage="tts", model="tts-1", p50_ms=120.0, p95_ms=200.0,
                               rate_limited=errors, timeouts=0, errors=0)
    return SimpleNamespace(started_at=at, media_s=media_s, stages=stages, providers=[provider])


def test_stage_walls_are_per_minute_of_media_and_runs_without_media_are_left_out():
    """A two-hour job's 280 s of mix is 2.3 s a minute, beside a one-minute job's 0.5 s."""
    runs = [run("2026-12-03T10:00", 7200.0, {"mix": 280.0, "transcribe": 600.0}),
            run("2026-12-03T11:00", 60.0, {"mix": 0.5, "transcribe": 2.0}),
            run("2026-12-03T12:00", None, {"mix": 0.0})]  # failed before ingest
    traces = {t.name: t for t in _trends(runs).data}
    assert list(traces["mix"].y) == [280.0 * 60 / 7200, 0.5]
    assert list(traces["transcribe"].x) == ["2026-12-03T10:00", "2026-12-03T11:00"]


def test_the_errors_axis_counts_whole_numbers_from_zero():
    quiet = _providers([run("t", 60.0, {}), run("t", 60.0, {})]).layout.yaxis2
    assert list(quiet.range) == [0, 1] and quiet.dtick == 1 and quiet.tickformat == "d"
    busy = _providers([run("t", 60.0, {}, errors=3)]).layout.yaxis2
    assert busy.range is None and busy.rangemode == "tozero"
