"""A dub as a user runs it: ``python -m videodub`` in a fresh process, every import and the
model load inside it.

The other benchmarks warm their process up first, so they cannot see what a command-line job
pays to start: heavy imports run inside the job, beside recognition, and cost its CPU. This
generates the pipeline benchmark's talk (``bench_pipeline.build_talk``), runs the command
``--repeat`` times under ``python -X importtime``, then the same job as many times in one
process after an untimed one (warm: imports done, model loaded), and prints, as medians of
each and as cold / warm: the job's wall and CPU (report.json), when the first line was
recognised and when recognition ended, and the cold process's own wall; then the imports that
took longest in the last cold run (cumulative, with what they pulled in), so a new heavy
import shows here.

    python benchmarks/bench_cold.py [--duration 60] [--profile speed] [--repeat 5] [--imports 10]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import build_talk, table  # noqa: E402


def one_run(video: Path, srt: Path, profile: str, run_dir: Path) -> tuple[dict, str]:
    cmd = [sys.executable, "-X", "importtime", "-m", "videodub", f"input={video}",
           "target_lang=es", "translate=subtitles", f"translate.file={srt}",
           f"profile={profile}", "cache=false", f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"the job failed: {done.stderr.strip().splitlines()[-1:]}")
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    stages = report["stages"]
    return {"process_s": wall, "job_s": report["wall_s"], "job_cpu_s": report["cpu_s"],
            "first_line_s": stages["translate"]["start_s"],
            "recognition_end_s": stages["transcribe"]["end_s"]}, done.stderr


WARM = """
import json, sys
from pathlib import Path
from videodub.api import dub
video, srt, profile, folder, n = sys.argv[1:6]
for i in range(int(n) + 1):
    run = Path(folder) / f"warm{i}"
    dub([f"input={video}", "target_lang=es", "translate=subtitles", f"translate.file={srt}",
         f"profile={profile}", "cache=false"], run)
    if i:
        r = json.loads((run / "report.json").read_text(encoding="utf-8"))
        print(json.dumps({"job_s": r["wall_s"], "job_cpu_s": r["cpu_s"],
                          "first_line_s": r["stages"]["translate"]["start_s"],
                          "recognition_end_s": r["stages"]["transcribe"]["end_s"]}))
"""


def warm_runs(video: Path, srt: Path, profile: str, folder: Path, n: int) -> list[dict]:
    done = subprocess.run([sys.executable, "-c", WARM, str(video), str(srt), profile,
                           str(folder), str(n)], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def top_imports(stderr: str, n: int) -> list[list[str]]:
    """The ``n`` imports of videodub's own modules and of top-level packages that took
    longest, cumulative (what each pulled in counted), from ``-X importtime`` output."""
    rows = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)", line)
        if m and (len(m.group(3)) == 1 or m.group(4).startswith("videodub.")):
            rows.append((int(m.group(2)), m.group(4)))
    rows.sort(reverse=True)
    return [[name, f"{us / 1e6:.3f}"] for us, name in rows[:n]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--profile", default="speed")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--imports", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="videodub-bench-cold-") as tmp:
        folder = Path(tmp)
        video, srt, _ = build_talk(folder, args.duration)
        one_run(video, srt, args.profile, folder / "warm")  # the OS's file cache, not Python's
        runs, stderr = [], ""
        for i in range(args.repeat):
            figures, stderr = one_run(video, srt, args.profile, folder / f"run{i}")
            runs.append(figures)
        warm = warm_runs(video, srt, args.profile, folder, args.repeat)
    med = statistics.median
    print(f"{args.duration:.0f} s talk, profile {args.profile}: `python -m videodub` in a fresh "
          f"process (cold) and the same job in a process that already ran one (warm), "
          f"{args.repeat} runs each, medians; seconds from the job's start")
    rows = []
    for k in runs[0]:
        cold = med(r[k] for r in runs)
        hot = med(r[k] for r in warm) if k in warm[0] else None
        rows.append([k, f"{cold:.3f}", f"{min(r[k] for r in runs):.3f}-"
                     f"{max(r[k] for r in runs):.3f}", "" if hot is None else f"{hot:.3f}",
                     "" if hot is None else f"{cold / hot:.2f}"])
    print(table(["figure", "cold", "cold range", "warm", "cold / warm"], rows))
    print("\nslowest imports in the last run (seconds, cumulative; -X importtime inflates "
          "them a little)")
    print(table(["module", "s"], top_imports(stderr, args.imports)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
