"""Many inputs in one command: ``input=`` a folder, a glob or a list file becomes a Hydra
multirun with one job per input, so any launcher (joblib, Ray, SLURM) runs them.

- :func:`batch_argv` rewrites the command line: the inputs as one sweep value, ``-m``, a
  sweep folder named after what was asked (``outputs/batch/<name>``, so a re-run finds the
  runs of the first), one sub-folder per input, and :class:`InputsSummary` as a callback;
- each job records what it finished in ``done.json`` (:func:`mark_done`), and a re-run with
  the same config skips it (:func:`already_done`);
- a job that fails records its error and the others go on; :class:`InputsSummary` prints one
  line per input at the end (status, wall, real-time factor, cost, output or error) and
  writes ``summary.json`` beside the runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from videodub.errors import VideodubError
from videodub.inputs import expand, input_slug, is_many
from videodub.media import write_json_atomic
from videodub.overrides import hydra_quote, unquote
from videodub.providers.secrets import redact

log = logging.getLogger(__name__)
SLUG_RESOLVER = "videodub_input_slug"
DONE_FILE = "done.json"
SUMMARY_FILE = "summary.json"
# Failed inputs of the last summary printed in this process (the command line's exit status).
_last_failed: list[str] = []


def register_resolver() -> None:
    """``${videodub_input_slug:${input}}`` names each input's run folder. Registered where the
    task lives (``videodub.cli``), so a launcher's worker process has it too."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(SLUG_RESOLVER):
        OmegaConf.register_new_resolver(SLUG_RESOLVER, lambda value: input_slug(str(value)))


def batch_argv(argv: list[str]) -> list[str]:
    """``argv`` with a many-input ``input=`` turned into a sweep of one job per input (as it
    was otherwise). A folder without media or a list naming nothing is a one-line error."""
    index = next((i for i, a in enumerate(argv) if a.startswith("input=")), None)
    if index is None:
        return argv
    spec = os.path.expanduser(unquote(argv[index].split("=", 1)[1]))
    if not is_many(spec):
        return argv
    inputs = expand(spec)
    out = list(argv)
    out[index] = "input=" + ",".join(hydra_quote(i) for i in inputs)
    keys = {a.split("=", 1)[0].lstrip("+~") for a in argv if "=" in a}
    if not {"-m", "--multirun"}.intersection(argv):
        out.insert(0, "-m")
    if "hydra.sweep.dir" not in keys:
        name = re.sub(r"[^\w.\-]+", "_", spec.strip("/")).strip("._")[-80:] or "inputs"
        name = f"{name}-{hashlib.sha256(spec.encode()).hexdigest()[:6]}"
        out.append(f"hydra.sweep.dir=outputs/batch/{name}")
    if "hydra.sweep.subdir" not in keys:
        out.append(f"hydra.sweep.subdir='${{{SLUG_RESOLVER}:${{input}}}}'")
    out.append("+hydra.callbacks.videodub_inputs._target_=videodub.run.batch.InputsSummary")
    return out


def config_digest(cfg: Any) -> str:
    """What a job's result depends on: its whole config but Hydra's node."""
    from omegaconf import OmegaConf

    plain = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "hydra"}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()


def already_done(run_dir: Path, cfg: Any) -> Path | None:
    """The video an earlier run of this very job left in ``run_dir``, if it is still there."""
    try:
        done = json.loads((run_dir / DONE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    video = run_dir / str(done.get("video", ""))
    if done.get("config") != config_digest(cfg) or not video.is_file():
        return None
    return video


def mark_done(run_dir: Path, cfg: Any, video: Path) -> None:
    write_json_atomic(run_dir / DONE_FILE, {"input": redact(str(cfg.input)),
                                            "video": video.name, "config": config_digest(cfg)})


def record_failure(run_dir: Path, input_value: str, message: str) -> None:
    """A job that failed before its runner wrote a report still gets one line in the summary."""
    report = run_dir / "report.json"
    if not report.exists():
        write_json_atomic(report, {"status": "failed", "error": message,
                                   "job": {"input": input_value}})


def summary_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for run in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        try:
            report = json.loads((run / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        status = report.get("status", "?")
        if status == "ok" and (run / "skipped").exists():
            status = "skipped (done)"
        outputs = report.get("outputs") or {}
        video = outputs.get("video")
        rows.append({
            "input": report.get("job", {}).get("input"), "status": status,
            "wall_s": report.get("wall_s"), "realtime_factor": report.get("realtime_factor"),
            "cost_usd": report.get("cost_usd"), "run_dir": str(run),
            "video": str(run / video) if video else None, "error": report.get("error")})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    def num(v: Any, fmt: str) -> str:
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    lines = [f"{len(rows)} inputs: {sum(r['status'] != 'failed' for r in rows)} dubbed, "
             f"{sum(r['status'] == 'failed' for r in rows)} failed"]
    for r in rows:
        tail = r["video"] if r["status"] != "failed" else f"error: {r['error']}"
        lines.append(f"  {r['status']:<15} {num(r['wall_s'], '7.1f')} s  RTF "
                     f"{num(r['realtime_factor'], '.3f'):>6}  $ {num(r['cost_usd'], '.4f'):>7}  "
                     f"{r['input']}  ->  {tail}")
    return "\n".join(lines)


def last_failed() -> list[str]:
    return list(_last_failed)


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - hydra-core is a dependency
    Callback = object  # type: ignore[misc,assignment]


class InputsSummary(Callback):
    """Prints and saves one line per input when the sweep ends (in the launching process,
    whichever launcher ran the jobs)."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            return
        rows = summary_rows(sweep_dir)
        write_json_atomic(sweep_dir / SUMMARY_FILE, rows)
        _last_failed[:] = [str(r["input"]) for r in rows if r["status"] == "failed"]
        print(render(rows), flush=True)


__all__ = ["InputsSummary", "VideodubError", "batch_argv", "already_done", "mark_done"]
