"""Runs one dubbing job: composes the stages, streams segments between them, reports.

Every stage runs in its own thread; stages that work per item (translate batches, tts
clips) get a worker pool sized by :mod:`videodub.resources`. Segments move through bounded
queues, so the first line can be synthesized while later ones are still being transcribed.
The first failure cancels the job: queues stop, ffmpeg children are killed, and what was
completed (subtitles, cached transcripts and clips) stays on disk.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import platform
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import videodub
from videodub.cache import Cache, file_fingerprint, key
from videodub.config import JobConfig
from videodub.display import make_display
from videodub.errors import Cancelled, VideodubError
from videodub.media import write_json_atomic
from videodub.model import STAGES, JobContext, Segment, worker_hint
from videodub.plugins import Registry, collect, plugin_distribution
from videodub.providers.openai_api import TRANSPORT_OPTIONS, redact, reset_shared_state
from videodub.providers.usage import Estimate, ProviderStats, estimate
from videodub.resources import Machine, plan_workers
from videodub.stats import ProcessMonitor, StageStats
from videodub.subtitles import write_srt

log = logging.getLogger(__name__)
# Set once any stage thread has started in this process (see ``stage_threads_started``).
_STAGES_STARTED = threading.Event()


def stage_threads_started() -> bool:
    """Whether a job's stages have run in this process: native libraries they loaded may
    still have worker threads winding down, which interpreter teardown does not survive."""
    return _STAGES_STARTED.is_set()

_END = object()


class Pipe:
    """A bounded queue between two stages that gives up when the job is cancelled."""

    def __init__(self, ctx: JobContext, maxsize: int) -> None:
        self.ctx = ctx
        self.q: queue.Queue = queue.Queue(maxsize=maxsize)

    def put(self, item: Any) -> None:
        while True:
            self.ctx.check_cancelled()
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.put(_END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            self.ctx.check_cancelled()
            try:
                item = self.q.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item


def _result(fut: Future, ctx: JobContext) -> Any:
    while not fut.done():
        ctx.check_cancelled()
        wait([fut], timeout=0.1)
    return fut.result()


def ordered_pool(fn: Callable[[Any], Any], items: Iterable[Any], workers: int, ctx: JobContext,
                 stats: StageStats, name: str) -> Iterator[Any]:
    """Apply ``fn`` to items with ``workers`` threads; yield results in input order, each as
    soon as it and all before it are ready. At most ``2 * workers`` items are in flight.

    Items are pulled and submitted by a feeder thread, so a finished result is passed on
    at once even while the next input is still on its way."""

    def call(item: Any) -> Any:
        ctx.check_cancelled()
        stats.busy(+1)
        try:
            return fn(item)
        finally:
            stats.busy(-1)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"videodub-{name}")
    submitted: queue.Queue = queue.Queue()
    slots = threading.BoundedSemaphore(2 * workers)

    def feed() -> None:
        try:
            for item in items:
                while not slots.acquire(timeout=0.1):
                    ctx.check_cancelled()
                submitted.put(pool.submit(call, item))
            submitted.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            submitted.put(exc)

    feeder = threading.Thread(target=feed, name=f"videodub-{name}-feed", daemon=True)
    feeder.start()
    try:
        while True:
            try:
                entry = submitted.get(timeout=0.1)
            except queue.Empty:
                ctx.check_cancelled()
                continue
            if entry is _END:
                return
            if isinstance(entry, BaseException):
                raise entry
            result = _result(entry, ctx)
            slots.release()
            yield result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def waiting(items: Iterable[Any], stats: StageStats) -> Iterator[Any]:
    """Iterate, counting the stage as idle (not busy) while it waits for the next item."""
    it = iter(items)
    while True:
        stats.busy(-1)
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            stats.busy(+1)
        yield item


@dataclass
class RunResult:
    video: Path | None  # None for a dry run
    report: dict[str, Any]
    segments: list[Segment]


class Runner:
    """Runs a validated :class:`JobConfig` into ``run_dir``."""

    def __init__(self, job: JobConfig, run_dir: Path, registry: Registry | None = None,
                 display: str | None = None) -> None:
        self.job = job
        self.run_dir = Path(run_dir)
        self.registry = registry or collect()
        self.display_mode = display or job.runner.display.value
        self.machine = Machine.detect()
        self.stats = {stage: StageStats(stage, impl=job.stages[stage].impl) for stage in STAGES}
        self.stats["transcribe"].unit = "s"
        self.stats["translate"].pooled = self.stats["tts"].pooled = True
        self.ctx: JobContext | None = None
        self.errors: list[BaseException] = []
        self.source_segments: list[Segment] = []
        self.target_segments: list[Segment] = []
        self.outputs: dict[str, str] = {}
        self.monitor: ProcessMonitor | None = None
        self.providers: list[ProviderStats] = []
        self.estimate: Estimate | None = None
        self.preflight_s: float | None = None

    # -- wiring ------------------------------------------------------------------------
    def _create_stages(self) -> dict[str, Any]:
        reset_shared_state()  # each job starts from its own configured provider limits
        stages = {stage: self.registry.get(stage, opts.impl).create(opts)
                  for stage, opts in self.job.stages.items()}
        self.providers = [p for obj in stages.values()
                          if isinstance(p := getattr(obj, "provider_stats", None), ProviderStats)]
        return stages

    def _preflight(self, stages: dict[str, Any], ctx: JobContext) -> None:
        """Everything that can fail before media work, in parallel: the input (ingest's
        check probes it and the disk), then every other stage's check (voices, models,
        provider keys and endpoints). Then the cost estimate."""
        t0 = time.monotonic()
        ctx.input_path = Path(self.job.input)
        check = getattr(stages["ingest"], "check", None)
        if callable(check):
            check(ctx)
        checks = [(s, c) for s in STAGES[1:] if callable(c := getattr(stages[s], "check", None))]
        if checks:
            with ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="videodub-check") as pool:
                futures = [pool.submit(c, ctx) for _, c in checks]
                for fut in futures:
                    fut.result()
        self.preflight_s = time.monotonic() - t0
        log.info("preflight: %.2f s", self.preflight_s)
        if ctx.input_duration:
            self.estimate = estimate(stages, ctx.input_duration, self.job.prices)

    def dry_run(self) -> RunResult:
        """Check the job and estimate its cost without running it or writing a run folder."""
        import tempfile

        stages = self._create_stages()
        with tempfile.TemporaryDirectory(prefix="videodub-dry-run-") as tmp:
            ctx = self.ctx = JobContext(Path(tmp), self.job.target_lang, self.job.source_lang)
            self._preflight(stages, ctx)
        est = self.estimate or Estimate([])
        report = {"status": "dry_run", "preflight_s": round(self.preflight_s or 0, 3),
                  "estimate": est.as_report(), "summary": est.summary()}
        return RunResult(video=None, report=report, segments=[])

    def _plan(self, stage: str, obj: Any, pending: int | None = None) -> int:
        plan = plan_workers(worker_hint(obj), self.machine,
                            configured=self.job.stages[stage].workers,
                            runner_cap=self.job.runner.max_workers, pending_items=pending)
        self.stats[stage].workers = plan.workers
        self.stats[stage].worker_reason = plan.reason
        log.info("%s: %d workers (%s)", stage, plan.workers, plan.reason)
        return plan.workers

    def _finish(self, st: StageStats) -> None:
        if self.monitor is not None:
            self.monitor.sample()  # charge the stage's last child process to it
        st.finish()

    def _thread(self, name: str, target: Callable[[], None]) -> threading.Thread:
        def body() -> None:
            try:
                target()
            except Cancelled:
                pass
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                self.errors.append(exc)
                assert self.ctx is not None
                self.ctx.cancel_event.set()
                self.ctx.kill_processes()

        t = threading.Thread(target=body, name=f"videodub-{name}", daemon=True)
        _STAGES_STARTED.set()
        t.start()
        return t

    # -- the job -----------------------------------------------------------------------
    def run(self) -> RunResult:
        job = self.job
        if job.dry_run:
            return self.dry_run()
        # A stage that cannot start (missing subtitle file, bad option) fails before anything
        # is written.
        stages = self._create_stages()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        cache = Cache(Path(job.cache_dir).resolve() if job.cache else None)
        ctx = self.ctx = JobContext(self.run_dir, job.target_lang, job.source_lang,
                                    cache_dir=cache.root, verbose=job.verbose)
        monitor = self.monitor = ProcessMonitor(list(self.stats.values()))
        display = make_display(self.display_mode, list(self.stats.values()), monitor,
                               minimal=job.runner.minimal_logging, providers=self.providers)
        self.display = display
        started_at = dt.datetime.now(dt.timezone.utc)
        t0 = time.monotonic()
        monitor.start()
        display.start()
        status = "failed"
        video: Path | None = None
        try:
            video = self._run_threads(stages, cache, ctx)
            status = "ok"
        except KeyboardInterrupt:
            status = "cancelled"
            ctx.cancel_event.set()
            ctx.kill_processes()
            raise
        except Cancelled:
            status = "cancelled"
            raise
        except BaseException as exc:
            if not self.errors:  # raised here (preflight), not by a stage thread
                self.errors.append(exc)
            ctx.cancel_event.set()
            ctx.kill_processes()
            raise
        finally:
            monitor.stop()
            display.stop()
            wall = time.monotonic() - t0
            report = self._report(status, started_at, wall, monitor, stages)
            write_json_atomic(self.run_dir / "report.json", report)
            if status == "ok":
                display.summary()
                if not job.keep_work:
                    shutil.rmtree(ctx.work_dir, ignore_errors=True)
            else:
                # Intermediate media is only useful to a finished job; completed work
                # (subtitles, cached transcripts and clips) stays.
                shutil.rmtree(ctx.work_dir, ignore_errors=True)
        assert video is not None
        return RunResult(video=video, report=report, segments=self.target_segments)

    def _run_threads(self, stages: dict[str, Any], cache: Cache, ctx: JobContext) -> Path:
        job = self.job
        # Problems a stage can see from the job alone (no voice for the target language, a
        # model that cannot transcribe the source language, a provider without its key)
        # fail before any media work.
        self._preflight(stages, ctx)
        if self.estimate is not None and self.estimate.paid:
            log.info("%s", self.estimate.summary())
            if self.display_mode != "quiet":
                self.display.message(self.estimate.summary())
        qsize = job.runner.queue_size
        to_translate, to_align, to_tts, to_mix = (Pipe(ctx, qsize) for _ in range(4))
        media_ready = threading.Event()
        mixed: dict[str, Path] = {}
        stem = Path(job.input).stem

        def ingest() -> None:
            st = self.stats["ingest"]
            self._plan("ingest", stages["ingest"], pending=1)
            st.begin()
            ctx.media = stages["ingest"].ingest(Path(job.input), ctx)
            st.advance()
            self._finish(st)
            media_ready.set()

        def transcribe() -> None:
            while not media_ready.wait(0.1):
                ctx.check_cancelled()
            media = ctx.media
            assert media is not None
            st = self.stats["transcribe"]
            st.total = media.duration
            self._plan("transcribe", stages["transcribe"], pending=1)
            st.begin()
            opts = job.stages["transcribe"]
            ck = key("transcript", file_fingerprint(media.path), _result_options(opts),
                     job.source_lang)
            hit = cache.get_json("transcripts", ck)
            if hit is not None:
                st.cached = True
                ctx.source_lang = hit["language"]
                produced = (Segment.from_json(s) for s in hit["segments"])
            else:
                produced = stages["transcribe"].transcribe(media, ctx)
            for seg in produced:
                ctx.check_cancelled()
                self.source_segments.append(seg)
                st.done = min(seg.end, media.duration)
                st.items += 1
                to_translate.put(seg)
            st.done = media.duration
            if not self.source_segments:
                raise VideodubError(f"no speech found in {Path(job.input).name}")
            if ctx.source_lang is None:
                ctx.source_lang = job.source_lang
            if hit is None:
                cache.put_json("transcripts", ck, {
                    "language": ctx.source_lang,
                    "segments": [s.to_json() for s in self.source_segments]})
            self.stats["translate"].total = len(self.source_segments)
            self.outputs["source_srt"] = str(write_srt(
                self.source_segments, self.run_dir / f"{stem}.{ctx.source_lang}.srt", target=False))
            self._finish(st)
            to_translate.close()

        def translate() -> None:
            translator = stages["translate"]
            st = self.stats["translate"]
            batch_size = getattr(translator, "batch_size", None)

            def batches() -> Iterator[list[Segment]]:
                batch: list[Segment] = []
                for seg in to_translate:
                    st.begin()
                    batch.append(seg)
                    if batch_size is not None and len(batch) >= batch_size:
                        yield batch
                        batch = []
                if batch:
                    yield batch

            workers = self._plan("translate", translator)
            # Paid translations are kept per batch, so an interrupted run does not pay twice.
            keep = cache.enabled and getattr(translator, "cache_results", False)
            opts = job.stages["translate"]

            def run_batch(batch: list[Segment]) -> tuple[int, list[Segment]]:
                if not keep:
                    return len(batch), translator.translate(batch, ctx)
                ck = key("translation", _result_options(opts), ctx.source_lang, ctx.target_lang,
                         [(s.start, s.end, s.source_text) for s in batch])
                hit = cache.get_json("translations", ck)
                if hit is not None:
                    remember = getattr(translator, "remember", None)
                    if callable(remember):
                        remember(batch)
                    return len(batch), [Segment.from_json(d) for d in hit]
                result = translator.translate(batch, ctx)
                cache.put_json("translations", ck, [s.to_json() for s in result])
                return len(batch), result

            for n_in, result in ordered_pool(run_batch, batches(), workers, ctx, st, "translate"):
                for seg in result:
                    seg.id = len(self.target_segments)
                    self.target_segments.append(seg)
                    to_align.put(seg)
                st.advance(n_in, items=n_in)
            st.begin()
            total = len(self.target_segments)
            for later in ("align", "tts", "mix"):
                self.stats[later].total = total
            target_srt = self.run_dir / f"{stem}.{job.target_lang}.srt"
            if Path(self.outputs["source_srt"]) == target_srt and any(
                    s.source_text != s.target_text for s in self.target_segments):
                # Same language, different text: keep the transcript under its own name.
                self.outputs["source_srt"] = str(target_srt.replace(
                    target_srt.with_suffix(".source.srt")))
            self.outputs["target_srt"] = str(write_srt(self.target_segments, target_srt, target=True))
            self._finish(st)
            to_align.close()

        def align() -> None:
            aligner = stages["align"]
            st = self.stats["align"]
            self._plan("align", aligner, pending=1)
            held: Segment | None = None
            for seg in waiting(to_align, st):
                st.begin()
                if held is not None:
                    to_tts.put(aligner.align(held, seg.start, ctx))
                    st.advance()
                held = seg
            st.begin()
            if held is not None:
                assert ctx.media is not None
                to_tts.put(aligner.align(held, max(ctx.media.duration, held.end), ctx))
                st.advance()
            self._finish(st)
            to_tts.close()

        def tts() -> None:
            synth = stages["tts"]
            st = self.stats["tts"]
            opts = job.stages["tts"]
            workers = self._plan("tts", synth)

            def one(seg: Segment) -> Segment:
                return self._synthesize(synth, opts, seg, cache, ctx)

            def started(items: Iterable[Segment]) -> Iterator[Segment]:
                for seg in items:
                    st.begin()
                    yield seg

            for seg in ordered_pool(one, started(to_tts), workers, ctx, st, "tts"):
                st.advance()
                to_mix.put(seg)
            st.begin()
            self._finish(st)
            to_mix.close()

        def mix() -> None:
            st = self.stats["mix"]
            mixer = stages["mix"]
            self._plan("mix", mixer, pending=1)

            def feed() -> Iterator[Segment]:
                for seg in waiting(to_mix, st):
                    st.begin()
                    yield seg
                    st.advance()

            while not media_ready.wait(0.1):
                ctx.check_cancelled()
            assert ctx.media is not None
            path = mixer.mix(feed(), ctx.media, ctx)
            st.begin()
            self._finish(st)
            mixed["audio"] = path

        threads = [self._thread(n, f) for n, f in (
            ("ingest", ingest), ("transcribe", transcribe), ("translate", translate),
            ("align", align), ("tts", tts), ("mix", mix))]
        self._join(threads, ctx)

        assert ctx.media is not None
        out = self.run_dir / f"{stem}.{job.target_lang}.mp4"
        st = self.stats["mux"]
        muxer = stages["mux"]
        self._plan("mux", muxer, pending=1)
        st.begin()
        result: dict[str, Path] = {}

        def mux() -> None:
            result["video"] = muxer.mux(ctx.media, mixed["audio"], Path(self.outputs["target_srt"]),
                                        out, ctx)

        self._join([self._thread("mux", mux)], ctx)
        st.advance()
        self._finish(st)
        self.outputs["video"] = str(result["video"])
        self.outputs["segments"] = str(write_json_atomic(
            self.run_dir / "segments.json",
            {"source_lang": ctx.source_lang, "target_lang": job.target_lang,
             "segments": [self._segment_record(s) for s in self.target_segments]}))
        return result["video"]

    def _segment_record(self, seg: Segment) -> dict[str, Any]:
        record = seg.to_json()
        assert self.ctx is not None
        # Clips under work/ go away with it unless keep_work; cached clips stay.
        if (record["audio_path"] and not self.job.keep_work
                and Path(record["audio_path"]).is_relative_to(self.ctx.work_dir)):
            record["audio_path"] = None
        return record

    def _join(self, threads: list[threading.Thread], ctx: JobContext) -> None:
        """Wait for the threads; the main thread stays responsive to Ctrl-C."""
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.05)
                if self.errors:
                    break
        except KeyboardInterrupt:
            ctx.cancel_event.set()
            ctx.kill_processes()
            deadline = time.monotonic() + 0.8
            for t in threads:
                t.join(timeout=max(0.0, deadline - time.monotonic()))
            raise
        if self.errors:
            ctx.cancel_event.set()
            ctx.kill_processes()
            deadline = time.monotonic() + 2.0
            for t in threads:
                t.join(timeout=max(0.0, deadline - time.monotonic()))
            raise self.errors[0]

    def _synthesize(self, synth: Any, opts: Any, seg: Segment, cache: Cache,
                    ctx: JobContext) -> Segment:
        """Synthesize one clip, or reuse the identical clip from an earlier run."""
        import soundfile

        ck = key("clip", _result_options(opts), ctx.target_lang, seg.target_text,
                 round(seg.tts_rate, 3))
        hit = cache.get_file("clips", ck, ".wav")
        if hit is not None:
            seg.audio_path = str(hit)
            seg.synth_duration = round(soundfile.info(str(hit)).duration, 4)
            seg.flags.append("clip_cached")
            return seg
        seg = synth.synthesize(seg, ctx)
        if seg.audio_path and cache.enabled:
            cache.put_file("clips", ck, Path(seg.audio_path))
            seg.audio_path = str(cache.get_file("clips", ck, Path(seg.audio_path).suffix))
        return seg

    # -- report ------------------------------------------------------------------------
    @staticmethod
    def _cost(providers: dict[str, dict[str, Any]]) -> float | None:
        """What the provider calls cost at list prices (None if no provider is priced)."""
        priced = [p["cost_usd"] for p in providers.values() if p["cost_usd"] is not None]
        return round(sum(priced), 6) if priced else None

    def _report(self, status: str, started_at: dt.datetime, wall: float,
                monitor: ProcessMonitor, stages: dict[str, Any]) -> dict[str, Any]:
        job = self.job
        ctx = self.ctx
        media = ctx.media if ctx else None
        duration = media.duration if media else None
        providers = {p.stage: p.as_report(job.prices) for p in self.providers}
        error = None
        if self.errors and not isinstance(self.errors[0], Cancelled):
            error = redact(str(self.errors[0]).splitlines()[0]) if str(self.errors[0]) else type(
                self.errors[0]).__name__
        return {
            "status": status,
            "error": error,
            "job": {
                "input": job.input,
                "target_lang": job.target_lang,
                "source_lang": ctx.source_lang if ctx else job.source_lang,
                "profile": job.profile_name,
                "implementations": {s: o.impl for s, o in job.stages.items()},
                "packages": {s: plugin_distribution(self.registry.get(s, o.impl).plugin)
                             for s, o in job.stages.items()},
                "options": {s: _plain(dataclasses.asdict(o)) for s, o in job.stages.items()},
                "started_at": started_at.isoformat(timespec="seconds"),
                "host": platform.node(),
                "pid": os.getpid(),
                "media_duration_s": round(duration, 3) if duration else None,
                "segments": {"source": len(self.source_segments),
                             "target": len(self.target_segments)},
            },
            "wall_s": round(wall, 3),
            "realtime_factor": round(wall / duration, 4) if duration else None,
            "cpu_s": round(monitor.cpu_total, 3),
            "peak_rss_mb": round(monitor.peak_rss / 2**20, 1),
            "machine": {"usable_cpus": self.machine.cpus, "cpu_reason": self.machine.cpu_reason,
                        "memory_available_mb": round(self.machine.memory_available / 2**20)},
            "stages": {name: st.as_report() for name, st in self.stats.items()},
            "preflight_s": round(self.preflight_s, 3) if self.preflight_s is not None else None,
            "providers": providers,
            "cost_usd": self._cost(providers),
            "estimate": self.estimate.as_report() if self.estimate else None,
            "outputs": {k: Path(v).name for k, v in self.outputs.items()},
            "notes": list(ctx.notes) if ctx else [],
            "versions": {"videodub": videodub.__version__, "python": platform.python_version()},
        }


def _result_options(options: Any) -> dict[str, Any]:
    """The options that can change a stage's result (pool size, timeouts and rate limits
    cannot), for cache keys."""
    return {k: v for k, v in dataclasses.asdict(options).items()
            if k != "workers" and k not in TRANSPORT_OPTIONS}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return value.value
    return value
