"""Voice activity found while ingest writes the speech, against faster-whisper's own VAD.

Generates the pipeline benchmark's talk (``bench_pipeline.build_talk``), then for each pair
runs ingest and the profile's transcriber as a job does (recognition starts on the speech
ingest hands on while it still extracts it) twice, in alternating order:

- **streamed**: as videodub runs it (``videodub.recognition.StreamingVad``: the Silero model
  runs over what is written of the window while recognition waits for the rest);
- **after**: faster-whisper's own ``vad_filter``, which runs the model over the whole window
  once it is written.

Prints the time from ingest's start to the first recognised line and to the last, per pair and
as medians, and whether both gave the same lines. The same is then timed over a finished file
(nothing to overlap: both should take the same time).

    python benchmarks/bench_vad.py [--duration 60] [--profile speed] [--pairs 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import build_talk, table  # noqa: E402

from videodub import recognition  # noqa: E402
from videodub.api import compose_job  # noqa: E402
from videodub.builtin import transcribe_faster_whisper as fw  # noqa: E402
from videodub.model import JobContext  # noqa: E402
from videodub.plugins import collect  # noqa: E402


def stages(video: Path, profile: str):
    job = compose_job([f"input={video}", "target_lang=es", f"profile={profile}"])
    registry = collect()
    ingester = registry.get("ingest", job.stages["ingest"].impl).create(job.stages["ingest"])
    opts = job.stages["transcribe"]
    return ingester, registry.get("transcribe", opts.impl).create(opts)


def run(video: Path, folder: Path, profile: str, streamed: bool,
        growing: bool = True) -> tuple[float, float, list[tuple]]:
    """(seconds to the first line, to the last, the lines) from ingest's start."""
    ingester, transcriber = stages(video, profile)
    ctx = JobContext(folder, "es", None)
    started = threading.Event()
    media_box: list = []

    def speech_started(media) -> None:
        media_box.append(media)
        started.set()

    if growing:
        ctx.speech_started = speech_started
    real = recognition.StreamingVad.create
    fw.StreamingVad.create = real if streamed else (lambda min_silence_ms: None)
    try:
        t0 = time.perf_counter()
        ingest = threading.Thread(target=lambda: media_box.append(ingester.ingest(video, ctx)))
        ingest.start()
        if growing:
            started.wait(60)
        else:
            ingest.join()
        first = None
        lines = []
        for seg in transcriber.transcribe(media_box[0], ctx):
            if first is None:
                first = time.perf_counter() - t0
            lines.append((seg.start, seg.end, seg.source_text))
        last = time.perf_counter() - t0
        ingest.join()
    finally:
        fw.StreamingVad.create = real
    return first or last, last, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--profile", default="speed")
    parser.add_argument("--pairs", type=int, default=8)
    args = parser.parse_args()
    if recognition.StreamingVad.create(500) is None:
        print("the installed faster-whisper's VAD model is not the one StreamingVad reads")
        return 1
    with tempfile.TemporaryDirectory(prefix="videodub-bench-vad-") as tmp:
        folder = Path(tmp)
        video, _, _ = build_talk(folder, args.duration)
        run(video, folder / "warm", args.profile, True)  # model load, lazy imports
        for growing in (True, False):
            rows, firsts, lasts, same = [], {True: [], False: []}, {True: [], False: []}, True
            for i in range(args.pairs):
                got = {}
                for streamed in ((True, False) if i % 2 == 0 else (False, True)):
                    got[streamed] = run(video, folder / f"r{i}{streamed}{growing}", args.profile,
                                        streamed, growing)
                    firsts[streamed].append(got[streamed][0])
                    lasts[streamed].append(got[streamed][1])
                same = same and got[True][2] == got[False][2]
                rows.append([i + 1, f"{got[True][0]:.3f}", f"{got[False][0]:.3f}",
                             f"{got[True][1]:.3f}", f"{got[False][1]:.3f}",
                             f"{got[True][1] - got[False][1]:+.3f}"])
            med = statistics.median
            rows.append(["median", f"{med(firsts[True]):.3f}", f"{med(firsts[False]):.3f}",
                         f"{med(lasts[True]):.3f}", f"{med(lasts[False]):.3f}",
                         f"{med(a - b for a, b in zip(lasts[True], lasts[False])):+.3f}"])
            what = ("as a job runs it (recognition on the speech while ingest writes it)"
                    if growing else "over the finished file (ingest done first)")
            print(f"\n{args.duration:.0f} s talk, profile {args.profile}, {what}; seconds "
                  f"from ingest's start")
            print(table(["pair", "first line streamed", "first line after",
                         "last line streamed", "last line after", "last: streamed - after"],
                        rows))
            print("same lines both ways: " + ("yes" if same else "NO"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
