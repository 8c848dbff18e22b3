"""The dubbed track built while clips are still arriving, so that little is left to do after
the last one: a mix that streams.

The two-pass mix (``mix.streaming=false``) must see the whole speech track before it can
measure it, so all of its work — ducking, a loudness pass, a render pass — comes after the last
clip. Here each stretch of the track is finished as soon as no later clip can change it (clips
arrive in start order, so everything before the newest clip's start, less the ducking attack,
is final):

- **ducking from the known clip positions**: the background's gain falls by ``duck_db`` over
  ``attack`` before each clip and comes back over ``release`` after it — the sidechain
  compressor's effect, computed from where the clips are instead of from a second signal;
- **loudness predicted as it goes**: a BS.1770 meter (K-weighting, gated 400 ms blocks) follows
  the mix before gain; the first stretch is held until enough speech has been heard to estimate
  the gain to the target, and the gain then follows the running estimate, slew-limited (it
  converges: the voice is the same throughout);
- **a streaming limiter and meter**: one ffmpeg process fed through a pipe limits the peaks and
  measures what it writes (``ebur128``), so the result is checked without another pass; when
  it misses the target by more than ``tolerance_lu``, a correction pass fixes it (noted).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from videodub.background import gain_envelope, take_out_centre
from videodub.errors import Cancelled, VideodubError, is_no_space
from videodub.loudness import ABSOLUTE_GATE, LoudnessMeter
from videodub.media import ffmpeg_exe, run_ffmpeg
from videodub.model import JobContext
from videodub.parallel_encode import EncoderSpec, ParallelEncoder, feed
from videodub.speech_regions import LevelMeter, to_mono
from videodub.surround import channel_names
from videodub.wav import FFMPEG_WAV

# Finished audio is handed to ffmpeg at most this much at a time (bounds the memory).
CHUNK_S = 10.0


class DuckEnvelope:
    """The background's gain from the clips' positions: ``duck_db`` under speech, ramps of
    ``attack_s`` before and ``release_s`` after it."""

    def __init__(self, rate: int, duck_db: float, attack_s: float, release_s: float) -> None:
        self.rate = rate
        self.duck_db = duck_db
        self.attack = max(1, int(attack_s * rate))
        self.release = max(1, int(release_s * rate))
        self.spans: list[tuple[int, int]] = []  # clip sample ranges, in start order

    def add(self, start: int, length: int) -> None:
        if length > 0:
            self.spans.append((start, start + length))

    def gains(self, a: int, b: int) -> np.ndarray:
        """Linear gains for samples ``a..b``; spans that can no longer matter are dropped."""
        self.spans = [s for s in self.spans if s[1] + self.release > a]
        step = max(1, self.rate // 1000)  # 1 ms control rate, then interpolated
        t = np.arange(a, b + step, step, dtype=np.float64)
        depth = np.zeros_like(t)
        for start, end in self.spans:
            if start - self.attack >= b:
                break
            depth = np.maximum(depth, np.interp(
                t, [start - self.attack, start, end, end + self.release], [0, 1, 1, 0],
                left=0, right=0))
        control = (10 ** (self.duck_db * depth / 20)).astype(np.float32)
        if control.min() == control.max():  # no ramp here: most of a track
            return np.full(b - a, control[0], dtype=np.float32)
        return np.interp(np.arange(a, b), t, control).astype(np.float32)


@dataclass
class StreamOptions:
    loudness: float  # LUFS target
    true_peak: float  # dBTP ceiling
    background_db: float  # background level, dB
    duck_db: float  # ducking depth under speech, dB
    attack_s: float
    release_s: float
    gain_lookahead_s: float = 6.0  # seconds of speech heard before the gain is chosen
    max_hold_s: float = 120.0  # ... or this much finished track, whichever comes first
    slew_db_per_s: float = 0.5  # how fast the gain may follow the estimate afterwards
    tolerance_lu: float = 1.0  # off the target by more: a correction pass
    measure_true_peak: bool = False  # 4x oversampled peak in the streaming meter (slower)


class StreamingMix:
    """Lays clips over the background and finishes the track as it becomes final."""

    def __init__(self, background: Path, out: Path, options: StreamOptions,
                 ctx: JobContext, encode_args: tuple[str, ...] | None = None,
                 removal: Any = None, measure: bool = False,
                 channels: int | None = None, stretches: EncoderSpec | None = None,
                 centre: Path | None = None,
                 shared: list[tuple[float, float]] = (), layout: str | None = None) -> None:
        import soundfile

        self.options, self.out, self.ctx = options, out, ctx
        # Gains that take the original voice out (``background.StreamingRemoval``), or none;
        # out of the whole background, or, given a surround original's ``centre`` (mono, as
        # the background carries it in each channel), out of the centre alone.
        self.removal = removal
        self.centre = soundfile.SoundFile(str(centre)) if centre and removal else None
        # A surround dub (``layout``: the background's own, "5.1"...): the lines go into its
        # centre channel, and the voice is taken out of that channel alone.
        self.layout = layout
        names = channel_names(layout) if layout else []
        self.own_centre = names.index("FC") if "FC" in names else None
        self.shared = list(shared)  # ... but out of the whole background in these stretches
        # ffmpeg output arguments of the encoding to write (the muxer's), or 16-bit WAV; or
        # the limiter's output encoded in stretches on several CPUs (``parallel_encode``).
        self.encode_args = list(encode_args or FFMPEG_WAV)
        self.stretches = stretches
        self.encoder: ParallelEncoder | None = None
        self.feed: threading.Thread | None = None
        self.feed_errors: list[BaseException] = []
        self.bg = soundfile.SoundFile(str(background))
        self.rate, self.frames = self.bg.samplerate, self.bg.frames
        # The mix's channels: the background's, or one (a mono original delivered as stereo:
        # ``MediaInfo.channels``), its channels averaged as they are read.
        self.channels = channels or self.bg.channels
        self.downmix = self.channels == 1 and self.bg.channels > 1
        self.bg_gain = 10 ** (options.background_db / 20)
        self.envelope = DuckEnvelope(self.rate, options.duck_db, options.attack_s,
                                     options.release_s)
        self.meter = LoudnessMeter(self.rate, self.channels, layout)
        # The frame levels of the dub alone and of the background as mixed (mono, before the
        # common gain), for the quality figures (``measure``), taken as the mix advances.
        self.levels = (LevelMeter(self.rate), LevelMeter(self.rate)) if measure else None
        self.done = 0  # samples finished (handed on)
        self.speech = np.zeros(0, dtype=np.float32)  # clip samples from ``done`` on
        self.heard = 0  # clip samples added
        self.held: list[np.ndarray] = []
        self.held_samples = 0
        self.gain_db: float | None = None
        self.first_gain_db: float | None = None
        self._start_encoder()

    # -- the ffmpeg at the end of the pipe ------------------------------------------------
    def _start_encoder(self) -> None:
        o = self.options
        ceiling = 10 ** ((o.true_peak - 0.5) / 20)  # 0.5 dB left for inter-sample peaks
        meter = ("ebur128=framelog=quiet" + (":peak=true" if o.measure_true_peak else "")
                 + (":dualmono=true" if self.channels == 1 else ""))
        self.tmp = self.out.with_name(f".{self.out.stem}.part{self.out.suffix}")
        self.log = tempfile.TemporaryFile()
        output = ([*self.encode_args, str(self.tmp)] if self.stretches is None
                  else ["-f", "f32le", "-ac", str(self.channels), "pipe:1"])
        channels = (["-ch_layout", self.layout] if self.layout
                    else ["-ac", str(self.channels)])
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "info", "-nostats",
               "-f", "f32le", "-ar", str(self.rate), *channels, "-i", "pipe:0",
               "-af", f"alimiter=limit={ceiling:.5f}:level=false:attack=5:release=50,{meter}",
               *output]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stderr=self.log,
            stdout=subprocess.DEVNULL if self.stretches is None else subprocess.PIPE)
        self.ctx.track_process(self.proc)
        if self.stretches is not None:
            spec = self.stretches
            self.encoder = ParallelEncoder(self.tmp, self.rate, self.channels, spec.codec,
                                           spec.bit_rate, spec.options, spec.workers,
                                           layout=self.layout)
            self.feed = feed(self.proc.stdout, self.encoder, self.channels, self.feed_errors,
                             on_error=self.proc.kill)

    def _write(self, block: np.ndarray) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(memoryview(np.ascontiguousarray(block, dtype="<f4")))
        except BrokenPipeError as exc:
            self.ctx.check_cancelled()
            raise VideodubError("mixing: the limiter's ffmpeg stopped early") from exc

    # -- clips in, finished audio out -----------------------------------------------------
    def add(self, audio: np.ndarray, start_s: float) -> None:
        pos = max(int(round(start_s * self.rate)), self.done)
        self.finish_until(pos - self.envelope.attack)
        offset = pos - self.done
        need = offset + len(audio)
        if need > len(self.speech):
            self.speech = np.concatenate([self.speech, np.zeros(need - len(self.speech),
                                                                dtype=np.float32)])
        self.speech[offset:need] += audio
        self.envelope.add(pos, len(audio))
        self.heard += len(audio)

    def finish_until(self, upto: int) -> None:
        upto = min(upto, self.frames)
        chunk = int(CHUNK_S * self.rate)
        while self.done < upto:
            self.ctx.check_cancelled()
            n = min(chunk, upto - self.done)
            bg = _read(self.bg, n)
            if self.downmix:
                bg = to_mono(bg)[:, None]
            speech = self.speech[:n]
            if len(speech) < n:
                speech = np.concatenate([speech, np.zeros(n - len(speech), np.float32)])
            gains = self.bg_gain * self.envelope.gains(self.done, self.done + n)
            voice = None  # what is left of a surround original's centre, mono
            if self.removal is not None:
                kept = self.removal.gains(self.done, n, self.rate)
                if self.centre is None and self.own_centre is None:
                    gains = gains * kept
                else:
                    alone = (gain_envelope(n, self.done, self.rate, self.shared)
                             if self.shared else None)
                    if self.own_centre is None:
                        centre = _read(self.centre, n)[:, 0]
                        bg, whole = take_out_centre(bg, centre, kept, alone)
                    else:  # the centre is one of the background's channels
                        c = self.own_centre
                        centre = bg[:, c].copy()
                        left, whole = take_out_centre(bg[:, c:c + 1], centre, kept, alone)
                        bg[:, c] = left[:, 0]
                    if whole is not None:
                        gains = gains * whole
                    voice = kept * centre * gains * (1.0 if alone is None else alone)
            mixed = bg * gains[:, None]
            if self.levels:
                # The original's voice as mixed: the background, or the centre it is in alone
                # (and the background in a stretch where it is not).
                self.levels[0].add(speech)
                self.levels[1].add(to_mono(mixed) if voice is None else voice if alone is None
                                   else voice + (1.0 - alone) * to_mono(mixed))
            if self.own_centre is None:
                mixed += speech[:, None]
            else:
                mixed[:, self.own_centre] += speech
            self.speech = self.speech[n:]
            self.done += n
            self.meter.add(mixed)
            self._emit(mixed)

    def _emit(self, block: np.ndarray) -> None:
        o = self.options
        if self.gain_db is None:
            self.held.append(block)
            self.held_samples += len(block)
            if (self.heard >= o.gain_lookahead_s * self.rate
                    or self.held_samples >= o.max_hold_s * self.rate):
                self._release_held()
            return
        target = self._estimate()
        step = o.slew_db_per_s * len(block) / self.rate
        new = min(max(target, self.gain_db - step), self.gain_db + step)
        ramp = 10 ** (np.linspace(self.gain_db, new, len(block), dtype=np.float32) / 20)
        self.gain_db = new
        self._write(block * ramp[:, None])

    def _estimate(self) -> float:
        measured = self.meter.integrated()
        return self.options.loudness - measured if measured > ABSOLUTE_GATE else 0.0

    def _release_held(self) -> None:
        self.gain_db = self.first_gain_db = self._estimate()
        gain = 10 ** (self.gain_db / 20)
        for block in self.held:
            self._write(block * gain)
        self.held, self.held_samples = [], 0

    def abort(self) -> None:
        """Stop the ffmpeg and drop the unfinished file (after a failure; harmless after
        :meth:`close`)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.ctx.untrack_process(self.proc)
        if self.feed is not None:
            self.feed.join()
        if self.encoder is not None:
            self.encoder.abort()
        for f in (self.bg, self.centre):
            if f is not None and not f.closed:
                f.close()
        if not self.log.closed:
            self.log.close()
        self.tmp.unlink(missing_ok=True)

    def close(self) -> dict[str, float]:
        """Finish the track to the background's length; returns what the limiter's meter
        measured (``I``, and ``peak`` when measured) and the gains used."""
        try:
            self.finish_until(self.frames)
            if self.gain_db is None:
                self._release_held()
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait()
            if self.feed is not None:
                self.feed.join()
        finally:
            self.ctx.untrack_process(self.proc)
            self.bg.close()
            if self.centre is not None:
                self.centre.close()
            if self.proc.poll() is None:
                self.proc.kill()
        if self.ctx.cancel_event.is_set():
            self.tmp.unlink(missing_ok=True)
            raise Cancelled()
        self.log.seek(0)
        stderr = self.log.read().decode("utf-8", "replace")
        self.log.close()
        if self.feed_errors:
            self.tmp.unlink(missing_ok=True)
            raise encoding_failed(self.feed_errors[0])
        if self.proc.returncode != 0:
            self.tmp.unlink(missing_ok=True)
            last = [ln for ln in stderr.strip().splitlines() if ln.strip()][-1:] or ["no output"]
            raise VideodubError(f"mixing the dubbed audio failed: {last[0].strip()}")
        if self.encoder is not None:
            try:
                self.encoder.close()
            except Exception as exc:
                self.tmp.unlink(missing_ok=True)
                error = encoding_failed(exc)
                if error is exc:
                    raise
                raise error from exc
        result = parse_summary(stderr)
        result.update(first_gain=self.first_gain_db or 0.0, last_gain=self.gain_db or 0.0)
        self.tmp.replace(self.out)
        return result


