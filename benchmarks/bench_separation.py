"""Memory and time of the voice separation (``mix.original_voice=separate``) against the
input's length: ``separate_background`` alone on generated stereo at 48 kHz, each length in a
fresh process (its peak RSS is the call's), with a tiny model of the MDX-Net interface built
here (a real model cannot be fetched offline; its own memory and time are not counted, the
reading, resampling, STFT, chunking and writing are).

    python benchmarks/bench_separation.py [--minutes 2 5 20]

Needs the ``onnx`` package (in the ``test`` extra).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATE = 48000


def one(minutes: float, folder: Path) -> dict:
    """In this process: write the input, separate it, report."""
    import numpy as np
    import soundfile

    from videodub.separation import separate_background
    from videodub.testing.separation import tiny_model

    src = folder / f"original-{minutes:g}.wav"
    rng = np.random.default_rng(0)
    with soundfile.SoundFile(str(src), "w", RATE, 2, subtype="PCM_16") as f:
        for i in range(int(minutes * 60)):
            t = (np.arange(RATE) + i * RATE) / RATE
            x = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(RATE)
            f.write(np.stack([x, x[::-1]], axis=1))
    model = tiny_model(folder / "tiny.onnx", 0.5)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    out = separate_background(src, folder / "background.wav", model)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"minutes": minutes, "wall_s": round(wall, 2), "peak_rss_mib": round(peak),
            "rss_before_mib": round(before), "frames": soundfile.info(str(out)).frames}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[2, 5, 20])
    ap.add_argument("--one", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.folder)))
        return 0
    print("minutes  wall s  peak RSS MiB  (RSS before the call)")
    for minutes in args.minutes:
        with tempfile.TemporaryDirectory(prefix="bench-separation-") as tmp:
            run = subprocess.run([sys.executable, __file__, "--one", str(minutes), "--folder",
                                  tmp], capture_output=True, text=True, check=True)
            r = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{r['minutes']:7g}  {r['wall_s']:6.1f}  {r['peak_rss_mib']:12d}  "
                  f"({r['rss_before_mib']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
