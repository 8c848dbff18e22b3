"""Pipeline benchmark: where the time of a dubbing job goes, per profile.

Generates a talk (English espeak-ng speech over an ffmpeg test pattern, with its Spanish
translation as a subtitle file), dubs it into Spanish with each profile, and prints:

- per-stage wall time, CPU time and workers, from the run's report.json;
- the whole job's wall time and real-time factor (wall / media duration);
- the transcribe stage alone on the same 16 kHz audio, and whole-job wall / transcribe-alone
  (stages stream behind transcription, so this ratio shows the serial time they add);
- the mix and mux stages alone on the run's own files, and the ffmpeg work inside them;
- ``python -m videodub --help`` against ``python -c pass``.

With ``--models MODEL:LANG ...`` it measures only transcription instead: each Whisper model
alone (``bundled``, ``base``...) on the talk spoken in LANG (``en``, or ``es``: the Spanish
translations spoken), the language not given, so a multilingual model detects it.

Everything runs offline in a temporary directory. Figures are medians over ``--repeat`` runs.

    python benchmarks/bench_pipeline.py [--duration 60] [--profiles speed balanced quality]
                                        [--repeat 1] [--json figures.json]
    python benchmarks/bench_pipeline.py --models bundled:en base:en base:es [--duration 60]
                                        [--repeat 1] [--json figures.json]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import videodub
from videodub.api import compose_job, dub
from videodub.builtin.mux_ffmpeg import dub_bitrate
from videodub.model import STAGES, JobContext, MediaInfo
from videodub.machine import Machine
from videodub.plugins import get_plugin_manager

# Sixteen lines of a short talk and their Spanish translations: varied lengths and wording so
# the recogniser, the subtitle matching and the time fitting all have real work to do.
SENTENCES = [
    ("Good morning, and thank you all for coming today.",
     "Buenos días, y gracias a todos por venir hoy."),
    ("This talk is about the history of the bicycle.",
     "Esta charla trata sobre la historia de la bicicleta."),
    ("The first bicycles had no pedals at all.",
     "Las primeras bicicletas no tenían pedales."),
    ("Riders pushed them along with their feet.",
     "Los ciclistas las empujaban con los pies."),
    ("Later, engineers added pedals to the front wheel.",
     "Más tarde, los ingenieros pusieron pedales en la rueda delantera."),
    ("That is why the front wheels grew so large.",
     "Por eso las ruedas delanteras crecieron tanto."),
    ("Those tall machines were fast but quite dangerous.",
     "Esas máquinas altas eran rápidas pero bastante peligrosas."),
    ("The chain changed everything for ordinary people.",
     "La cadena lo cambió todo para la gente común."),
    ("Both wheels could finally be the same size.",
     "Por fin las dos ruedas podían ser del mismo tamaño."),
    ("Air-filled tyres made long rides far more comfortable.",
     "Los neumáticos con aire hicieron los viajes largos mucho más cómodos."),
    ("Soon, millions of workers rode to their jobs.",
     "Pronto, millones de trabajadores iban en bicicleta al trabajo."),
    ("Women gained a new kind of freedom on two wheels.",
     "Las mujeres ganaron una nueva libertad sobre dos ruedas."),
    ("Today, cities are building safer lanes for cyclists.",
     "Hoy, las ciudades construyen carriles más seguros para ciclistas."),
    ("Electric motors now help riders climb steep hills.",
     "Los motores eléctricos ayudan ahora a subir cuestas empinadas."),
    ("Please ask me any questions after the break.",
     "Por favor, háganme preguntas después del descanso."),
    ("Thank you very much for listening.",
     "Muchas gracias por escuchar."),
]
LEAD_IN = 1.0
PAUSE = 1.0  # one second between lines: all sixteen fit in a minute, VAD still splits them
WARMUP_DURATION = 10.0
CLI_RUNS = 5


# -- helpers ----------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain aligned table: numeric columns right-aligned, text columns left-aligned."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [bool(rows) and all(isinstance(row[i], (int, float)) for row in rows)
               for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, CPU s of this process and its finished children, result)."""
    def cpu() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    c0, t0 = cpu(), time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, cpu() - c0, result


