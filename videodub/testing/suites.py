"""A shared test suite for tts plugins, and the audio measurements it uses.

A plugin's own tests subclass :class:`TTSSuite` and name their implementation; every
test synthesizes real clips through the plugin registry, the way a dub job does::

    from videodub.testing import TTSSuite
    import my_plugin

    class TestMyVoice(TTSSuite):
        impl_name = "myvoice"
        overrides = {"speed": 1.2}          # options for every test (tts.speed=1.2)
        invalid_overrides = [{"speed": 0}]  # each must fail validation with one line
        plugins = [my_plugin]               # registered in-process: no install needed

Run with pytest (the suite uses its ``tmp_path`` fixture). Nothing here touches the network.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pytest

from videodub.api import compose_job
from videodub.audio import read_mono
from videodub.errors import Cancelled, VideodubError
from videodub.model import JobContext, JobScope, Segment, Synthesizer, WorkerHint, worker_hint
from videodub.plugins import (
    Implementation,
    Registry,
    collect,
    get_plugin_manager,
    make_plugin_manager,
)

SHORT_TEXT = "Hello there."
LONG_TEXT = ("Hello there, and welcome to a much longer sentence that takes several seconds "
             "to say out loud, even for a fast voice.")
# Enough speed-up that any voice that honours tts_rate is clearly shorter, within what
# align asks for in practice (profiles allow up to 1.5).
FAST_RATE = 1.5


def median_f0(audio: np.ndarray, rate: int, fmin: float = 60.0, fmax: float = 500.0) -> float:
    """The median fundamental frequency (Hz) of the voiced parts of a speech clip.

    Autocorrelation on 50 ms Hann-windowed frames, divided by the window's own
    autocorrelation so long periods are not penalised (Boersma's method). A frame counts
    when it is loud (above a fifth of the loudest frame's RMS) and periodic (peak above 0.45);
    of its peaks, the shortest lag within 90% of the best wins, against octave errors.
    Returns 0.0 when no frame qualifies. Accurate to well under a semitone on a sentence.
    """
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim > 1:
        audio = audio.mean(axis=0 if audio.shape[0] < audio.shape[-1] else 1)
    frame = int(0.05 * rate)
    hop = frame // 2
    lo, hi = int(rate / fmax), int(rate / fmin)
    if len(audio) < frame or hi + 1 >= frame:
        return 0.0
    frames = np.lib.stride_tricks.sliding_window_view(audio, frame)[::hop]
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    if rms.max() <= 0:
        return 0.0
    size = 1 << int(np.ceil(np.log2(2 * frame)))
    window = np.hanning(frame)
    window_ac = np.fft.irfft(np.abs(np.fft.rfft(window, size)) ** 2)[: hi + 2]
    window_ac /= window_ac[0]
    f0s = []
    for f in frames[rms > 0.2 * rms.max()]:
        ac = np.fft.irfft(np.abs(np.fft.rfft((f - f.mean()) * window, size)) ** 2)[: hi + 2]
        if ac[0] <= 0:
            continue
        r = ac / ac[0] / window_ac
        around = r[lo - 1: hi + 2]
        peaks = np.flatnonzero((around[1:-1] > around[:-2]) & (around[1:-1] >= around[2:])) + lo
        if peaks.size == 0:
            continue
        lag = int(peaks[np.argmax(r[peaks] >= 0.9 * r[peaks].max())])
        if r[lag] > 0.45:
            f0s.append(rate / lag)
    return float(np.median(f0s)) if f0s else 0.0


def registry_with(plugins: list[Any] | tuple[Any, ...] = ()) -> Registry:
    """The installed plugins plus ``plugins`` (modules or objects with hook implementations)
    that are not installed, on a private plugin manager: the process-wide one is untouched."""
    installed = get_plugin_manager()
    pm = make_plugin_manager()
    for plugin in installed.get_plugins():
        pm.register(plugin, name=installed.get_name(plugin))
    for plugin in plugins:
        if not pm.is_registered(plugin):
            name = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__name__
            pm.register(plugin, name=name)
    pm.check_pending()
    return collect(pm)


class TTSSuite:
    """Tests every tts implementation should pass; subclass it and set the attributes."""

    #: The name users select with ``tts=<name>``.
    impl_name: ClassVar[str] = ""
    #: Options applied in every test, as ``tts.<key>=<value>`` would set them.
    overrides: ClassVar[dict[str, Any]] = {}
    #: Option sets that validation must reject (each one alone, on top of ``overrides``).
    invalid_overrides: ClassVar[list[dict[str, Any]]] = []
    #: Not-installed plugins to register for the tests (installed ones are always there).
    plugins: ClassVar[list[Any]] = []
    #: The language the test lines are in (``ctx.target_lang``).
    target_lang: ClassVar[str] = "en"
    #: Whether ``synthesize`` itself checks ``ctx.check_cancelled()``; the runner always
    #: checks before each call, so an implementation that is quick per clip need not.
    checks_cancellation: ClassVar[bool] = False
    short_text: ClassVar[str] = SHORT_TEXT
    long_text: ClassVar[str] = LONG_TEXT

    # -- helpers -------------------------------------------------------------------------
    def registry(self) -> Registry:
        return registry_with(self.plugins)

    def implementation(self) -> Implementation:
        assert self.impl_name, f"{type(self).__name__}.impl_name is not set"
        return self.registry().get("tts", self.impl_name)

    def options(self, **extra: Any) -> Any:
        """The validated options object a job would pass to the factory."""
        return self.implementation().config(**{**self.overrides, **extra})

    def synthesizer(self, **extra: Any) -> Synthesizer:
        """Created as a job creates it: with a scope that carries the registry."""
        registry = self.registry()
        impl = registry.get("tts", self.impl_name)
        return impl.create(impl.config(**{**self.overrides, **extra}), JobScope(registry))

    def context(self, tmp_path: Path, name: str = "run") -> JobContext:
        return JobContext(tmp_path / name, self.target_lang, self.target_lang,
                          cache_dir=tmp_path / "cache")

    def segment(self, text: str, seg_id: int = 0, rate: float = 1.0) -> Segment:
        return Segment(id=seg_id, start=0.0, end=10.0, source_text=text, target_text=text,
                       slot_start=0.0, slot_end=10.0, tts_rate=rate, max_speed=1.5)

    def synth(self, synthesizer: Synthesizer, ctx: JobContext, text: str, seg_id: int = 0,
              rate: float = 1.0) -> Segment:
        seg = synthesizer.synthesize(self.segment(text, seg_id, rate), ctx)
        assert isinstance(seg, Segment), f"synthesize returned {type(seg).__name__}, not a Segment"
        return seg

    def clip_duration(self, seg: Segment) -> float:
        """Checks the clip the segment points at and returns its duration from the file."""
        assert seg.audio_path, "synthesize did not set segment.audio_path"
        path = Path(seg.audio_path)
        assert path.is_file(), f"clip {path} does not exist"
        audio, rate = read_mono(path)
        duration = len(audio) / rate
        assert seg.synth_duration is not None, "synthesize did not set segment.synth_duration"
        assert abs(seg.synth_duration - duration) < 0.02, (
            f"synth_duration {seg.synth_duration} but the file holds {duration:.3f} s")
        return duration

    # -- the tests -----------------------------------------------------------------------
    def test_registered_with_config(self) -> None:
        impl = self.implementation()
        assert impl.stage == "tts" and impl.name == self.impl_name
        fields = {f.name for f in dataclasses.fields(impl.config)}
        # The stage options and the implementation's own options are all keys.
        assert {"impl", "workers", "effort"} <= fields
        assert set(self.overrides) <= fields, f"unknown options {set(self.overrides) - fields}"
        assert impl.config().impl == self.impl_name

    def compose_job(self, options: dict[str, Any]) -> Any:
        """``tts=<name>`` plus ``tts.<key>=<value>`` for each option, validated."""
        return compose_job(
            ["input=talk.mp4", f"target_lang={self.target_lang}", f"tts={self.impl_name}",
             *(f"tts.{k}={_cli(v)}" for k, v in options.items())], self.registry())

    def test_options_are_command_line_keys(self) -> None:
        """``tts=<name> tts.<key>=<value>`` composes and validates into the options object."""
        opts = self.compose_job(self.overrides).stages["tts"]
        expected = {f.name for f in dataclasses.fields(self.implementation().config)}
        assert {f.name for f in dataclasses.fields(opts)} == expected
        assert opts.impl == self.impl_name
        for k, v in self.overrides.items():
            assert getattr(opts, k) == v, f"tts.{k}={v!r} became {getattr(opts, k)!r}"

    def test_invalid_options_fail_in_one_line(self) -> None:
        if not self.invalid_overrides:
            pytest.skip("no invalid_overrides given")
        for bad in self.invalid_overrides:
            try:
                self.compose_job({**self.overrides, **bad})
            except VideodubError as exc:
                message = str(exc)
            else:
                pytest.fail(f"tts={self.impl_name} accepted {bad}")
            assert "\n" not in message, message
            assert any(k in message for k in bad), f"{message!r} does not name {list(bad)}"

    def test_worker_hint(self) -> None:
        hint = worker_hint(self.synthesizer())
        assert isinstance(hint, WorkerHint)
        assert hint.memory_mb > 0
        assert hint.max_concurrency is None or hint.max_concurrency >= 1

    def test_writes_a_clip_with_speech(self, tmp_path: Path) -> None:
        ctx = self.context(tmp_path)
        seg = self.synth(self.synthesizer(), ctx, self.short_text)
        duration = self.clip_duration(seg)
        assert duration > 0.2, f"a spoken line of {len(self.short_text)} chars lasts {duration} s"
        audio, _ = read_mono(seg.audio_path)
        rms = float(np.sqrt(np.mean(audio ** 2)))
        assert rms > 0.01, f"the clip is (nearly) silent: RMS {rms:.4f}"
        # Clips belong to the job: under its run directory, so they go when the job's work does.
        assert Path(seg.audio_path).resolve().is_relative_to(ctx.run_dir.resolve())

    def test_longer_text_gives_longer_clip(self, tmp_path: Path) -> None:
        synth, ctx = self.synthesizer(), self.context(tmp_path)
        short = self.clip_duration(self.synth(synth, ctx, self.short_text, seg_id=0))
        long = self.clip_duration(self.synth(synth, ctx, self.long_text, seg_id=1))
        assert long > 2 * short, f"{len(self.long_text)} chars: {long:.2f} s, " \
                                 f"{len(self.short_text)} chars: {short:.2f} s"

    def test_faster_rate_gives_shorter_clip(self, tmp_path: Path) -> None:
        synth, ctx = self.synthesizer(), self.context(tmp_path)
        natural = self.clip_duration(self.synth(synth, ctx, self.long_text, seg_id=0))
        fast = self.clip_duration(self.synth(synth, ctx, self.long_text, seg_id=1, rate=FAST_RATE))
        # Not exactly 1/FAST_RATE: pauses and voices do not all scale with the rate.
        assert fast < 0.85 * natural, f"tts_rate={FAST_RATE}: {fast:.2f} s vs {natural:.2f} s"

    def test_each_segment_gets_its_own_clip(self, tmp_path: Path) -> None:
        """Clips of different segments must not overwrite each other (the runner keeps
        several in flight, and the mixer reads them later)."""
        synth, ctx = self.synthesizer(), self.context(tmp_path)
        first = self.synth(synth, ctx, self.short_text, seg_id=0)
        first_duration = self.clip_duration(first)
        second = self.synth(synth, ctx, self.long_text, seg_id=1)
        assert first.audio_path != second.audio_path
        assert abs(self.clip_duration(first) - first_duration) < 1e-6

    def test_parallel_calls_within_the_hint(self, tmp_path: Path) -> None:
        """As many threads as the worker hint allows (at most 3) produce the right clips."""
        synth, ctx = self.synthesizer(), self.context(tmp_path)
        hint = worker_hint(synth)
        if hint.max_concurrency == 1:
            pytest.skip(f"one worker at a time ({hint.reason or 'worker hint'})")
        workers = min(3, hint.max_concurrency or 3)
        texts = [self.short_text, self.long_text, self.short_text][:workers]
        alone = [self.clip_duration(self.synth(synth, self.context(tmp_path, f"alone{i}"), t, i))
                 for i, t in enumerate(texts)]
        results: dict[int, Segment] = {}
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                results[i] = self.synth(synth, ctx, texts[i], seg_id=i)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        for i, expected in enumerate(alone):
            assert abs(self.clip_duration(results[i]) - expected) < 0.05, (
                f"segment {i} differs when synthesized alongside others")

    def test_cancelled_job_writes_no_clip(self, tmp_path: Path) -> None:
        if not self.checks_cancellation:
            pytest.skip("synthesize does not check cancellation (the runner does, "
                        "between clips)")
        synth, ctx = self.synthesizer(), self.context(tmp_path)
        ctx.cancel_event.set()
        try:
            synth.synthesize(self.segment(self.short_text), ctx)
        except Cancelled:
            pass
        else:
            raise AssertionError("synthesize ran to the end for a cancelled job")
        written = [p for p in ctx.run_dir.rglob("*") if p.is_file()]
        assert not written, f"a cancelled job wrote {written}"


def _cli(value: Any) -> str:
    """A Python value as a command-line override value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else "''"
    return str(value)
