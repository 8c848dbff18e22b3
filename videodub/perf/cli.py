"""``python -m videodub perf ...``: plan, advise, baseline, check, dashboard, runs.

Every problem (a corrupt or too-new history, an unknown suite) is one ``error:`` line and
exit status 2; a broken gate is exit status 1. A missing or empty history is not an error:
the commands say so and work with what there is.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from videodub.config import PerfConfig, PerfThresholds
from videodub.perf.history import ENV_VAR, History, history_path

DEFAULT_BASELINE = Path("benchmarks/perf_baseline.json")


def _history(args: argparse.Namespace) -> Path:
    path = Path(args.history) if args.history else history_path(PerfConfig().history)
    if path is None:
        from videodub.errors import VideodubError

        raise VideodubError(f"the run history is off ({ENV_VAR}); name one with --history")
    return path


def _rules() -> dict[str, Any]:
    from videodub.perf.observer import installed_rules

    return installed_rules()


def cmd_plan(args: argparse.Namespace) -> int:
    from videodub.perf.plan import make_plan

    plan = make_plan(args.overrides)
    print(json.dumps(plan.as_dict(), indent=1) if args.json else "\n".join(plan.lines()))
    return 0


def cmd_advise(args: argparse.Namespace) -> int:
    from videodub.perf.data import gather

    data = gather(_history(args), _rules())
    if data["note"]:
        print(data["note"])
    h = data["health"]
    print(f"health {h['score']:.0f}/100: " + ", ".join(f"{k} {v:.0f}"
                                                        for k, v in h["parts"].items()))
    for reg in data["regressions"]:
        print(f"{reg['severity']} regression: {reg['metric']} ({reg['impl']}) "
              f"{reg['change']:+.0%}")
    if not data["recommendations"]:
        print("no recommendations" + (" (no runs to learn from)" if not data["runs"] else ""))
    for i, rec in enumerate(data["recommendations"], 1):
        print(f"{i}. {rec['title']}\n   change: {rec['change']}   impact {rec['impact']}, "
              f"effort {rec['effort']}, {rec['category']}\n   {rec['why']}")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from videodub.perf.baseline import load_baselines, update_baselines
    from videodub.perf.data import open_history

    hist, note = open_history(_history(args))
    if hist is None:
        print(note)
        return 0
    with hist:
        if args.action == "update":
            found = update_baselines(hist, args.window or PerfConfig().window)
            print(f"{len(found)} baselines updated from {hist.count()} runs in {hist.path}")
        for b in load_baselines(hist):
            print(f"{b.metric:<32} {b.impl:<16} {b.profile:<9} {b.machine_class:<28} "
                  f"n={b.n:<3} p50={b.p50:.4g} p95={b.p95:.4g} spread={b.spread:.3g}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from videodub.perf.check import Gate, Result, apply_gate, run_suite

    gate = Gate(args.max_critical, args.max_high, args.min_health)
    if args.suite:
        result = run_suite(args.suite, Path(args.baseline), PerfThresholds(), gate,
                           update=args.update_baseline)
        for name, value in result.ratios.items():
            print(f"{name:<24} {value:.4g}")
    else:
        from videodub.perf.data import gather

        data = gather(_history(args), _rules())
        latest = data["latest"]
        result = Result("last run", {}, regressions=data["regressions"],
                        health=data["health"]["score"])
        if latest is None:
            result.notes.append(data["note"] or "no runs")
        else:
            result.notes.append(f"last run: {latest.run_id} ({latest.status})")
        apply_gate(result, gate)
    for note in result.notes:
        print(note)
    for reg in result.regressions:
        print(f"{reg['severity']} regression: {reg['metric']} {reg['change']:+.0%}")
    print(f"health {result.health:.0f}")
    if result.failures:
        print("perf check failed: " + "; ".join(result.failures), file=sys.stderr)
        return 1
    print("perf check passed")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from videodub.perf import dashboard
    from videodub.perf.data import gather

    path, rules = _history(args), _rules()
    if args.serve:
        from videodub.perf.plan import make_plan
        from videodub.perf.serve import make_server

        server = make_server(path, rules, lambda: make_plan().as_dict(), port=args.port)
        host, port = server.server_address[:2]
        print(f"serving http://{host}:{port}/ (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            threading.Thread(target=server.shutdown, daemon=True).start()
            server.server_close()
        return 0
    data = gather(path, rules)
    if data["note"]:
        print(data["note"])
    out = dashboard.write(data, Path(args.out))
    print(out)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from videodub.perf.data import open_history

    hist, note = open_history(_history(args))
    if hist is None:
        print(note)
        return 0
    with hist:
        for r in hist.runs(limit=args.last):
            regs = getattr(r, "regressions", [])
            print(f"{r.started_at}  {r.status:<9} {r.profile:<9} {r.wall_s:7.2f} s  "
                  f"{len(regs)} regressions  {r.run_dir}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m videodub perf",
                                description="Performance across runs (docs/monitoring.md).")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help: str, history: bool = True) -> argparse.ArgumentParser:  # noqa: A002
        sp = sub.add_parser(name, help=help, description=help)
        if history:
            sp.add_argument("--history", help=f"the history database (default: ${ENV_VAR} or "
                                              f"outputs/history.sqlite)")
        return sp

    sp = add("plan", "what the runner would choose on this machine, without running",
             history=False)
    sp.add_argument("overrides", nargs="*", help="job overrides, as for a run")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_plan)
    add("advise", "ranked recommendations and the health score").set_defaults(func=cmd_advise)
    sp = add("baseline", "show or recompute the baselines from the history")
    sp.add_argument("action", choices=["show", "update"])
    sp.add_argument("--window", type=int, default=0)
    sp.set_defaults(func=cmd_baseline)
    sp = add("check", "the CI gate: a benchmark suite, or the last run in the history")
    sp.add_argument("--suite", choices=["smoke", "basic"])
    sp.add_argument("--baseline", default=str(DEFAULT_BASELINE))
    sp.add_argument("--update-baseline", action="store_true")
    sp.add_argument("--max-critical", type=int, default=0)
    sp.add_argument("--max-high", type=int, default=2)
    sp.add_argument("--min-health", type=float, default=60.0)
    sp.set_defaults(func=cmd_check)
    sp = add("dashboard", "write the offline HTML dashboard, or serve it on localhost")
    sp.add_argument("--out", default="outputs/perf/dashboard.html")
    sp.add_argument("--serve", action="store_true")
    sp.add_argument("--port", type=int, default=8765)
    sp.set_defaults(func=cmd_dashboard)
    sp = add("runs", "the last runs in the history")
    sp.add_argument("--last", type=int, default=20)
    sp.set_defaults(func=cmd_runs)
    return p


def main(argv: list[str]) -> int:
    from videodub.errors import VideodubError
    from videodub.providers.secrets import redact

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except VideodubError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
