"""What reading a surround original's centre apart costs ingest.

Generates a 5.1 AAC track (a talk in the centre channel, noise and tones in the others) of
``--minutes`` and extracts it the way ingest does, alternating: the 16 kHz speech and the
stereo mixing track alone (the baseline), and the same with the centre written apart and its
share of the other channels measured (``extract.WavOut(..., centre=True)``), and that with the
original in its own channels written too, as for a surround dub (``own_layout=True``). Prints
the CPU seconds of each (medians over ``--repeat`` rounds) and their ratios, and the share
found.

With ``--dub`` it also dubs the track (re-voiced in English, the speed profile), alternating
a 5.1 dub (``mix.surround=true``) with a stereo one (``false``): job wall, the mix's and mux's
CPU, peak memory and the dub track's size (medians over ``--repeat`` pairs).

    .venv/bin/python benchmarks/bench_surround.py [--minutes 5] [--repeat 5] [--dub]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
from pathlib import Path

import numpy as np


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def surround_talk(folder: Path, minutes: float) -> Path:
    import soundfile
    import soxr

    from videodub.media import run_ffmpeg
    from videodub.testing.samples import ENGLISH_TALK, speak

    rate = 48000
    pieces = []
    for text, _ in ENGLISH_TALK:
        voice, voice_rate = speak(text)
        pieces += [soxr.resample(voice, voice_rate, rate), np.zeros(rate, np.float32)]
    talk = np.concatenate(pieces)
    n = int(minutes * 60 * rate)
    centre = np.tile(talk, -(-n // len(talk)))[:n]
    t = np.arange(n) / rate
    rng = np.random.default_rng(1)
    fl = 0.05 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(n)
    fr = 0.05 * np.sin(2 * np.pi * 330 * t) + 0.02 * rng.standard_normal(n)
    wav, out = folder / "talk51.wav", folder / "talk51.m4a"
    channels = np.stack([fl, fr, centre, np.zeros(n), fl / 2, fr / 2], 1).astype(np.float32)
    soundfile.write(str(wav), channels, rate, subtype="PCM_16")
    run_ffmpeg(["-v", "error", "-i", str(wav), "-af", "aformat=channel_layouts=5.1",
                "-c:a", "aac", "-b:a", "384k", str(out)])
    wav.unlink()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dub", action="store_true", help="also dub it in 5.1 and in stereo")
    args = ap.parse_args()
    from videodub.extract import WavOut, decode_to_wavs

    with tempfile.TemporaryDirectory(prefix="bench-surround-") as tmp:
        folder = Path(tmp)
        source = surround_talk(folder, args.minutes)
        base = [WavOut(folder / "speech.wav", 16000, 1), WavOut(folder / "full.wav", 48000, 2)]
        centre = WavOut(folder / "centre.wav", 48000, 1, centre=True)
        own = WavOut(folder / "own.wav", 48000, 6, own_layout=True)
        variants = {"stereo only": base, "with the centre": [*base, centre],
                    "and all channels": [*base, centre, own]}
        decode_to_wavs(source, base, "warm-up")
        runs: dict[str, list[float]] = {name: [] for name in variants}
        share = None
        for _ in range(args.repeat):
            for name, outputs in variants.items():
                start = cpu()
                decoded = decode_to_wavs(source, outputs, name)
                runs[name].append(cpu() - start)
                share = decoded.centre_share if decoded.centre_share is not None else share
        print(f"{args.minutes:g} min of 5.1 AAC, median of {args.repeat} alternating runs:")
        medians = {name: statistics.median(v) for name, v in runs.items()}
        for name, value in medians.items():
            print(f"  {name:16} {value:6.3f} CPU-s  ({value / args.minutes:.3f} a minute), "
                  f"{value / medians['stereo only']:.2f} of stereo only")
        print(f"  the centre's share of the other channels: {share}")
        if args.dub:
            dubs(source, folder, args.repeat)


def dubs(source: Path, folder: Path, repeat: int) -> None:
    """The same track dubbed in 5.1 and in stereo, alternating."""
    import json

    from videodub.api import dub

    figures: dict[str, list[dict]] = {"5.1": [], "stereo": []}
    for i in range(repeat + 1):  # the first pair warms up
        for layout in figures:
            run_dir = folder / f"dub-{layout}-{i}"
            dub([f"input={source}", "target_lang=en", "translate=none", "profile=speed",
                 "cache=false", "runner.display=quiet", "perf.history=null", "keep_work=true",
                 f"mix.surround={'true' if layout == '5.1' else 'false'}"], run_dir=run_dir)
            report = json.loads((run_dir / "report.json").read_text())
            stages = report["stages"]
            track = run_dir / "work" / "dub_mix.m4a"
            if i:
                figures[layout].append({
                    "wall s": report["wall_s"], "mix cpu s": stages["mix"]["cpu_s"],
                    "mux cpu s": stages["mux"]["cpu_s"], "ingest cpu s": stages["ingest"]["cpu_s"],
                    "peak RSS MiB": report["peak_rss_mb"],
                    "dub track MiB": track.stat().st_size / 2**20 if track.exists() else 0.0})
    print(f"\ndubbed (re-voiced in English, speed profile), median of {repeat} alternating pairs:")
    keys = list(figures["5.1"][0])
    print("  " + " ".join(f"{k:>14}" for k in ["dub", *keys]))
    for layout, runs in figures.items():
        print("  " + f"{layout:>14} " + " ".join(
            f"{statistics.median(r[k] for r in runs):14.3f}" for k in keys))


if __name__ == "__main__":
    main()