# -- the media --------------------------------------------------------------------------------
def script_lines(duration: float, lang: str = "en") -> list[tuple[str, str]]:
    """As many lines as fit in ``duration`` (cycling through the sentences), one second spare,
    as (spoken, translation): English and its Spanish, or for ``lang="es"`` the other way."""
    from videodub.testing.samples import speak

    lengths: dict[str, float] = {}
    lines: list[tuple[str, str]] = []
    t = LEAD_IN
    while True:
        line = SENTENCES[len(lines) % len(SENTENCES)]
        spoken, translation = line if lang == "en" else line[::-1]
        if spoken not in lengths:
            audio, rate = speak(spoken, lang)
            lengths[spoken] = len(audio) / rate
        if t + lengths[spoken] > duration - 1.0:
            break
        lines.append((spoken, translation))
        t += lengths[spoken] + PAUSE
    if not lines:
        raise SystemExit(f"--duration {duration:g} is too short for even one line")
    return lines


def build_talk(folder: Path, duration: float, lang: str = "en") -> tuple[Path, Path, int]:
    from videodub.testing.samples import make_talk, write_translation_srt

    video = folder / "talk.mp4"
    script = make_talk(video, script_lines(duration, lang), lang=lang, lead_in=LEAD_IN,
                       pause=PAUSE, min_duration=duration)
    srt = write_translation_srt(script, folder / "talk.es.given.srt")
    return video, srt, len(script)


# More overrides for every job (--override), e.g. mix.streaming=false for the two-pass mix.
EXTRA: list[str] = []


def overrides(video: Path, srt: Path, profile: str) -> list[str]:
    # keep_work leaves the run's 16 kHz audio, clips and mix for the stage-alone timings; the
    # work directory is removed after the job's wall time is taken, so it does not change it.
    return [f"input={video}", "target_lang=es", "translate=subtitles", f"translate.file={srt}",
            f"profile={profile}", "cache=false", "keep_work=true", *EXTRA]


def ingested(video: Path, folder: Path, profile: str) -> MediaInfo:
    """A real MediaInfo for the talk (probe and extraction, not timed)."""
    from videodub.plugins import collect

    job = compose_job([f"input={video}", "target_lang=es", f"profile={profile}"])
    opts = job.stages["ingest"]
    ingester = collect().get("ingest", opts.impl).create(opts)
    return ingester.ingest(video, JobContext(folder, "es", None))


# -- measurements -----------------------------------------------------------------------------
def preload_model(profile: str, video: Path, srt: Path) -> float:
    """Load the Whisper model the profile's transcriber will use; returns the load time."""
    from videodub.builtin import transcribe_faster_whisper as fw

    opts = compose_job(overrides(video, srt, profile)).stages["transcribe"]
    name = opts.model
    if name in ("auto", fw.BUNDLED):
        # model=auto resolves to the bundled model unless effort=high finds the larger one;
        # offline it never does, and that (fast) attempt is part of the stage in both timings.
        name = fw.BUNDLED
    threads = opts.cpu_threads or Machine.detect().cpus
    wall, _, _ = timed(lambda: fw.load_model(name, opts.compute_type, threads))
    return wall


def transcribe_alone(profile: str, video: Path, srt: Path, media: MediaInfo,
                     folder: Path) -> dict[str, float]:
    """The profile's transcriber, by itself, over the job's 16 kHz audio."""
    from videodub.plugins import collect

    opts = compose_job(overrides(video, srt, profile)).stages["transcribe"]
    transcriber = collect().get("transcribe", opts.impl).create(opts)
    ctx = JobContext(folder, "es", None)
    wall, cpu, segments = timed(lambda: list(transcriber.transcribe(media, ctx)))
    return {"wall_s": wall, "cpu_s": cpu, "segments": len(segments)}


