"""Provider benchmark: the OpenAI stages' concurrency against the one-call-at-a-time design.

The design this project replaces sent one request at a time: one chat completion per line,
then one speech request per line. Its time is the sum of the API latencies, so it grows by
N x (translate latency + speech latency). Batched, concurrent requests should leave the API
calls a small share of a job; this script measures how small, and what the rest of the
pipeline then costs.

Every run is a real job (``videodub.api.dub`` with ``transcribe=openai translate=openai
tts=openai``, ``cache=false``): the real align, clip writing, mix and mux all run. The API is
the loopback server (``videodub.testing.loopback.LoopbackServer``) with fixed latencies per
route. It runs in a child process, as a remote API would: its decoding and synthesis take
neither the job's interpreter lock nor its memory, so peak RSS is the pipeline's own. The input
is a WAV of N voiced bursts (a harmonic tone with a syllable-rate envelope) between silences;
the server labels voiced region k with line k of a script of distinct sentences.

For each design it prints the wall time next to the critical-path bound, the time the API
latencies and concurrency limits alone force (see ``bounds``), and splits the wall into the
part before the first chat request, the API span (first chat request to last speech answer)
and the part after it. Figures are medians over ``--repeat`` runs.

    python benchmarks/bench_providers.py [--segments 100 1000] [--profiles speed balanced quality]
                                         [--scale-profiles speed] [--repeat 1] [--json out.json]
                                         [--skip-sequential] [--translate-ms 50] [--tts-ms 100]
                                         [--rpm 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

# The sibling script (benchmarks/ is on sys.path): the same tables and competing-load figure.
from bench_pipeline import CompetingLoad, table

import videodub
from videodub.api import compose_job, dub
from videodub.model import STAGES
from videodub.machine import Machine

KEY_ENV = "VIDEODUB_BENCH_KEY"
# More overrides for every job (--override), e.g. mix.streaming=false for the two-pass mix.
EXTRA: list[str] = []
# What the one-call-at-a-time design measured on the 100-line job, and what it aimed for.
REFERENCE = {"wall_s": 17.28, "segments_per_s": 5.8, "target_s": 15.0}
SEQUENTIAL = ["profile=balanced", "translate.batch_size=1", "translate.max_in_flight=1",
              "tts.max_in_flight=1"]
WARMUP_SEGMENTS = 4

# The input: 16 kHz mono, like the speech track the pipeline sends for transcription.
RATE = 16_000
LEAD_IN_S = 0.5
BURST_S = (1.5, 3.0)
PAUSE_S = (0.6, 1.2)  # longer than the 0.5 s gap the server's VAD bridges inside a region
GOLDEN = (math.sqrt(5) - 1) / 2

SUBJECTS = ["The speaker", "Our new video", "This short talk", "The music", "My first example",
            "Your voice", "The next language", "Every good test", "The whole world", "A long day"]
PREDICATES = ["is about sound", "was dubbed today", "has a new voice", "looks very good",
              "can be translated", "will be transcribed", "is not long", "has people in it",
              "was made for you", "is here now"]
TAILS = ["", ", and that is all", " in the morning", " for everyone", " at this time",
         ", thank you", " with music", " from the start", " in our language", " every day"]


# -- the input --------------------------------------------------------------------------------
def _spread(k: int, offset: float, span: tuple[float, float]) -> float:
    """The k-th value of a low-discrepancy sequence over ``span``: varied, deterministic."""
    low, high = span
    return low + (high - low) * ((offset + k * GOLDEN) % 1.0)


def make_input(path: Path, n: int) -> float:
    """Write N voiced bursts separated by silences; returns the duration in seconds.

    An ``.m4a`` path gets AAC, like the audio of the videos people dub: the muxer copies
    that original track instead of encoding it a second time. Any other suffix gets WAV."""
    import soundfile

    from videodub.media import run_ffmpeg

    parts = [np.zeros(int(LEAD_IN_S * RATE), dtype=np.float32)]
    for k in range(n):
        t = np.arange(int(_spread(k, 0.0, BURST_S) * RATE)) / RATE
        f0 = _spread(k, 0.3, (100.0, 180.0))
        syllables = _spread(k, 0.6, (3.5, 5.0))
        tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
        # Dips between syllables stay loud enough to keep one region per burst.
        envelope = 0.35 + 0.65 * np.sin(np.pi * syllables * t) ** 2
        fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
        parts.append((0.2 * tone * envelope * fade).astype(np.float32))
        parts.append(np.zeros(int(_spread(k, 0.9, PAUSE_S) * RATE), dtype=np.float32))
    audio = np.concatenate(parts)
    wav = path.with_suffix(".wav")
    soundfile.write(str(wav), audio, RATE, subtype="PCM_16")
    if path.suffix == ".m4a":
        run_ffmpeg(["-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "96k", str(path)],
                   what="encoding the benchmark input")
        wav.unlink()
    return len(audio) / RATE


def sentences(n: int) -> list[str]:
    """N distinct English sentences (the pools give 1000; larger N repeats them)."""
    pools = (SUBJECTS, PREDICATES, TAILS)
    out = []
    for k in range(n):
        i = k % 1000
        out.append(f"{pools[0][i % 10]} {pools[1][i // 10 % 10]}{pools[2][i // 100]}.")
    return out


# -- the server, in its own process -----------------------------------------------------------
def _serve(conn: Connection, options: dict[str, Any]) -> None:
    """Child process: run a LoopbackServer and answer ``reset``/``records``/``stop``."""
    from videodub.testing.loopback import LoopbackServer

    server = LoopbackServer(**options)
    conn.send(server.start())
    try:
        while True:
            command = conn.recv()
            if command == "reset":
                server.reset()
                conn.send(None)
            elif command == "records":
                conn.send([(r.route, r.started, r.finished, r.status) for r in server.requests])
            else:
                break
    finally:
        server.stop()
        conn.close()


class ServerProcess:
    """The loopback server in a child process, driven over a pipe."""

    def __init__(self, **options: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, options),
                                         name="loopback-server", daemon=True)
        self._process.start()
        child.close()
        self.base_url: str = self._conn.recv()

    def reset(self) -> None:
        self._conn.send("reset")
        self._conn.recv()

    def cpu_s(self) -> float:
        """CPU seconds the server's process has used so far (it shares this machine's CPUs
        with the job, which a remote API would not)."""
        import psutil

        t = psutil.Process(self._process.pid).cpu_times()
        return t.user + t.system

    def records(self) -> list[tuple[str, float, float, int]]:
        """(route, started, finished, status) per request; times are time.monotonic()."""
        self._conn.send("records")
        return self._conn.recv()

    def close(self) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)
        self._conn.close()


# -- designs and bounds -----------------------------------------------------------------------
@dataclass(frozen=True)
class Design:
    name: str
    overrides: tuple[str, ...]


def designs(profiles: list[str], sequential: bool) -> list[Design]:
    chosen = [Design(f"profile={p}", (f"profile={p}",)) for p in profiles]
    return ([Design("sequential", tuple(SEQUENTIAL))] if sequential else []) + chosen


def job_overrides(design: Design, source: Path, base_url: str) -> list[str]:
    out = [f"input={source}", "target_lang=es", "cache=false"]
    for stage in ("transcribe", "translate", "tts"):
        out += [f"{stage}=openai", f"{stage}.base_url={base_url}", f"{stage}.api_key_env={KEY_ENV}"]
    return out + list(design.overrides) + EXTRA


def bounds(n: int, batch: int, translate_in_flight: int, tts_in_flight: int,
           translate_s: float, tts_s: float, rpm: int) -> dict[str, float]:
    """What the API latencies and limits alone force on N segments, in seconds.

    translate: ceil(ceil(N / batch) / in_flight) rounds of one latency each; tts likewise
    with one request per segment. Speech can start once the first batch is back, so the
    pipeline needs one translate latency plus the longer of the remaining translate rounds
    and all the tts rounds. An rpm limit on speech admits the server's full bucket (rpm
    requests) at once and then rpm / 60 per second.
    """
    translate = math.ceil(math.ceil(n / batch) / translate_in_flight) * translate_s
    tts = math.ceil(n / tts_in_flight) * tts_s
    pipeline = translate_s + max(translate - translate_s, tts)
    limited = translate_s + max(0, n - rpm) * 60.0 / rpm + tts_s if rpm else 0.0
    return {"translate_s": translate, "tts_s": tts, "pipeline_s": pipeline, "rpm_s": limited,
            "bound_s": max(pipeline, limited)}


# -- one run ----------------------------------------------------------------------------------
def run_once(design: Design, source: Path, n: int, server: ServerProcess, run_dir: Path,
             args: argparse.Namespace) -> dict[str, Any]:
    overrides = job_overrides(design, source, server.base_url)
    job = compose_job(overrides)
    server.reset()
    server_cpu = server.cpu_s()
    report = dub(overrides, run_dir, display="quiet").report
    ended = time.monotonic()
    server_cpu = server.cpu_s() - server_cpu
    # The runner's wall ends as the report is written, just before dub() returns.
    started = ended - report["wall_s"]
    records = server.records()
    chat = [r for r in records if r[0] == "chat"]
    speech = [r for r in records if r[0] == "speech"]
    api_start = min(r[1] for r in chat)
    api_end = max(r[2] for r in speech)
    stages = report["stages"]
    providers = report["providers"]
    got = report["job"]["segments"]["source"]
    if got != n:
        raise SystemExit(f"{design.name}: {got} segments transcribed instead of {n}")
    translate_opts, tts_opts = job.stages["translate"], job.stages["tts"]
    bound = bounds(n, translate_opts.batch_size,
                   min(translate_opts.max_in_flight, stages["translate"]["workers"]),
                   min(tts_opts.max_in_flight, stages["tts"]["workers"]),
                   args.translate_ms / 1000, args.tts_ms / 1000, args.rpm)
    return {
        "wall_s": report["wall_s"],
        "segments_per_s": n / report["wall_s"],
        "calls": {s: providers[s]["calls"] for s in ("transcribe", "translate", "tts")},
        "retries": sum(p["retries"] for p in providers.values()),
        "rate_limited_429": sum(p["rate_limited_429"] for p in providers.values()),
        "max_in_flight": {s: providers[s]["max_in_flight"] for s in ("translate", "tts")},
        "peak_rss_mb": report["peak_rss_mb"],
        "stage_wall_s": {s: stages[s]["wall_s"] for s in STAGES},
        "stage_cpu_s": {s: stages[s]["cpu_s"] for s in STAGES},
        "non_api_s": sum(stages[s]["wall_s"] for s in ("ingest", "mix", "mux")),
        "before_api_s": api_start - started,
        "api_span_s": api_end - api_start,
        "after_api_s": ended - api_end,
        "server_cpu_s": server_cpu,
        "batch_size": translate_opts.batch_size,
        **bound,
    }


def _median(values: list[Any]) -> Any:
    """The median; for counts, the lower middle value, so it stays a count."""
    if all(isinstance(v, int) for v in values):
        return statistics.median_low(values)
    return statistics.median(values)


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of every figure over repeated runs of one design; peak RSS is the maximum."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = {k: _median([r[key][k] for r in runs]) for k in value}
        else:
            out[key] = _median([r[key] for r in runs])
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return out


# -- printing ---------------------------------------------------------------------------------
def ratio(a: float, b: float | None, suffix: str = "") -> str:
    return f"{a / b:.1f}{suffix}" if b else "-"


def print_size(n: int, duration: float, results: dict[str, dict[str, Any]],
               sequential_s: float | None, predicted_s: float) -> None:
    print(f"\n{n} segments ({duration:.0f} s of audio)")
    rows = []
    for name, r in results.items():
        c = r["calls"]
        speedup = f"{sequential_s / r['wall_s']:.2f}x" if sequential_s else "-"
        rows.append([name, r["wall_s"], r["segments_per_s"],
                     f"{c['transcribe']}/{c['translate']}/{c['tts']}", r["retries"],
                     r["peak_rss_mb"], speedup, r["bound_s"], ratio(r["wall_s"], r["bound_s"])])
    print(table(["design", "wall s", "seg/s", "calls tr/tl/tts", "retries", "peak RSS MiB",
                 "speed-up vs seq", "bound s", "wall/bound"], rows))
    if sequential_s is None:
        print(f"sequential design not run at this size; predicted N x (translate + tts latency) "
              f"= {predicted_s:.1f} s")

    print("\nwhere the wall goes: before the first chat request | API span | after the last "
          "speech answer")
    sequential_span = results.get("sequential", {}).get("api_span_s")
    rows = [[name, r["before_api_s"], r["api_span_s"], r["bound_s"],
             ratio(r["api_span_s"], r["bound_s"]),
             ratio(sequential_span, r["api_span_s"], "x") if sequential_span else "-",
             r["after_api_s"], r["non_api_s"],
             f"{r['max_in_flight']['translate']}/{r['max_in_flight']['tts']}", r["rate_limited_429"]]
            for name, r in results.items()]
    print(table(["design", "before API s", "API span s", "span bound s", "span/bound",
                 "span speed-up vs seq", "after API s", "ingest+mix+mux s", "in flight tl/tts",
                 "429s"], rows))
    if any(r["rpm_s"] for r in results.values()):
        print("the bounds include the speech rpm limit; without it: " + ", ".join(
            f"{name} {r['pipeline_s']:.2f} s" for name, r in results.items()))

    print("\nper stage wall s (cpu s), from report.json; stages overlap, so walls do not add up")
    rows = [[name, *(f"{r['stage_wall_s'][s]:.2f} ({r['stage_cpu_s'][s]:.1f})" for s in STAGES)]
            for name, r in results.items()]
    print(table(["design", *STAGES], rows))
    cpus = Machine.detect().cpus
    print("the loopback API's own process, on the same CPUs as the job (a remote API would not "
          "be): " + ", ".join(f"{name} {r['server_cpu_s']:.1f} cpu s "
                              f"({r['server_cpu_s'] / (r['wall_s'] * cpus):.0%} of the machine "
                              f"over the job's wall)" for name, r in results.items()))


def print_scale(sizes: list[int], by_size: dict[int, dict[str, dict[str, Any]]],
                predicted: dict[int, float]) -> None:
    small, *larger = sizes
    print("\nhow time grows with N (the sequential design is not run at these sizes: its API "
          "calls alone take N x (translate + tts latency))")
    rows = []
    for n in larger:
        for name, r in by_size[n].items():
            base = by_size[small].get(name)
            rows.append([n, name, r["wall_s"], r["segments_per_s"],
                         f"{r['wall_s'] / base['wall_s']:.2f}" if base else "-",
                         r["api_span_s"], r["bound_s"], predicted[n],
                         ratio(predicted[n], r["api_span_s"], "x")])
    print(table(["N", "design", "wall s", "seg/s", f"wall / wall@{small}", "API span s",
                 "bound s", "seq API predicted s", "seq predicted / span"], rows))


# -- main -------------------------------------------------------------------------------------
def _names(items: list[str]) -> list[str]:
    return [p for item in items for p in item.split(",") if p]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from videodub.api import group_options

    known_profiles = group_options(["profile"])["profile"]

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", nargs="+", default=["100", "1000"],
                        help="job sizes in segments; the smallest runs the sequential design and "
                             "--profiles, larger ones --scale-profiles (default 100 1000)")
    parser.add_argument("--profiles", nargs="+", default=["speed", "balanced", "quality"],
                        help="profiles at the smallest size (space- or comma-separated)")
    parser.add_argument("--scale-profiles", nargs="+", default=["speed"],
                        help="profiles at the larger sizes (default speed)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per design; figures are medians")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="add to every job's overrides (e.g. mix.streaming=false)")
    parser.add_argument("--skip-sequential", action="store_true",
                        help="do not run the one-call-at-a-time design")
    parser.add_argument("--translate-ms", type=float, default=50.0, help="chat latency per call")
    parser.add_argument("--tts-ms", type=float, default=100.0, help="speech latency per call")
    parser.add_argument("--rpm", type=int, default=0,
                        help="server-side requests per minute on speech (0: none)")
    args = parser.parse_args(argv)
    EXTRA[:] = args.override
    args.profiles, args.scale_profiles = _names(args.profiles), _names(args.scale_profiles)
    unknown = sorted(set(args.profiles + args.scale_profiles) - set(known_profiles))
    if unknown:
        parser.error(f"unknown profile(s) {', '.join(unknown)}; choices: "
                     f"{', '.join(known_profiles)}")
    try:
        args.segments = sorted({int(s) for s in _names(args.segments)})
    except ValueError:
        parser.error("--segments takes whole numbers")
    if args.segments[0] < 1:
        parser.error("--segments must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.translate_ms < 0 or args.tts_ms < 0 or args.rpm < 0:
        parser.error("--translate-ms, --tts-ms and --rpm must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("videodub").setLevel(logging.ERROR)
    key = f"sk-bench-{secrets.token_hex(12)}"
    os.environ[KEY_ENV] = key

    machine = Machine.detect()
    print("videodub provider benchmark")
    print(f"machine: {machine.cpus} usable CPUs ({machine.cpu_reason}); Python "
          f"{platform.python_version()}, videodub {videodub.__version__}")
    print(f"loopback API (child process): chat {args.translate_ms:g} ms, speech {args.tts_ms:g} ms, "
          f"transcriptions 0 ms per call" + (f"; speech limited to {args.rpm} rpm" if args.rpm else ""))
    print(f"reference, the sequential design as first measured: {REFERENCE['wall_s']} s, "
          f"{REFERENCE['segments_per_s']} segments/s, target under {REFERENCE['target_s']:g} s "
          f"(100 segments); compare with the sequential run below")
    competing = CompetingLoad()
    server = ServerProcess(
        api_key=key, latency={"chat": args.translate_ms / 1000, "speech": args.tts_ms / 1000},
        rpm={"speech": args.rpm} if args.rpm else None, script=sentences(max(args.segments)))
    figures: dict[str, Any] = {"sizes": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="videodub-bench-") as tmp:
            root = Path(tmp)
            warm = root / "warmup.m4a"
            make_input(warm, WARMUP_SEGMENTS)
            t0 = time.perf_counter()
            run_once(designs(args.profiles[:1], False)[0], warm, WARMUP_SEGMENTS, server,
                     root / "warmup", args)
            print(f"warm-up (not timed): one {WARMUP_SEGMENTS}-segment job in "
                  f"{time.perf_counter() - t0:.1f} s; repeats: {args.repeat} per design (medians)")

            by_size: dict[int, dict[str, dict[str, Any]]] = {}
            predicted: dict[int, float] = {}
            for i, n in enumerate(args.segments):
                source = root / f"talk{n}.m4a"
                duration = make_input(source, n)
                predicted[n] = n * (args.translate_ms + args.tts_ms) / 1000
                chosen = designs(args.profiles if i == 0 else args.scale_profiles,
                                 i == 0 and not args.skip_sequential)
                results = {}
                for design in chosen:
                    runs = [run_once(design, source, n, server,
                                     root / "runs" / f"{n}-{design.name}-{r}", args)
                            for r in range(args.repeat)]
                    results[design.name] = median_run(runs)
                by_size[n] = results
                sequential = results.get("sequential", {}).get("wall_s")
                print_size(n, duration, results, sequential, predicted[n])
                figures["sizes"][str(n)] = {"audio_s": duration, "sequential_predicted_s":
                                            predicted[n], "designs": results}
            if len(args.segments) > 1:
                print_scale(args.segments, by_size, predicted)
    finally:
        server.close()

    share = competing.share()
    print(f"\nother processes used {share:.0%} of the CPUs while this ran"
          + ("; figures are inflated by the competition" if share > 0.1 else ""))
    if args.json:
        figures.update(machine={"usable_cpus": machine.cpus, "cpu_reason": machine.cpu_reason,
                                "python": platform.python_version(),
                                "videodub": videodub.__version__},
                       latency_ms={"translate": args.translate_ms, "tts": args.tts_ms},
                       rpm=args.rpm, repeat=args.repeat, reference=REFERENCE,
                       competing_cpu_share=share)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
