"""videodub/perf/sweep.py: the table after a multirun, from what each job left behind."""

from __future__ import annotations

import csv
import json

from videodub.perf.sweep import SweepSummary, print_table, write_summary


def job(folder, n, profile, wall, status="ok", quality=None, regressions=()):
    d = folder / str(n)
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(
        f"- input=talk.mp4\n- target_lang=es\n- profile={profile}\n")
    report = {"status": status, "wall_s": wall, "realtime_factor": wall / 60, "cost_usd": None,
              "stages": {"transcribe": {"wall_s": wall / 2}, "tts": {"wall_s": wall / 4}},
              "quality": quality or {},
              "perf": {"regressions": [{"severity": s, "metric": m} for s, m in regressions],
                       "health": {"score": 90.0}}}
    (d / "report.json").write_text(json.dumps(report))


def test_summary_files_compare_the_jobs(tmp_path):
    for n, profile, wall in ((0, "quality", 9.0), (1, "balanced", 6.0), (2, "speed", 3.0),
                             (10, "speed", 3.5)):
        job(tmp_path, n, profile, wall, quality={"sync": {"overflow_count": n}},
            regressions=[("HIGH", "stage.tts.wall_per_min")] if n == 2 else ())
    rows = write_summary(tmp_path)
    assert [r["job"] for r in rows] == ["0", "1", "2", "10"]  # job order, not text order
    with (tmp_path / "summary.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [r["overrides"] for r in table] == ["profile=quality", "profile=balanced",
                                               "profile=speed", "profile=speed"]
    assert [float(r["wall_s"]) for r in table] == [9.0, 6.0, 3.0, 3.5]
    assert table[2]["regressions"] == "HIGH stage.tts.wall_per_min"
    assert table[3]["quality.sync.overflow_count"] == "10"
    page = (tmp_path / "summary.html").read_text()
    assert page.count("<tr>") == 5 and "profile=balanced" in page


def test_the_callback_prints_the_table_and_never_fails_the_sweep(tmp_path, capsys):
    from omegaconf import OmegaConf

    job(tmp_path, 0, "speed", 3.0)
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "report.json").write_text("{broken")
    SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    out = capsys.readouterr().out
    assert "sweep summary" in out and "unreadable report" in out
    assert out.strip().endswith("summary.csv")
    SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {}}))  # no sweep dir: a warning
    assert "warning: no sweep summary" in capsys.readouterr().out


def test_the_printed_table_fits_the_terminal_and_leaves_out_empty_columns(tmp_path):
    """At 80 columns a row of every stage's wall wraps into noise: those go (summary.csv has
    them); a column empty in every row (no cost, no regression) goes at any width."""
    import io

    from rich.console import Console

    for n, profile, wall in ((0, "quality", 9.0), (1, "speed", 3.0)):
        job(tmp_path, n, profile, wall)
    rows = write_summary(tmp_path)
    for width, stages in ((80, False), (160, True)):
        out = io.StringIO()
        print_table(rows, tmp_path, Console(file=out, width=width))
        lines = out.getvalue().splitlines()
        header = next(ln for ln in lines if "status" in ln)
        assert ("transcribe" in header) == stages and "cost_usd" not in header
        assert "regressions" not in header and "overrides" in header
        assert max(len(ln) for ln in lines[1:]) <= width
        assert sum("profile=" in ln for ln in lines) == 2  # one line a job