def model_alone(spec: str, duration: float, folder: Path, repeat: int) -> dict[str, Any]:
    """Whisper model MODEL (``spec`` is MODEL:LANG) by itself on a talk spoken in LANG, the
    language not given, with the default profile's decoding; the model is loaded (and timed)
    first, so the transcription's time is the recognition alone (median of ``repeat``)."""
    from videodub.builtin import transcribe_faster_whisper as fw
    from videodub.plugins import collect
    from videodub.whisper_models import model_path

    name, lang = spec.split(":")
    video, _, n_lines = build_talk(folder, duration, lang)
    media = ingested(video, folder, "balanced")
    opts = compose_job([f"input={video}", "target_lang=en", f"transcribe.model={name}",
                        "transcribe.download=false"]).stages["transcribe"]
    threads = opts.cpu_threads or Machine.detect().cpus
    path = name if name == fw.BUNDLED else model_path(name, download=False)
    load_s, _, _ = timed(lambda: fw.load_model(path, opts.compute_type, threads))
    transcriber = collect().get("transcribe", opts.impl).create(opts)
    runs = []
    for _ in range(repeat):
        ctx = JobContext(folder, "en", None)
        runs.append((*timed(lambda: list(transcriber.transcribe(media, ctx))), ctx))
    wall, cpu = median([r[0] for r in runs]), median([r[1] for r in runs])
    segments, ctx = runs[0][2], runs[0][3]
    return {"model": name, "spoken": lang, "lines": n_lines, "media_s": media.duration,
            "load_s": load_s, "wall_s": wall, "cpu_s": cpu, "rtf": wall / media.duration,
            "repeat": repeat, "segments": len(segments), "language": ctx.source_lang,
            "note": next(n for n in ctx.notes if n.startswith("transcribe: model "))}


def print_models(rows: list[dict[str, Any]]) -> None:
    print(f"\ntranscription alone, per model (language not given; the balanced profile's beam 2; "
          f"median of {rows[0]['repeat']})")
    print(table(["model", "spoken", "media s", "load s", "wall s", "RTF (wall/media)", "cpu s",
                 "segments", "language"],
                [[r["model"], r["spoken"], r["media_s"], r["load_s"], r["wall_s"], r["rtf"],
                  r["cpu_s"], r["segments"], r["language"]] for r in rows]))
    print("load s: 0 where an earlier row loaded the same model (kept loaded in the process)")
    for r in rows:
        print(f"note ({r['model']}, {r['spoken']}): {r['note']}")


def later_stages_alone(profile: str, video: Path, srt: Path, media: MediaInfo,
                       result: Any, run_dir: Path, folder: Path) -> dict[str, float]:
    """mix and mux by themselves on the run's own clips, mix and subtitles (nothing waits)."""
    from videodub.plugins import collect

    job = compose_job(overrides(video, srt, profile))
    registry = collect()
    ctx = JobContext(folder, "es", result.report["job"]["source_lang"])
    mix_opts, mux_opts = job.stages["mix"], job.stages["mux"]
    mixer = registry.get("mix", mix_opts.impl).create(mix_opts)
    muxer = registry.get("mux", mux_opts.impl).create(mux_opts)
    from videodub.run.tail import connect_tail

    connect_tail({"mix": mixer, "mux": muxer})  # as the runner does
    segments = copy.deepcopy(result.segments)
    mix_wall, mix_cpu, mixed = timed(lambda: mixer.mix(segments, media, ctx))
    subtitles = run_dir / result.report["outputs"]["target_srt"]
    mux_wall, mux_cpu, _ = timed(
        lambda: muxer.mux(media, mixed, subtitles, folder / "alone.mp4", ctx))
    return {"mix_wall_s": mix_wall, "mix_cpu_s": mix_cpu,
            "mux_wall_s": mux_wall, "mux_cpu_s": mux_cpu}


