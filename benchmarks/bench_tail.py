"""The mix and the dub track's encode, streaming against two-pass, in one run.

Both designs get the same inputs: ``--seconds`` of stereo background at 48 kHz and one 2.8 s
clip (24 kHz, as speech services send) every 3.15 s, all available at once. Two-pass
(``mix.streaming=false``) mixes, measures and renders a WAV that mux then encodes to AAC;
streaming mixes, limits, measures and encodes in one go, and mux copies. Each design runs
``--repeat`` times, alternating, so both see the same load; it prints wall and CPU (this
process and its ffmpeg children) of mix + encode, and the ratios streaming / two-pass.

    python benchmarks/bench_tail.py [--seconds 315] [--repeat 2]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def one_run(root: Path, seconds: int, streaming: bool, k: int) -> tuple[float, float]:
    import soundfile

    from videodub.builtin.mix_duck import DuckMixer, DuckMixOptions
    from videodub.builtin.mux_ffmpeg import FfmpegMuxOptions, FfmpegMuxer, ENCODED_SUFFIX
    from videodub.config import Effort, implementation_config
    from videodub.media import run_ffmpeg
    from videodub.model import JobContext, MediaInfo, Segment
    from videodub.run.tail import connect_tail

    rate = 48000
    full, clip = root / "original.wav", root / "clip.wav"
    if not full.exists():
        noise = 0.05 * np.random.default_rng(0).standard_normal((seconds * rate, 2))
        soundfile.write(str(full), noise.astype(np.float32), rate, subtype="PCM_16")
        voice = 0.3 * np.sin(np.arange(int(2.8 * 24000)) / 7)
        soundfile.write(str(clip), voice.astype(np.float32), 24000)
    segments = [Segment(id=i, start=i * 3.15, end=i * 3.15 + 3.0, target_text="x",
                        slot_start=i * 3.15, slot_end=i * 3.15 + 3.0, audio_path=str(clip))
                for i in range(int(seconds / 3.15))]
    media = MediaInfo(path=full, duration=float(seconds), has_video=False, audio_streams=1,
                      audio_codec="pcm_s16le", video_codec=None, speech_audio=full,
                      full_audio=full, sample_rate=rate)
    mixer = DuckMixer(implementation_config("mix", "duck", DuckMixOptions)(
        streaming=streaming, effort=Effort.low))
    muxer = FfmpegMuxer(implementation_config("mux", "ffmpeg", FfmpegMuxOptions)(effort=Effort.low))
    connect_tail({"mix": mixer, "mux": muxer})
    ctx = JobContext(root / f"run-{streaming}-{k}", "es", "en")
    t0, c0 = time.monotonic(), cpu_s()
    out = mixer.mix(segments, media, ctx)
    if out.suffix != ENCODED_SUFFIX:  # what mux does with a WAV: the AAC encode
        args = [*muxer.dub_encoding().args]
        run_ffmpeg(["-v", "error", "-i", str(out), *args, str(root / f"dub-{k}.m4a")], ctx)
    return time.monotonic() - t0, cpu_s() - c0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=315)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="videodub-tail-") as tmp:
        root = Path(tmp)
        runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for k in range(args.repeat):
            for streaming in (True, False):
                runs[streaming].append(one_run(root, args.seconds, streaming, k))
    print(f"mix + dub encode of {args.seconds} s ({int(args.seconds / 3.15)} clips), "
          f"median of {args.repeat} alternating runs")
    med = {s: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r))
           for s, r in runs.items()}
    for streaming, label in ((False, "two-pass, then encode"), (True, "streaming")):
        wall, cpu = med[streaming]
        print(f"  {label:<22} wall {wall:7.2f} s   cpu {cpu:7.2f} s")
    print(f"  streaming / two-pass   wall {med[True][0] / med[False][0]:.2f}   "
          f"cpu {med[True][1] / med[False][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
