"""Runs one dubbing job: builds its stages, checks them, runs them as streaming threads,
and leaves the outputs and the report in the run folder.

Every stage runs in its own thread (``stages.py``); segments move between them through
bounded pipes (``streams.py``), so the first line can be synthesized while later ones are
still being transcribed. The first failure cancels the job: pipes stop, ffmpeg children are
killed, and what was completed (subtitles, cached transcripts, translations and clips) stays
on disk.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videodub.allocator import return_large_buffers
from videodub.config import JobConfig
from videodub.errors import Cancelled, VideodubError, is_no_space, no_space
from videodub.machine import Machine
from videodub.media import full_folder, remove_stale_temporaries, write_json_atomic
from videodub.model import (STAGES, CallsProvider, JobContext, JobScope, Segment,
                            ShortensLines, worker_hint)
from videodub.plugins import Registry
from videodub.providers.secrets import redact_data
from videodub.providers.usage import Estimate, ProviderStats
from videodub.run.cache import Cache, with_cache
from videodub.run.display import Display, make_display
from videodub.run.interrupts import held_interrupts
from videodub.run.outputs import Outputs
from videodub.run.ownership import own_run_folder
from videodub.run.preflight import preflight
from videodub.run.prune import JobLease, prune_after_job
from videodub.run.quality import measure as measure_quality
from videodub.run.quality import summary_line as quality_line
from videodub.run.report import JobRecord, build_report
from videodub.run.stages import Pipeline
from videodub.run.stats import ProcessMonitor, StageStats
from videodub.run.tail import connect_tail, keeps_surround
from videodub.run.workers import plan_workers
from videodub.subtitles import reading_figures

log = logging.getLogger(__name__)
# Set once any stage thread has started in this process (see ``stage_threads_started``).
_STAGES_STARTED = threading.Event()


def stage_threads_started() -> bool:
    """Whether a job's stages have run in this process: native libraries they loaded may
    still have worker threads winding down, which interpreter teardown does not survive."""
    return _STAGES_STARTED.is_set()


@dataclass
class RunResult:
    video: Path | None  # None for a dry run
    report: dict[str, Any]
    segments: list[Segment]


class Runner:
    """Runs a validated :class:`JobConfig` into ``run_dir`` with the implementations of
    ``registry`` (the one the job was composed from)."""

    def __init__(self, job: JobConfig, run_dir: Path, registry: Registry,
                 display: str | None = None, label: str = "") -> None:
        self.job = job
        self.run_dir = Path(run_dir)
        self.registry = registry
        self.display_mode = display or job.runner.display.value
        self.label = label  # before each line shown: jobs of a parallel sweep share a terminal
        self.machine = Machine.detect()
        self.stats = {stage: StageStats(stage, impl=job.stages[stage].impl) for stage in STAGES}
        self.stats["transcribe"].unit = "s"
        self.stats["translate"].pooled = self.stats["tts"].pooled = True
        self.scope = JobScope(registry)
        self.ctx: JobContext | None = None
        self.pipeline: Pipeline | None = None
        self.errors: list[BaseException] = []
        self.monitor: ProcessMonitor | None = None
        self.display: Display | None = None
        self.providers: list[ProviderStats] = []
        self.estimate: Estimate | None = None
        self.preflight_s: float | None = None
        self.quality: dict[str, Any] | None = None

    def _create_stages(self) -> dict[str, Any]:
        stages = {stage: self.registry.get(stage, opts.impl).create(opts, self.scope)
                  for stage, opts in self.job.stages.items()}
        self.providers = [obj.provider_stats for obj in stages.values()
                          if isinstance(obj, CallsProvider)]
        return stages

    def _preflight(self, stages: dict[str, Any], ctx: JobContext) -> None:
        self.preflight_s, self.estimate = preflight(stages, ctx, self.job.input, self.job.prices)

    def dry_run(self) -> RunResult:
        """Check the job and estimate its cost without running it or writing a run folder."""
        try:
            stages = self._create_stages()
            with tempfile.TemporaryDirectory(prefix="videodub-dry-run-") as tmp:
                self.ctx = JobContext(Path(tmp), self.job.target_lang, self.job.source_lang)
                self._preflight(stages, self.ctx)
        finally:
            self.scope.close()
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
        self._notify("stage_finished", job=self.job, stage=st.name, stats=st.as_report())

    def _notify(self, hook: str, **kwargs: Any) -> None:
        """Call an observer hook; an observer that fails is logged, never fails the job."""
        caller = getattr(self.registry.hook, hook, None)
        if caller is None:
            return
        try:
            caller(**kwargs)
        except Exception as exc:  # noqa: BLE001 - someone else's plugin
            log.warning("observer %s failed and is ignored: %s: %s", hook,
                        type(exc).__name__, exc)

    def _thread(self, name: str, target: Callable[[], None]) -> threading.Thread:
        def body() -> None:
            try:
                target()
            except Cancelled:
                pass
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                self.errors.append(self._disk_error(exc, f"running the {name} stage"))
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
        try:
            stages = self._create_stages()
        except BaseException:
            self.scope.close()
            raise
        connect_tail(stages)
        return_large_buffers()  # or a long job holds what it has freed (allocator.py)
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.scope.close()
            raise VideodubError(f"cannot create the run folder {self.run_dir}: "
                                f"{exc.strerror or exc}; set another run folder") from exc
        try:
            with own_run_folder(self.run_dir):
                return self._run_owned(stages)
        finally:
            self.scope.close()

    def _run_owned(self, stages: dict[str, Any]) -> RunResult:
        job = self.job
        cache = Cache(Path(job.cache_dir).resolve() if job.cache else None)
        if cache.root is not None:
            try:
                cache.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise VideodubError(f"cannot create the cache folder {cache.root}: "
                                    f"{exc.strerror or exc}; set cache_dir to a folder you can "
                                    f"write to, or cache=false") from exc
        # What jobs killed before they could clean up left here (not a live job's files).
        remove_stale_temporaries(self.run_dir)
        if cache.root is not None:
            remove_stale_temporaries(cache.root, recursive=True)
        # While the job holds its lease, pruning keeps every cache entry it uses.
        lease = JobLease(cache.root).__enter__()
        ctx = self.ctx = JobContext(self.run_dir, job.target_lang, job.source_lang,
                                    cache_dir=cache.root, verbose=job.verbose)
        ctx.surround = keeps_surround(stages)
        outputs = Outputs(self.run_dir, job.input, job.keep_work, job.subtitles, ctx)
        monitor = self.monitor = ProcessMonitor(list(self.stats.values()),
                                                children=ctx.child_pids)
        display = self.display = make_display(
            self.display_mode, list(self.stats.values()), monitor,
            minimal=job.runner.minimal_logging, providers=self.providers)
        display.label = self.label
        if self.display_mode != "quiet":
            ctx.progress = display.message
        started_at = dt.datetime.now(dt.timezone.utc)
        t0 = time.monotonic()
        self._notify("job_started", job=job, run_dir=self.run_dir)
        monitor.start()
        display.start()
        status = "failed"
        video: Path | None = None
        try:
            video = self._run_stages(stages, cache, ctx, outputs)
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
            if not self.errors:  # raised here (preflight, outputs), not by a stage thread
                self.errors.append(self._disk_error(exc, "writing the outputs"))
            ctx.cancel_event.set()
            ctx.kill_processes()
            if self.errors[0] is not exc:
                raise self.errors[0] from exc  # the clear line, not a raw OSError
            raise
        finally:
            with held_interrupts():
                monitor.stop()
                display.stop()
                self.scope.close()
                lease.__exit__(None, None, None)
                # Clean-up first: it must run whatever the report write does. Intermediate
                # media is only useful to a finished job; completed work (subtitles, cached
                # transcripts and clips) stays.
                if status != "ok" or not job.keep_work:
                    remove_work(ctx.work_dir)
                report = self._report(status, started_at, t0, outputs)
                self._notify("job_finished", job=job, run_dir=self.run_dir, report=report)
                report_error = self._write_report(report)
        if report_error is not None:  # the job itself succeeded: the report is one of its outputs
            raise report_error
        display.summary()
        if self.quality and "error" not in self.quality and self.display_mode != "quiet":
            display.message(quality_line(self.quality))
        if self.display_mode != "quiet":
            for line in (report.get("perf") or {}).get("summary", []):
                display.message(line)
        prune_after_job(cache.root, job.cache_max_gb, job.cache_max_age_days)
        assert video is not None
        return RunResult(video=video, report=report, segments=self._segments(self.pipeline))

    def _disk_error(self, exc: BaseException, doing: str) -> BaseException:
        """A failed write on a full disk as the one line that says so, whatever the library
        that failed said (an OSError 28, libsndfile's "System error")."""
        if is_no_space(exc):
            assert isinstance(exc, OSError)
            return no_space(exc, doing, self.run_dir)
        if isinstance(exc, (VideodubError, Cancelled)) or not isinstance(exc, Exception):
            return exc
        cache_dir = self.ctx.cache_dir if self.ctx else None
        full = full_folder([self.run_dir, cache_dir])
        if full is None:
            return exc
        return no_space(OSError(errno.ENOSPC, str(exc)), doing, full)

    def _write_report(self, report: dict[str, Any]) -> VideodubError | None:
        """Write report.json if the disk allows; a failure here never hides the job's error."""
        try:
            write_json_atomic(self.run_dir / "report.json", report)
        except OSError as exc:
            log.warning("could not write report.json: %s", exc)
            return (no_space(exc, "writing report.json", self.run_dir) if is_no_space(exc)
                    else VideodubError(f"could not write {self.run_dir / 'report.json'}: "
                                       f"{exc.strerror or exc}"))
        return None

    def _run_stages(self, stages: dict[str, Any], cache: Cache, ctx: JobContext,
                    outputs: Outputs) -> Path:
        job = self.job
        self._preflight(stages, ctx)
        if self.estimate is not None and self.estimate.paid:
            log.info("%s", self.estimate.summary())
            if self.display_mode != "quiet":
                assert self.display is not None
                self.display.message(self.estimate.summary())

        def transcript_reused() -> None:
            self.stats["transcribe"].cached = True

        pipeline = self.pipeline = Pipeline(
            stages=with_cache(stages, job.stages, cache, job.source_lang, transcript_reused),
            ctx=ctx, input_path=job.input, target_lang=job.target_lang,
            source_lang=job.source_lang, stats=self.stats, outputs=outputs,
            plan=lambda stage, pending=None: self._plan(stage, stages[stage], pending),
            finish=self._finish, queue_size=job.runner.queue_size,
            on_suspect=job.stages["transcribe"].on_suspect,
            shortener=stages["translate"] if isinstance(stages["translate"], ShortensLines)
            else None)
        self._join([self._thread(name, body) for name, body in pipeline.streaming_stages()], ctx)
        # The quality figures read the mix's tracks, not the muxed file: measured while mux runs.
        self._join([self._thread("mux", pipeline.mux),
                    self._thread("quality", lambda: self._measure_quality(pipeline, ctx))], ctx)
        outputs.write_segments(pipeline.target_segments, ctx.source_lang, job.target_lang,
                               ctx.work_dir)
        return outputs.paths["video"]

    def _measure_quality(self, pipeline: Pipeline, ctx: JobContext) -> None:
        """The dub's quality figures (``run/quality.py``). A failure to measure is reported in
        the section, not raised: the dubbed video is already whole."""
        assert ctx.media is not None
        try:
            self.quality = measure_quality(pipeline.target_segments, ctx.media, ctx)
            self.quality["subtitles"] = reading_figures(pipeline.outputs.paths["target_srt"],
                                                        ctx.target_lang, self.job.subtitles)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.warning("measuring the dub's quality failed", exc_info=True)
            self.quality = {"error": f"{type(exc).__name__}: {exc}"}

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

    @staticmethod
    def _segments(pipeline: Pipeline | None, source: bool = False) -> list[Segment]:
        if pipeline is None:
            return []
        return pipeline.source_segments if source else pipeline.target_segments

    def _report(self, status: str, started_at: dt.datetime, t0: float,
                outputs: Outputs) -> dict[str, Any]:
        assert self.monitor is not None
        return redact_data(build_report(JobRecord(
            job=self.job, registry=self.registry, machine=self.machine, status=status,
            started_at=started_at, wall_s=time.monotonic() - t0, origin=t0,
            monitor=self.monitor, stats=self.stats,
            ctx=self.ctx, source_segments=self._segments(self.pipeline, source=True),
            target_segments=self._segments(self.pipeline), providers=self.providers,
            outputs=outputs.names(), errors=self.errors, preflight_s=self.preflight_s,
            estimate=self.estimate, quality=self.quality)))


def remove_work(folder: Path, tries: int = 20) -> None:
    """Remove the work folder. After a failure or Ctrl-C a stage thread may still be writing
    in it for a moment (it stops at its next cancellation check), and a file created while the
    tree is removed leaves the folder behind: retried for up to a second."""
    for _ in range(tries):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        time.sleep(0.05)