def ffmpeg_parts(mixed: Path, speech: Path, original: Path, folder: Path,
                 job: Any) -> dict[str, float]:
    """The ffmpeg commands that dominate mix and mux, each alone, with faster alternatives."""
    from videodub.media import run_ffmpeg

    mix, mux = job.stages["mix"], job.stages["mux"]
    # loudnorm also takes a loudness-range target (the mixer has none): 11 LU.
    target = f"I={mix.loudness}:TP={mix.true_peak}:LRA=11"
    both = ["-i", str(original), "-i", str(speech)]
    amix = "[0:a][1:a]amix=inputs=2:duration=first:normalize=0"
    commands = {
        # Reading and mixing the two tracks, without loudness work: the floor of the mix render.
        "amix_only": ["-v", "error", *both, "-filter_complex", f"{amix}[out]", "-map", "[out]",
                      "-f", "null", "-"],
        # One pass of loudnorm as the mixer runs it: dynamic mode works at 192 kHz.
        "loudnorm_pass": ["-v", "error", "-i", str(mixed), "-af",
                          f"loudnorm={target}:print_format=json", "-f", "null", "-"],
        # The same measurements (I, LRA, threshold, true peak) from ebur128.
        "ebur128_measure": ["-v", "error", "-i", str(mixed), "-af",
                            "ebur128=peak=true:framelog=quiet", "-f", "null", "-"],
        # A linear gain with a peak limiter, the render once the loudness is known.
        "gain_limiter": ["-v", "error", "-i", str(mixed), "-af",
                         "volume=1.0dB,alimiter=limit=0.84:level=false", "-c:a", "pcm_s16le",
                         str(folder / "gain.wav")],
        # The dub track's AAC encoding, the bulk of the mux.
        "aac_encode": ["-v", "error", "-i", str(mixed), "-c:a", "aac", "-b:a",
                       dub_bitrate(mux), str(folder / "dub.m4a")],
        "aac_encode_fast": ["-v", "error", "-i", str(mixed), "-c:a", "aac", "-aac_coder",
                            "fast", "-b:a", dub_bitrate(mux), str(folder / "dub_fast.m4a")],
    }
    if not speech.exists():  # the streaming mix (the default) writes no speech track
        del commands["amix_only"]
    return {name: timed(lambda a=args: run_ffmpeg(a, what=name))[0]
            for name, args in commands.items()}


def cli_startup(folder: Path, runs: int = CLI_RUNS) -> dict[str, Any]:
    """Median wall time of ``python -m videodub --help`` and of ``python -c pass``."""
    commands = {"baseline": [sys.executable, "-c", "pass"],
                "help": [sys.executable, "-m", "videodub", "--help"]}
    times: dict[str, list[float]] = {k: [] for k in commands}
    for name, cmd in commands.items():
        # One untimed run first, so both start from a warm page cache and compiled bytecode.
        subprocess.run(cmd, cwd=folder, stdout=subprocess.DEVNULL, check=True)
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=folder, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - t0)
    base, help_ = median(times["baseline"]), median(times["help"])
    return {"runs": runs, "baseline_s": base, "help_s": help_, "ratio": help_ / base,
            "extra_s": help_ - base, "samples": times}


# -- the report -------------------------------------------------------------------------------
def after_transcription(report: dict[str, Any]) -> float:
    """The job's wall after the transcribe stage ended (from the stages' timeline)."""
    st = report["stages"]
    if "end_s" in st["transcribe"]:
        return report["wall_s"] - st["transcribe"]["end_s"]
    # Reports of older versions: ingest, then transcribe.
    return report["wall_s"] - st["ingest"]["wall_s"] - st["transcribe"]["wall_s"]


