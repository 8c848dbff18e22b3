"""Per-stage counters (:class:`StageStats`) and the process sampler (:class:`ProcessMonitor`):
begin, finish, progress, busy workers, elapsed time and throughput, the report's figures, and
CPU time (a finished child process's included) and peak RSS charged to the stages at work.

The monitor is sampled by hand here (its thread is not started), so each sample covers
exactly what the test did since the one before. RSS is this process's own, as the display and
the report say; a child's CPU time counts once the child has ended.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from videodub.run.stats import ProcessMonitor, StageStats

MiB = 2**20
# A child that burns CPU for about a third of a second, then prints the CPU time it used.
CHILD = ("import time\n"
         "t0 = time.process_time()\n"
         "while time.process_time() - t0 < 0.3:\n"
         "    sum(range(10_000))\n"
         "print(time.process_time())\n")


def run_child() -> float:
    """Run CHILD to its end (so its CPU time is counted as a child's); its CPU seconds."""
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          check=True, timeout=120)
    return float(proc.stdout)


# -- StageStats ------------------------------------------------------------------------

def test_a_stage_without_a_pool_is_one_busy_worker_while_it_runs():
    stage = StageStats("mix")
    assert not stage.active and stage.elapsed == 0.0 and stage.throughput == 0.0
    stage.begin()
    started = stage.started
    assert stage.active and stage.workers_busy == 1
    stage.begin()  # a second begin does not restart the clock
    assert stage.started == started
    stage.finish()
    assert not stage.active and stage.workers_busy == 0
    assert stage.elapsed == stage.finished - stage.started  # fixed once finished


def test_a_pooled_stage_counts_only_the_workers_it_reports():
    stage = StageStats("tts", pooled=True)
    stage.begin()
    assert stage.workers_busy == 0
    stage.busy(+1)
    stage.busy(+1)
    stage.busy(-1)
    assert stage.workers_busy == 1
    stage.busy(-5)
    assert stage.workers_busy == 0  # never below zero
    stage.finish()


def test_progress_throughput_and_the_total_at_the_end():
    stage = StageStats("transcribe", unit="s", started=10.0, finished=14.0)
    stage.advance(3.5)
    stage.advance(4.5, items=2)
    assert (stage.done, stage.items) == (8.0, 3)
    assert stage.elapsed == 4.0 and stage.throughput == 2.0
    open_ended = StageStats("translate")
    open_ended.begin()
    open_ended.advance(5, items=5)
    open_ended.finish()
    assert open_ended.total == 5  # the total is what was done, when not known before
    known = StageStats("tts", total=12)
    known.begin()
    known.advance(3)
    known.finish()
    assert known.total == 12


def test_as_report_rounds_and_names_every_figure():
    stage = StageStats("tts", impl="espeak", unit="segments", total=4, done=4, items=4,
                       workers=2, worker_reason="cpu: 2 usable", started=1.0,
                       finished=3.123456, cpu_s=1.23456, peak_rss=300 * MiB + 12345,
                       cached=True, wait_s=0.51234)
    assert stage.as_report() == {
        "impl": "espeak", "wall_s": 2.123, "cpu_s": 1.235, "items": 4, "unit": "segments",
        "done": 4, "workers": 2, "worker_reason": "cpu: 2 usable", "peak_rss_mb": 300.0,
        "cached": True, "wait_s": 0.512, "load": 0.0}


def test_waiting_counts_only_between_begin_and_finish():
    stage = StageStats("mix")
    stage.waited(5.0)  # before it began: its upstream had not started, not its own wait
    stage.begin()
    stage.waited(0.25)
    stage.finish()
    stage.waited(5.0)
    assert stage.wait_s == 0.25


# -- ProcessMonitor --------------------------------------------------------------------

