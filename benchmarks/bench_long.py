"""Long media: a generated two-hour talk dubbed end to end, offline, for peak memory (the job
and every child process it starts, as ``report.json`` counts them) and the disk it uses.

The input is a one-minute espeak-ng talk over a test pattern, repeated with ffmpeg's stream
copy (no re-encode) to ``--minutes``; the job re-voices it in English (``translate=none``) with
the speed profile, the cache in the run's own folder. The input is made in one child process
and the job runs as ``python -m videodub`` in another, as a user runs it: the job's children
are then only its own (a child forked from a bigger process would be counted with pages it
merely shares). It prints the wall, the real-time
factor, the peak RSS (children included) and where it was reached, and the run's and the
cache's size on disk. Memory is sampled by the job itself every 100 ms; a peak shorter than
that can be missed.

    python benchmarks/bench_long.py [--minutes 120] [--profile speed] [--keep DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def make_long_input(folder: Path, minutes: float) -> Path:
    from videodub.media import run_ffmpeg
    from videodub.testing.samples import ENGLISH_TALK, make_talk

    one = folder / "one.mp4"
    make_talk(one, ENGLISH_TALK * 2, pause=1.0, min_duration=60.0, size="160x120", fps=5)
    loops = max(1, int(round(minutes)))  # the one-minute talk, ``minutes`` times
    out = folder / f"talk_{loops}min.mp4"
    run_ffmpeg(["-v", "error", "-stream_loop", str(loops - 1), "-i", str(one), "-c", "copy",
                "-t", str(minutes * 60), str(out)], what="looping the talk")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=120.0, help="length of the input")
    parser.add_argument("--profile", default="speed")
    parser.add_argument("--keep", type=Path, help="keep the input and the run here")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--make-input", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make_input:
        print(make_long_input(args.make_input, args.minutes))
        return 0

    from videodub.machine import Machine

    root = args.keep or Path(tempfile.mkdtemp(prefix="videodub-long-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.monotonic()
        made_by = subprocess.run(
            [sys.executable, __file__, "--make-input", str(root), "--minutes", str(args.minutes)],
            capture_output=True, text=True, check=True)
        video = Path(made_by.stdout.strip().splitlines()[-1])
        made = time.monotonic() - t0
        machine = Machine.detect()
        print(f"machine: {machine.cpus} usable CPUs ({machine.cpu_reason}); "
              f"input {video.name}, {video.stat().st_size / 2**20:.0f} MiB, made in {made:.0f} s")
        run, cache = root / "run", root / "cache"
        job = subprocess.run(
            [sys.executable, "-m", "videodub", f"input={video}", "target_lang=en",
             "translate=none", f"profile={args.profile}", f"cache_dir={cache}",
             f"hydra.run.dir={run}", "runner.display=quiet", *args.override],
            capture_output=True, text=True)
        if job.returncode != 0:
            print(job.stderr[-3000:], file=sys.stderr)
        report = json.loads((run / "report.json").read_text(encoding="utf-8"))
        stages = report["stages"]
        figures = {
            "minutes": args.minutes, "profile": args.profile, "status": report["status"],
            "wall_s": report["wall_s"], "realtime_factor": report["realtime_factor"],
            "cpu_s": report["cpu_s"], "peak_rss_mb": report["peak_rss_mb"],
            "peak_rss_children_mb": report.get("peak_rss_children_mb"),
            "stage_peak_rss_mb": {k: v["peak_rss_mb"] for k, v in stages.items()},
            "stage_wall_s": {k: v["wall_s"] for k, v in stages.items()},
            # When each stage began and ended, seconds from the job's start (they overlap).
            "stage_span_s": {k: [v.get("start_s"), v.get("end_s")] for k, v in stages.items()},
            "segments": report["job"]["segments"],
            "run_mb": round(folder_size(run) / 2**20, 1),
            "cache_mb": round(folder_size(cache) / 2**20, 1),
            "usable_cpus": machine.cpus,
        }
        print(json.dumps(figures, indent=2))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        return 0 if report["status"] == "ok" else 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
