"""Progress for people: a live rich table on a terminal, plain lines elsewhere, a summary at the end."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from videodub.providers.secrets import redact
from videodub.providers.usage import ProviderStats
from videodub.run.stats import ProcessMonitor, StageStats


def provider_line(p: ProviderStats) -> str:
    """``translate gpt-4o-mini: 12 calls, 3 in flight, 1 retry, 0 x 429``"""
    return (f"{p.stage} {p.model}: {p.calls} calls, {p.in_flight} in flight (max "
            f"{p.max_in_flight}), {p.retries} retries, {p.rate_limited} x 429")


def _fmt_done(s: StageStats) -> str:
    if s.unit == "s":
        total = f"{s.total:.0f}" if s.total is not None else "?"
        return f"{s.done:.0f}/{total} s"
    total = f"{s.total:.0f}" if s.total is not None else "?"
    return f"{s.done:.0f}/{total}"


def _fmt_rate(s: StageStats) -> str:
    rate = s.throughput
    if not rate:
        return ""
    return f"{rate:.1f}x" if s.unit == "s" else f"{rate:.1f}/s"


class Display:
    """Base: shows nothing (``runner.display=quiet``)."""

    def __init__(self, stages: list[StageStats], monitor: ProcessMonitor,
                 stream: TextIO | None = None, providers: list[ProviderStats] | None = None
                 ) -> None:
        self.stages = stages
        self.monitor = monitor
        self.stream = stream or sys.stderr
        self.providers = providers or []
        # Put before each line: which job of several running at once it is about.
        self.label = ""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def message(self, text: str) -> None:
        print(redact(self.label + text), file=self.stream, flush=True)

    def summary_table(self) -> Table:
        table = Table(title=f"{self.label}videodub stages", title_justify="left")
        for col in ("stage", "impl", "items", "wall s", "cpu s", "workers", "peak RSS MiB"):
            table.add_column(col, justify="left" if col in ("stage", "impl") else "right")
        for s in self.stages:
            table.add_row(s.name, s.impl + (" (cached)" if s.cached else ""), str(s.items),
                          f"{s.elapsed:.2f}", f"{s.cpu_s:.2f}", str(s.workers),
                          f"{s.peak_rss / 2**20:.0f}")
        return table

    def provider_table(self) -> Table:
        table = Table(title="providers", title_justify="left")
        for col in ("stage", "model", "endpoint", "calls", "in flight", "retries", "429s",
                    "limiter wait s"):
            table.add_column(col, justify="left" if col in ("stage", "model", "endpoint") else "right")
        for p in self.providers:
            table.add_row(p.stage, p.model, p.endpoint, str(p.calls),
                          f"{p.in_flight} (max {p.max_in_flight})", str(p.retries),
                          str(p.rate_limited), f"{p.limiter_wait_s:.1f}")
        return table

    def summary(self) -> None: ...


class PlainDisplay(Display):
    """One line per stage event, and a progress line at most every ``every`` seconds."""

    def __init__(self, *args, every: float = 5.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="videodub-display", daemon=True)
        self._seen_start: set[str] = set()
        self._seen_end: set[str] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self._events()

    def _events(self) -> None:
        for s in self.stages:
            if s.started is not None and s.name not in self._seen_start:
                self._seen_start.add(s.name)
                self.message(f"[{s.name}] started ({s.impl}, {s.workers} workers: {s.worker_reason})")
            if s.finished is not None and s.name not in self._seen_end:
                self._seen_end.add(s.name)
                self.message(f"[{s.name}] done {_fmt_done(s)} in {s.elapsed:.2f}s"
                             + (" (cached)" if s.cached else ""))

    def summary(self) -> None:
        # Wide enough for the providers' endpoints (a log file or CI has no terminal width
        # to follow); a table takes no more than its columns need.
        console = Console(file=self.stream, width=140)
        console.print(self.summary_table())
        if self.providers:
            console.print(self.provider_table())

    def _loop(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.2):
            self._events()
            if time.monotonic() - last >= self.every:
                last = time.monotonic()
                parts = [f"{s.name} {_fmt_done(s)}" for s in self.stages if s.active]
                if parts:
                    self.message("progress: " + ", ".join(parts)
                                 + f" | cpu {self.monitor.cpu_percent:.0f}%"
                                 f" rss {self.monitor.rss / 2**20:.0f} MiB")
                    for p in self.providers:
                        if p.calls:
                            self.message(f"  {provider_line(p)}")


class StageEventsDisplay(PlainDisplay):
    """Stage start/end lines only (the speed profile's minimal logging)."""

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self._events()


class RichDisplay(Display):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._swapped: list[tuple[logging.StreamHandler, TextIO]] = []
        self.console = Console(file=self.stream)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4,
                         transient=False, get_renderable=self._render)

    def _render(self) -> Group:
        table = Table(expand=False, box=None, pad_edge=False)
        for col in ("stage", "impl", "done", "", "elapsed", "rate", "workers"):
            table.add_column(col, justify="right" if col in ("done", "elapsed", "rate") else "left")
        for s in self.stages:
            total = s.total if s.total else None
            bar = ProgressBar(total=total or 1, completed=s.done if total else 0,
                              width=24, pulse=s.active and total is None)
            style = "green" if s.finished else ("bold" if s.active else "dim")
            table.add_row(Text(s.name, style=style), s.impl, _fmt_done(s), bar,
                          f"{s.elapsed:.1f}s", _fmt_rate(s), f"{s.workers_busy}/{s.workers}")
        footer = Text(f"cpu {self.monitor.cpu_percent:.0f}%   rss "
                      f"{self.monitor.rss / 2**20:.0f} MiB   peak {self.monitor.peak_rss / 2**20:.0f} MiB",
                      style="dim")
        parts: list = [table]
        if self.providers:
            providers = Table(expand=False, box=None, pad_edge=False)
            for col in ("provider", "model", "calls", "in flight", "retries", "429s", "waiting"):
                providers.add_column(col, justify="left" if col in ("provider", "model") else "right")
            for p in self.providers:
                providers.add_row(p.stage, p.model, str(p.calls), f"{p.in_flight}/{p.max_in_flight}",
                                  str(p.retries), str(p.rate_limited), f"{p.limiter_wait_s:.1f}s")
            parts.append(providers)
        return Group(*parts, footer)

    def message(self, text: str) -> None:
        self.console.print(redact(text))

    def start(self) -> None:
        self.live.start()
        # Log handlers hold the real stderr; point them at Live's proxy so that a warning
        # prints above the table instead of tearing it.
        self._swapped = []
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and handler.stream in (sys.__stderr__, sys.__stdout__):
                self._swapped.append((handler, handler.stream))
                handler.setStream(sys.stderr)

    def stop(self) -> None:
        for handler, stream in self._swapped:
            handler.setStream(stream)
        self.live.stop()

    def summary(self) -> None:
        self.console.print(self.summary_table())
        if self.providers:
            self.console.print(self.provider_table())


def make_display(mode: str, stages: list[StageStats], monitor: ProcessMonitor,
                 minimal: bool = False, providers: list[ProviderStats] | None = None) -> Display:
    stream = sys.stderr
    if mode == "auto":
        mode = "rich" if stream.isatty() else "plain"
    if mode == "quiet":
        return Display(stages, monitor, stream, providers)
    if mode == "rich":
        return RichDisplay(stages, monitor, stream, providers)
    return (StageEventsDisplay if minimal else PlainDisplay)(stages, monitor, stream, providers)