class TailCpu:
    """The CPU the job takes between the end of the transcribe stage and the end of the mix
    (its threads and every child process: the limiter's ffmpeg, espeak-ng), from the
    ``stage_finished`` hook: how many CPUs the work after recognition keeps busy."""

    def __init__(self) -> None:
        self.marks: dict[str, tuple[float, float]] = {}

    @staticmethod
    def _cpu() -> float:
        import resource

        import psutil

        own = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
        for child in psutil.Process().children(recursive=True):  # still running
            try:
                t = child.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    @videodub.hookimpl
    def stage_finished(self, job: Any, stage: str, stats: Any) -> None:
        if stage in ("transcribe", "mix"):
            self.marks[stage] = (time.monotonic(), self._cpu())

    def take(self) -> dict[str, float]:
        """Wall and CPU seconds from transcribe's end to mix's end in the last job."""
        (t0, c0), (t1, c1) = self.marks.pop("transcribe"), self.marks.pop("mix")
        return {"wall_s": t1 - t0, "cpu_s": c1 - c0}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeated runs of one profile."""
    first = runs[0]["report"]
    stages = {}
    for stage in STAGES:
        stages[stage] = {
            "impl": first["stages"][stage]["impl"],
            "wall_s": median([r["report"]["stages"][stage]["wall_s"] for r in runs]),
            "cpu_s": median([r["report"]["stages"][stage]["cpu_s"] for r in runs]),
            "workers": first["stages"][stage]["workers"],
            "items": first["stages"][stage]["items"],
        }
    wall = median([r["report"]["wall_s"] for r in runs])
    alone = median([r["transcribe_alone"]["wall_s"] for r in runs])
    duration = first["job"]["media_duration_s"]
    later = {k: median([r["later_alone"][k] for r in runs]) for k in runs[0]["later_alone"]}
    return {
        "media_duration_s": duration,
        "wall_s": wall,
        "realtime_factor": wall / duration,
        "cpu_s": median([r["report"]["cpu_s"] for r in runs]),
        "peak_rss_mb": max(r["report"]["peak_rss_mb"] for r in runs),
        "segments": first["job"]["segments"],
        "stages": stages,
        "transcribe_alone_s": alone,
        "transcribe_alone_cpu_s": median([r["transcribe_alone"]["cpu_s"] for r in runs]),
        "transcribe_alone_segments": runs[0]["transcribe_alone"]["segments"],
        "job_over_transcribe": wall / alone,
        # Each run's job against the transcription alone measured right after it: how much
        # the ratio moves from run to run on this machine.
        "job_over_transcribe_runs": [r["report"]["wall_s"] / r["transcribe_alone"]["wall_s"]
                                     for r in runs],
        # Everything after the transcribe stage ended is what the later stages add beyond
        # transcription (ingest and transcribe overlap: recognition starts on the speech
        # while the rest is extracted).
        "after_transcription_s": median([after_transcription(r["report"]) for r in runs]),
        # CPUs busy from transcribe's end to mix's end: near the machine's count, the tail is
        # bound by the CPU its work needs, not by waiting.
        "tail_cpus": median([r["tail"]["cpu_s"] / max(r["tail"]["wall_s"], 1e-9)
                             for r in runs]),
        "tail_cpu_s": median([r["tail"]["cpu_s"] for r in runs]),
        "later_alone": later,
        "notes": first["notes"],
    }


def print_profile(name: str, s: dict[str, Any]) -> None:
    print(f"\nprofile {name}: per stage (from report.json; stages overlap, walls do not add up)")
    rows = [[st, v["impl"], v["wall_s"], v["cpu_s"], v["workers"], v["items"]]
            for st, v in s["stages"].items()]
    print(table(["stage", "impl", "wall s", "cpu s", "workers", "items"], rows))
    by_wall = max(s["stages"].items(), key=lambda kv: kv[1]["wall_s"])
    by_cpu = max(s["stages"].items(), key=lambda kv: kv[1]["cpu_s"])
    print(f"dominant stage: {by_wall[0]} by wall ({by_wall[1]['wall_s']:.2f} s), "
          f"{by_cpu[0]} by CPU ({by_cpu[1]['cpu_s']:.2f} s)")
    for note in s["notes"]:
        print(f"note: {note}")


class CompetingLoad:
    """CPU time other processes take while the benchmark runs: noise in every wall time."""

    def __init__(self) -> None:
        import psutil

        # System-wide counters cover every CPU, so the capacity is every CPU too.
        self.cpus = psutil.cpu_count() or 1
        self.start = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float]:
        import psutil

        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)
        own = os.times()
        # Every child this benchmark starts (ffmpeg, the CLI runs) is waited for, so its CPU
        # time is in the children's counters.
        mine = own.user + own.system + own.children_user + own.children_system
        return busy, mine, time.monotonic()

    def share(self) -> float:
        """Fraction of the machine's CPU capacity used by others since construction."""
        busy, mine, now = self._now()
        others = (busy - self.start[0]) - (mine - self.start[1])
        return max(0.0, others) / max((now - self.start[2]) * self.cpus, 1e-9)


