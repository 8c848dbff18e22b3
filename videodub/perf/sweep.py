"""After a Hydra multirun, a table comparing its jobs: printed, and written as ``summary.csv``
and ``summary.html`` in the sweep folder. It is a Hydra callback (``hydra.callbacks`` in
``conf/config.yaml``), so it runs in the process that launched the sweep whatever the
launcher (basic, joblib, submitit), and reads what each job left: its ``report.json``."""

from __future__ import annotations

import csv
import html
import io
import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from videodub.media import atomic_path

STAGES = ("ingest", "transcribe", "translate", "align", "tts", "mix", "mux")


def job_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job folder that has a report, in job order."""
    rows = []
    reports = sorted(sweep_dir.glob("*/report.json"),
                     key=lambda p: (not p.parent.name.isdigit(),
                                    int(p.parent.name) if p.parent.name.isdigit() else 0,
                                    p.parent.name))
    for path in reports:
        try:
            r = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            rows.append({"job": path.parent.name, "status": "unreadable report"})
            continue
        overrides = ""
        ov = path.parent / ".hydra" / "overrides.yaml"
        if ov.exists():
            overrides = " ".join(line.strip("- \n") for line in ov.read_text().splitlines()
                                 if line.strip().startswith("-") and "input=" not in line)
        row: dict[str, Any] = {"job": path.parent.name, "overrides": overrides,
                               "status": r.get("status"), "wall_s": r.get("wall_s"),
                               "rtf": r.get("realtime_factor"), "cost_usd": r.get("cost_usd")}
        for stage in STAGES:
            row[f"{stage}_s"] = (r.get("stages") or {}).get(stage, {}).get("wall_s")
        for name, value in _numbers(r.get("quality") or {}).items():
            row[f"quality.{name}"] = value
        perf = r.get("perf") or {}
        row["regressions"] = "; ".join(f"{g['severity']} {g['metric']}"
                                       for g in perf.get("regressions", []))
        row["health"] = (perf.get("health") or {}).get("score")
        rows.append(row)
    return rows


def _numbers(tree: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_numbers(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = v
    return out


def only_varying_overrides(rows: list[dict[str, Any]]) -> None:
    """Keep in ``overrides`` what tells the jobs apart (the swept values), not what all share."""
    split = [set(str(r.get("overrides", "")).split()) for r in rows]
    common = set.intersection(*split) if split else set()
    for row, parts in zip(rows, split):
        if "overrides" in row:
            row["overrides"] = " ".join(p for p in str(row["overrides"]).split()
                                        if p not in common or len(rows) == 1)


def columns(rows: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        cols += [c for c in row if c not in cols]
    return cols


def write_summary(sweep_dir: Path) -> list[dict[str, Any]]:
    rows = job_rows(sweep_dir)
    if not rows:
        return rows
    only_varying_overrides(rows)
    cols = columns(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(sweep_dir / "summary.csv") as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    e = html.escape
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>videodub sweep</title>"
            "<style>body{font-family:system-ui,sans-serif}td,th{padding:.2em .5em;"
            "border-bottom:1px solid #ddd}</style></head><body><h1>videodub sweep</h1><table>"
            "<tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{e(_fmt(row.get(c)))}</td>" for c in cols)
                      + "</tr>" for row in rows) + "</table></body></html>")
    with atomic_path(sweep_dir / "summary.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    return rows


# Terminal columns below which the stages' walls are left out of the printed summary.
NARROWEST_WITH_STAGES = 140


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict[str, Any]], sweep_dir: Path, console: Any = None) -> None:
    """The summary as a table: columns empty in every row left out, and in a terminal too
    narrow for them the stages' walls (summary.csv has every column)."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console() if sys.stdout.isatty() else Console(width=160)
    stages = [f"{s}_s" for s in STAGES]
    shown = [c for c in ["job", "overrides", "status", "wall_s", "rtf", *stages, "cost_usd",
                         "health", "regressions"] if any(_fmt(row.get(c)) for row in rows)]
    if console.width < NARROWEST_WITH_STAGES:
        shown = [c for c in shown if c not in stages]
    table = Table(title=f"sweep summary ({sweep_dir})", title_justify="left")
    for col in shown:
        table.add_column(col.removesuffix("_s") if col.endswith("_s") and col != "wall_s"
                         else col)
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in shown))
    console.print(table)


class SweepSummary(Callback):
    """Hydra callback: the summary once every job of the sweep has ended."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        try:
            sweep_dir = Path(str(config.hydra.sweep.dir))
            rows = write_summary(sweep_dir)
            if rows:
                print_table(rows, sweep_dir)
                print(sweep_dir / "summary.csv", flush=True)
        except Exception as exc:  # noqa: BLE001 - a summary never fails the sweep
            print(f"warning: no sweep summary: {type(exc).__name__}: {exc}", flush=True)
