"""What the run history and the regression check cost a dub: the demo's job, run alternately
with the history off and on (a history already holding runs and baselines), in one process.

    .venv/bin/python benchmarks/bench_perf_overhead.py [--repeat 5] [--prefill 20] [--copies N]

``--copies N`` then adds N copies of the last prefilled run to the history (new run ids), so
the writer's time can be read against a history of thousands of runs.

Prints each mode's median wall around ``videodub.api.dub``, the time the history writer
itself took (compare, advise, append, baselines: timed inside the observer), and both as a
share of the job's wall. Timings on a shared machine are noisy: the direct figure is the one
to read; the difference of walls is shown for what it is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import os

    import videodub.perf.observer as observer
    from videodub.api import dub
    from videodub.plugins import installed_registry
    from videodub.testing.samples import make_talk, write_translation_srt

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--prefill", type=int, default=20)
    ap.add_argument("--copies", type=int, default=0)
    args = ap.parse_args()
    registry = installed_registry()
    spent: list[float] = []
    original = observer.record_run

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            spent.append(time.perf_counter() - t0)

    observer.record_run = timed
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        talk = work / "talk.mp4"
        subs = write_translation_srt(make_talk(talk), work / "talk.es.srt")
        job = [f"input={talk}", "target_lang=es", "translate=subtitles",
               f"translate.file={subs}", "cache=false"]
        history = work / "history.sqlite"

        def run(mode: str, n: int) -> float:
            os.environ["VIDEODUB_HISTORY"] = str(history) if mode == "on" else "off"
            t0 = time.perf_counter()
            dub(job, work / f"{mode}{n}", registry)
            return time.perf_counter() - t0

        run("on", -1)  # warm-up: model load, imports
        for i in range(args.prefill):  # a history with baselines to compare with
            run("on", 1000 + i)
        if args.copies:
            import dataclasses

            from videodub.perf.history import History

            with History(history) as hist:
                last = hist.runs(limit=1)[-1]
                for i in range(args.copies):
                    hist.append(dataclasses.replace(last, run_id=f"{last.run_id}-copy{i}"))
        spent.clear()
        walls: dict[str, list[float]] = {"off": [], "on": []}
        for i in range(args.repeat):
            for mode in ("off", "on"):
                walls[mode].append(run(mode, i))
    off, on = statistics.median(walls["off"]), statistics.median(walls["on"])
    writer = statistics.median(spent)
    print(f"demo job, {args.repeat} runs per mode, history prefilled with {args.prefill} runs"
          + (f" and {args.copies} copies of the last" if args.copies else ""))
    print(f"wall, history off : {off:.3f} s (median)")
    print(f"wall, history on  : {on:.3f} s (median); difference {on - off:+.3f} s "
          f"({(on - off) / off:+.1%}, noise included)")
    print(f"history writer    : {writer * 1000:.1f} ms per run (median) = "
          f"{writer / off:.2%} of the job's wall")


if __name__ == "__main__":
    main()