def spread(values: list[float]) -> str:
    """``min–max`` of a few ratios (one value when there is one)."""
    low, high = min(values), max(values)
    return f"{low:.3f}" if len(values) == 1 else f"{low:.3f}–{high:.3f}"


def print_summary(results: dict[str, dict[str, Any]]) -> None:
    print("\nwhole job")
    rows = [[p, s["media_duration_s"], s["wall_s"], s["realtime_factor"], s["cpu_s"],
             s["peak_rss_mb"], f"{s['segments']['source']}/{s['segments']['target']}"]
            for p, s in results.items()]
    print(table(["profile", "media s", "wall s", "RTF (wall/media)", "cpu s", "peak RSS MiB",
                 "segments src/dub"], rows))

    print("\ntranscription: the stage alone vs the whole job")
    rows = [[p, s["stages"]["transcribe"]["wall_s"], s["transcribe_alone_s"],
             s["transcribe_alone_cpu_s"], s["wall_s"], s["job_over_transcribe"],
             spread(s["job_over_transcribe_runs"]), s["after_transcription_s"],
             s["tail_cpu_s"], s["tail_cpus"]] for p, s in results.items()]
    print(table(["profile", "in job s", "alone s", "alone cpu s", "job wall s", "job/alone",
                 "job/alone per run", "after transcription s", "cpu s to mix end",
                 "CPUs busy"], rows))
    print("alone: the profile's transcriber over the job's 16 kHz audio by itself, model "
          "already loaded.\njob/alone: the later stages stream behind transcription, so this "
          "should stay near 1;\nwhat exceeds it is serial work after the last line is "
          "recognised (see the next table).\njob/alone per run: the lowest and highest of "
          "each run's own ratio (its job against the transcription alone run right after it).\n"
          "cpu s to mix end, CPUs busy: the CPU the job (threads and child processes) took from "
          "transcribe's end to mix's end,\nand that over the same wall: near the machine's "
          "count, the tail is CPU-bound, not waiting.")

    print("\nafter transcription: mix and mux alone on the run's own files")
    rows = []
    for p, s in results.items():
        later = s["later_alone"]
        share = (later["mix_wall_s"] + later["mux_wall_s"]) / s["wall_s"]
        rows.append([p, s["stages"]["mix"]["wall_s"], later["mix_wall_s"], later["mix_cpu_s"],
                     s["stages"]["mux"]["wall_s"], later["mux_wall_s"], later["mux_cpu_s"],
                     f"{share:.0%}"])
    print(table(["profile", "mix in job s", "mix alone s", "mix alone cpu s", "mux in job s",
                 "mux alone s", "mux alone cpu s", "mix+mux alone / job"], rows))


FFMPEG_LABELS = {
    "amix_only": "read + amix both tracks, no loudness work",
    "loudnorm_pass": "one loudnorm pass (dynamic mode, 192 kHz)",
    "ebur128_measure": "ebur128 measurement (I, LRA, true peak)",
    "gain_limiter": "linear gain + alimiter render",
    "aac_encode": "AAC encode of the dub track (mux)",
    "aac_encode_fast": "same with -aac_coder fast",
}