def test_a_finished_childs_cpu_goes_to_the_stage_at_work():
    working = StageStats("mix")
    waiting = StageStats("mux", pooled=True)  # started, but no worker busy
    not_started = StageStats("report")
    working.begin()
    waiting.begin()
    monitor = ProcessMonitor([working, waiting, not_started])
    child_cpu = run_child()
    monitor.sample()
    # Tick-rounded by the kernel, so allow a little less than the child measured itself.
    assert monitor.cpu_total >= child_cpu - 0.05
    assert working.cpu_s == pytest.approx(monitor.cpu_total)
    assert waiting.cpu_s == 0.0 and not_started.cpu_s == 0.0


def test_cpu_is_shared_by_busy_workers_and_idle_stages_share_it_evenly():
    tts, translate = StageStats("tts", pooled=True), StageStats("translate", pooled=True)
    tts.begin()
    translate.begin()
    tts.busy(+3)
    translate.busy(+1)
    monitor = ProcessMonitor([tts, translate])
    run_child()
    monitor.sample()
    assert tts.cpu_s == pytest.approx(3 * translate.cpu_s)
    assert tts.cpu_s + translate.cpu_s == pytest.approx(monitor.cpu_total)
    # Nobody busy: the CPU still goes somewhere, to every stage that is running.
    tts.busy(-3)
    translate.busy(-1)
    before = (tts.cpu_s, translate.cpu_s)
    run_child()
    monitor.sample()
    assert tts.cpu_s - before[0] == pytest.approx(translate.cpu_s - before[1])
    assert tts.cpu_s > before[0]


def test_peak_rss_follows_the_process_and_goes_to_running_stages():
    running, finished = StageStats("tts"), StageStats("ingest")
    finished.begin()
    finished.finish()
    running.begin()
    monitor = ProcessMonitor([running, finished])
    monitor.sample()
    baseline = monitor.rss
    block = np.ones(96 * MiB, dtype=np.uint8)  # written, so the pages are resident
    monitor.sample()
    assert monitor.rss >= baseline + 64 * MiB
    assert running.peak_rss == monitor.peak_rss >= monitor.rss
    assert finished.peak_rss == 0
    del block
    monitor.sample()
    assert monitor.peak_rss >= baseline + 64 * MiB  # a peak is kept


def test_the_monitor_thread_samples_until_stopped():
    stage = StageStats("mix")
    stage.begin()
    monitor = ProcessMonitor([stage], interval=0.01)
    monitor.start()
    run_child()
    monitor.stop()
    assert not monitor.is_alive()
    assert monitor.rss > 0 and monitor.cpu_total > 0
    assert stage.cpu_s == pytest.approx(monitor.cpu_total)


def test_peak_rss_counts_child_processes():
    """ffmpeg and other children hold memory for the job too: a child that touches 128 MiB
    shows in the job's RSS while it lives, and in the peaks after it is gone."""
    import subprocess
    import sys

    stage = StageStats("mix")
    stage.begin()
    pids: list[int] = []  # the job's tracked children (JobContext.child_pids)
    monitor = ProcessMonitor([stage], children=lambda: pids)
    monitor.sample()
    baseline = monitor.rss
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; b = bytearray(128 * 2**20); b[::4096] = b'x' * "
         "len(b[::4096]); print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        pids.append(child.pid)
        monitor.sample()
        assert monitor.children_rss >= 128 * MiB
        assert monitor.rss >= baseline + 128 * MiB
    finally:
        child.communicate("")
        pids.clear()
    monitor.sample()
    assert monitor.children_rss == 0
    assert monitor.peak_children_rss >= 128 * MiB
    assert stage.peak_rss >= baseline + 128 * MiB


def test_rss_includes_the_jobs_child_processes():
    import subprocess
    import sys

    import psutil

    child = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                              "x = bytearray(120_000_000)\nx[::4096] = b'1' * len(x[::4096])\n"
                              "print('ready', flush=True)\ntime.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"  # its memory is touched by now
        alone = ProcessMonitor([StageStats("mux")])
        alone.sample()
        with_child = ProcessMonitor([StageStats("mux")], children=lambda: [child.pid])
        with_child.sample()
        child_rss = psutil.Process(child.pid).memory_info().rss
        assert child_rss > 100 * MiB
        assert with_child.rss >= alone.rss + child_rss - 20 * MiB
    finally:
        child.kill()
        child.wait()