def _read(f, n: int) -> np.ndarray:
    """The next ``n`` samples of ``f`` (samples x channels), silence past its end."""
    block = f.read(n, dtype="float32", always_2d=True)
    if len(block) < n:
        block = np.concatenate([block, np.zeros((n - len(block), f.channels), np.float32)])
    return block


def encoding_failed(exc: BaseException) -> BaseException:
    """The error to raise for a failed encoder: a full disk as itself (the runner names the
    folder that is full), anything else as one line."""
    if is_no_space(exc):
        return exc
    return VideodubError(f"encoding the dubbed audio failed: {exc}")


def parse_summary(stderr: str) -> dict[str, float]:
    summary = stderr[stderr.rfind("Summary:"):]
    loud = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    if not loud:
        raise VideodubError("mixing: ffmpeg ebur128 printed no loudness summary")
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)

    def value(match: re.Match) -> float:
        return -120.0 if match.group(1) == "-inf" else float(match.group(1))

    out = {"I": value(loud)}
    if peak:
        out["peak"] = value(peak)
    return out


def correct(path: Path, gain_db: float, ceiling_db: float, ctx: JobContext,
            encode_args: tuple[str, ...] | None = None) -> None:
    """One pass over a finished track: ``gain_db`` and a limiter at ``ceiling_db``."""
    tmp = path.with_name(f".{path.stem}.fix{path.suffix}")
    encode = list(encode_args or FFMPEG_WAV)
    try:
        run_ffmpeg(["-v", "error", "-i", str(path), "-af",
                    f"volume={gain_db:.3f}dB,alimiter=limit={10 ** (ceiling_db / 20):.5f}"
                    f":level=false:attack=5:release=50", *encode, str(tmp)],
                   ctx, what="correcting the dubbed audio's loudness")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