def print_ffmpeg_parts(parts: dict[str, float], profile: str, duration: float) -> None:
    print(f"\nffmpeg inside mix and mux, each command alone ({profile} run's files, "
          f"{duration:.0f} s of 48 kHz stereo)")
    rows = [[FFMPEG_LABELS[k], v, duration / v] for k, v in parts.items()]
    print(table(["command", "wall s", "x realtime"], rows))


def print_cli(cli: dict[str, Any]) -> None:
    print(f"\n`python -m videodub --help` (median of {cli['runs']} runs after one untimed run)")
    print(table(["command", "median s"], [["python -c pass", cli["baseline_s"]],
                                         ["python -m videodub --help", cli["help_s"]]]))
    print(f"--help takes {cli['ratio']:.1f}x the interpreter's start-up "
          f"(+{cli['extra_s']:.2f} s)")


def measure_models(specs: list[str], duration: float, repeat: int, competing: CompetingLoad,
                   json_path: Path | None) -> int:
    """``--models``: the transcription-alone table, one talk per model and language."""
    with tempfile.TemporaryDirectory(prefix="videodub-bench-") as tmp:
        rows = [model_alone(spec, duration, Path(tmp) / f"model{i}", repeat)
                for i, spec in enumerate(specs)]
    print_models(rows)
    share = competing.share()
    print(f"\nother processes used {share:.0%} of the CPUs while this ran"
          + ("; figures are inflated by the competition" if share > 0.1 else ""))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"models": rows, "competing_cpu_share": share},
                                        indent=2) + "\n", encoding="utf-8")
        print(f"\nfigures written to {json_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from videodub.api import group_options

    known_profiles = group_options(["profile"])["profile"]

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0,
                        help="length of the generated talk, seconds (default 60)")
    parser.add_argument("--profiles", nargs="+", default=["speed", "balanced", "quality"],
                        help="profiles to run (space- or comma-separated)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per profile; figures are medians (default 1)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="add to every job's overrides (e.g. mix.streaming=false)")
    parser.add_argument("--models", nargs="+", metavar="MODEL:LANG",
                        help="measure only transcription: each Whisper model on the talk "
                             "spoken in LANG (en or es), e.g. bundled:en base:es")
    args = parser.parse_args(argv)
    bad = [m for m in args.models or [] if not re.fullmatch(r"[^:]+:(en|es)", m)]
    if bad:
        parser.error(f"--models takes MODEL:LANG with LANG en or es, got {', '.join(bad)}")
    EXTRA[:] = args.override
    # The quality profile asks for the larger "small" Whisper model and falls back to the
    # bundled tiny.en when it cannot be fetched. Offline mode makes that fallback immediate
    # instead of depending on how the machine's network fails. huggingface_hub reads it when
    # first imported, which happens only when a model is loaded.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    chosen = [p for item in args.profiles for p in item.split(",") if p]
    unknown = sorted(set(chosen) - set(known_profiles))
    if unknown:
        parser.error(f"unknown profile(s) {', '.join(unknown)}; choices: "
                     f"{', '.join(known_profiles)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    # Each run's notes (such as the quality profile's model fallback) are printed from its
    # report; the same messages as log warnings would only repeat them on stderr.
    logging.getLogger("videodub").setLevel(logging.ERROR)

    machine = Machine.detect()
    print("videodub pipeline benchmark")
    print(f"machine: {machine.cpus} usable CPUs ({machine.cpu_reason}), "
          f"{machine.memory_available / 2**30:.1f} GiB memory available; "
          f"Python {platform.python_version()}, videodub {videodub.__version__}")
    competing = CompetingLoad()
    if args.models:
        return measure_models(args.models, args.duration, args.repeat, competing, args.json)

    with tempfile.TemporaryDirectory(prefix="videodub-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        video, srt, n_lines = build_talk(root / "media", args.duration)
        media = ingested(video, root / "media", chosen[0])
        print(f"media: {media.duration:.1f} s talk, {n_lines} English lines (espeak-ng over "
              f"testsrc2), dubbed into Spanish from its subtitle file; built in "
              f"{time.perf_counter() - t0:.1f} s")

        # Warm-up, not timed: the first job of a process also pays for loading the Whisper
        # model, espeak-ng and the lazily imported audio libraries.
        tail_cpu = TailCpu()
        get_plugin_manager().register(tail_cpu, name="bench-tail-cpu")
        load_s = sum(preload_model(p, video, srt) for p in chosen)
        warm_video, warm_srt, _ = build_talk(root / "warmup", WARMUP_DURATION)
        warm = dub(overrides(warm_video, warm_srt, chosen[0]), root / "warmup" / "run")
        print(f"warm-up (not timed): model load {load_s:.2f} s, then one {WARMUP_DURATION:g} s "
              f"job ({chosen[0]}) in {warm.report['wall_s']:.2f} s; every figure below is "
              f"from warm runs")
        print(f"repeats: {args.repeat} per profile (figures are medians)")

        results: dict[str, dict[str, Any]] = {}
        last_run: dict[str, Any] = {}
        for profile in chosen:
            runs = []
            for i in range(args.repeat):
                run_dir = root / "runs" / f"{profile}-{i}"
                result = dub(overrides(video, srt, profile), run_dir)
                tail = tail_cpu.take()
                work = run_dir / "work"
                run_media = dataclasses.replace(media, speech_audio=work / "speech16k.wav",
                                                full_audio=work / "original.wav")
                scratch = root / "alone" / f"{profile}-{i}"
                scratch.mkdir(parents=True)
                runs.append({
                    "report": json.loads((run_dir / "report.json").read_text(encoding="utf-8")),
                    "transcribe_alone": transcribe_alone(profile, video, srt, run_media, scratch),
                    "tail": tail,
                    "later_alone": later_stages_alone(profile, video, srt, run_media, result,
                                                      run_dir, scratch),
                })
                last_run = {"work": work, "profile": profile, "scratch": scratch}
            results[profile] = summarise(runs)
            print_profile(profile, results[profile])

        print_summary(results)
        job = compose_job(overrides(video, srt, last_run["profile"]))
        # The streaming mix leaves the dub track already encoded (dub_mix.m4a).
        mixed = next(p for p in (last_run["work"] / "dub_mix.wav", last_run["work"] / "dub_mix.m4a")
                     if p.exists())
        parts_runs = [ffmpeg_parts(mixed,
                                   last_run["work"] / "speech_track.wav",
                                   last_run["work"] / "original.wav", last_run["scratch"], job)
                      for _ in range(args.repeat)]
        parts = {k: median([r[k] for r in parts_runs]) for k in parts_runs[0]}
        print_ffmpeg_parts(parts, last_run["profile"], media.duration)
        cli = cli_startup(root)
        print_cli(cli)
        share = competing.share()
        print(f"\nother processes used {share:.0%} of the CPUs while this ran"
              + ("; figures are inflated by the competition" if share > 0.1 else ""))

        if args.json:
            figures = {
                "machine": {"usable_cpus": machine.cpus, "cpu_reason": machine.cpu_reason,
                            "memory_available_mb": round(machine.memory_available / 2**20),
                            "python": platform.python_version(),
                            "videodub": videodub.__version__},
                "media": {"duration_s": media.duration, "lines": n_lines},
                "repeat": args.repeat,
                "competing_cpu_share": share,
                "warmup": {"model_load_s": load_s, "job_wall_s": warm.report["wall_s"],
                           "job_media_s": warm.report["job"]["media_duration_s"]},
                "profiles": results,
                "ffmpeg_parts": {"profile": last_run["profile"], "wall_s": parts},
                "cli": cli,
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
            print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
