"""The dub track's AAC encoded on every CPU: stretches of the track encoded side by side and
joined at frame boundaries into one MP4 audio file.

ffmpeg's AAC encoder runs on one thread, and on a long dub it was the last thing running once
the clips were in (about 0.5 CPU-s per minute of mono speech at 64 kbit/s). An AAC stream is a
sequence of 1024-sample frames, each decoded on its own and overlap-added with the one before;
the encoder keeps no state a decoder needs. So a stretch of the track can be encoded by its own
encoder and its frames put after the previous stretch's, provided both encoders cut the signal
into frames at the same sample positions and see the same signal around the join:

- every stretch starts on the frame grid, a run-up of frames before its first kept frame, so
  its encoder has settled — rate control, psychoacoustic state, window decisions — by then;
- every stretch but the last runs ``POST`` frames past its last kept frame, so its encoder
  decides the last frames' windows on the real signal, not the end of its input;
- a packet is kept from the encoder whose stretch it belongs to, by its timestamp.

Decoded, a join differs from the input by no more than the codec's own error around it (tested
in ``tests/unit/test_parallel_encode.py`` on speech with clicks). The encoders run in threads:
PyAV (already there for faster-whisper's decoding) releases the GIL while it encodes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from videodub.errors import VideodubError

FRAME = 1024  # AAC-LC samples per frame
# Frames encoded before a stretch's first kept frame, and about how much track one encoder
# call takes, per AAC coder. ffmpeg's rate control starts from a fixed guess: the fast coder
# has settled within about 16 frames; twoloop carries its state for seconds, so it gets a
# 2.7 s run-up (and longer stretches, which keep that run-up to 14 % more work).
RUN_UP = {"fast": 16, "twoloop": 128}
STRETCH_S = {"fast": 10.0, "twoloop": 20.0}
POST = 2  # frames encoded after a stretch's last kept frame
BLOCK = 48 * FRAME  # samples per frame handed to PyAV
# When no samples have come for ``IDLE_S`` (the mix waits for a clip: recognition is still on
# the next window), what is buffered is encoded at once if it is at least this share of a
# stretch: the CPUs are free then, and less is left for the end.
IDLE_S = 0.15
IDLE_SHARE = 0.4


def splices(codec: str | None, options: dict[str, str]) -> bool:
    """Whether stretches of this encoding can be joined: AAC with one of ffmpeg's coders this
    module knows the run-up of."""
    return codec == "aac" and options.get("aac_coder", "fast") in RUN_UP


@dataclass(frozen=True)
class EncoderSpec:
    """An encoding for :class:`ParallelEncoder`: codec, bit/s, codec options, threads."""

    codec: str
    bit_rate: int
    options: dict[str, str] = field(default_factory=dict)
    workers: int = 2


class ParallelEncoder:
    """Takes the track in order (:meth:`write`), encodes it in stretches ``workers`` at a time
    and writes the packets in order to ``out`` (MP4 audio), as each stretch is done.

    Memory is bounded: :meth:`write` waits while ``2 * workers`` stretches are unfinished.
    """

    def __init__(self, out: Path, rate: int, channels: int, codec: str, bit_rate: int,
                 options: dict[str, str] | None = None, workers: int = 2,
                 stretch_s: float | None = None, layout: str | None = None) -> None:
        import av

        if not splices(codec, dict(options or {})):
            raise ValueError(f"{codec} {options} streams cannot be encoded in stretches")
        self.rate, self.channels = rate, channels
        self.codec, self.bit_rate, self.options = codec, bit_rate, dict(options or {})
        self.layout = layout or ("mono" if channels == 1 else "stereo")
        coder = self.options.get("aac_coder", "fast")
        stretch_s = STRETCH_S[coder] if stretch_s is None else stretch_s
        self.stretch = max(1, round(stretch_s * rate / FRAME)) * FRAME
        self.run_up = RUN_UP[coder] * FRAME
        self.workers = max(1, workers)
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="videodub-encode")
        self.limit = 2 * self.workers
        self.pending: deque[Future] = deque()
        # Received samples not yet handed to an encoder whole: from ``base`` on.
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        self.base = 0  # the first buffered sample's index in the track
        self.next = 0  # the next stretch's first kept sample
        # The movie timescale is the sample rate, so the edit list ends on the last sample.
        self.container = av.open(str(out), "w", format="mp4",
                                 options={"movie_timescale": str(rate)})
        self.stream = self.container.add_stream(codec, rate=rate, layout=self.layout)
        self.stream.codec_context.bit_rate = bit_rate
        self.stream.codec_context.options = dict(self.options)
        self.stream.time_base = Fraction(1, rate)
        self.closed = False

    # -- in ------------------------------------------------------------------------------
    def write(self, block: np.ndarray) -> None:
        """``block``: (samples, channels) float32, the track's next samples."""
        if len(block):
            self.buffer.append(np.asarray(block, dtype=np.float32).reshape(-1, self.channels))
            self.buffered += len(block)
        while self.base + self.buffered >= self.next + self.stretch + POST * FRAME:
            self._submit(self.next + self.stretch, last=False)

    def flush(self) -> bool:
        """Encode what is buffered now, as a shorter stretch, if it is at least ``IDLE_SHARE``
        of a stretch (the stretch's frames past its end must be here too); True if it did."""
        end = (self.base + self.buffered) // FRAME * FRAME - POST * FRAME
        if end - self.next < IDLE_SHARE * self.stretch:
            return False
        self._submit(end, last=False)
        return True

    def _submit(self, end: int, last: bool) -> None:
        """Hand samples ``next - run_up .. end (+ POST frames)`` to an encoder."""
        first = max(0, self.next - self.run_up)
        upto = self.base + self.buffered if last else end + POST * FRAME
        data = np.concatenate(self.buffer) if len(self.buffer) > 1 else self.buffer[0]
        samples = data[first - self.base:upto - self.base]
        # Keep what the next stretch needs (its run-up) and drop the rest.
        start_next = max(0, end - self.run_up)
        self.buffer = [data[start_next - self.base:]]
        self.buffered = len(self.buffer[0])
        self.base = start_next
        keep_from = self.next if self.next else None  # the first stretch keeps its priming
        keep_to = None if last else end
        while len(self.pending) >= self.limit or self.pending and self.pending[0].done():
            self._mux(self.pending.popleft().result())
        self.pending.append(self.pool.submit(self._encode, samples, first, keep_from, keep_to))
        self.next = end

    # -- one stretch -------------------------------------------------------------------------
    def _encode(self, samples: np.ndarray, first: int, keep_from: int | None,
                keep_to: int | None) -> list[tuple[int, int, bytes]]:
        """Packets (pts, duration, data) of samples starting at track sample ``first``, those
        with ``keep_from <= pts < keep_to``."""
        import av

        ctx = av.CodecContext.create(self.codec, "w")
        ctx.sample_rate, ctx.layout, ctx.format = self.rate, self.layout, "fltp"
        ctx.bit_rate, ctx.time_base = self.bit_rate, Fraction(1, self.rate)
        ctx.options = dict(self.options)
        ctx.open()
        planar = np.ascontiguousarray(samples.T)
        out: list[tuple[int, int, bytes]] = []

        def take(packets) -> None:
            for p in packets:
                if (keep_from is None or p.pts >= keep_from) and (keep_to is None
                                                                  or p.pts < keep_to):
                    out.append((p.pts, p.duration, bytes(p)))

        # Handed over a second at a time: PyAV cuts it into the codec's frames itself (the
        # same packets as frame by frame, with less Python per frame).
        for i in range(0, planar.shape[1], BLOCK):
            frame = planar_frame(av, planar[:, i:i + BLOCK], self.layout)
            frame.sample_rate, frame.pts = self.rate, first + i
            frame.time_base = ctx.time_base
            take(ctx.encode(frame))
        take(ctx.encode(None))
        return out

    # -- out -------------------------------------------------------------------------------
    def _mux(self, packets: list[tuple[int, int, bytes]]) -> None:
        import av

        for pts, duration, data in packets:
            packet = av.Packet(data)
            packet.pts = packet.dts = pts
            packet.duration = duration
            packet.time_base = self.stream.time_base
            packet.stream = self.stream
            self.container.mux(packet)

    def close(self) -> None:
        """Encode what is left, write the rest and finish the file. What is left is shared
        among the workers, so the last stretch does not run on one CPU alone."""
        total = self.base + self.buffered
        if total <= self.next:
            raise VideodubError("encoding the dubbed audio: the track is empty")
        parts = min(self.workers, max(1, (total - self.next) // (self.run_up + 64 * FRAME)))
        step = -(-(total - self.next) // parts // FRAME) * FRAME
        for _ in range(parts - 1):
            if self.next + step + POST * FRAME >= total:
                break
            self._submit(self.next + step, last=False)
        self._submit(total, last=True)
        while self.pending:
            self._mux(self.pending.popleft().result())
        self.container.close()
        self.pool.shutdown()
        self.closed = True

    def abort(self) -> None:
        """Stop without finishing (the file is left for the caller to remove)."""
        for future in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)
        if not self.closed:
            self.closed = True
            try:
                self.container.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away
                pass


def planar_frame(av, data: np.ndarray, layout: str):
    """An ``fltp`` frame of ``data`` (channels x samples). From eight channels on (7.1) its
    planes are filled one by one: PyAV's ``from_ndarray`` asks such a frame for a ninth."""
    if data.shape[0] < 8:
        return av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="fltp",
                                          layout=layout)
    frame = av.AudioFrame(format="fltp", layout=layout, samples=data.shape[1])
    planes = frame.planes
    for channel in range(data.shape[0]):
        planes[channel].update(np.ascontiguousarray(data[channel]).tobytes())
    return frame


def feed(stream, encoder: ParallelEncoder, channels: int, errors: list[BaseException],
         on_error: Callable[[], None], block_samples: int = 48_000) -> threading.Thread:
    """A thread copying interleaved f32le samples from ``stream`` (a pipe) into ``encoder``,
    which encodes what it has when the pipe goes quiet for ``IDLE_S`` (:meth:`~ParallelEncoder
    .flush`). An exception it meets is appended to ``errors`` and ``on_error`` is called (to
    stop the writer at the other end of the pipe, which would otherwise wait for a reader)."""

    def run() -> None:
        import os
        import select

        fd = stream.fileno()
        size = block_samples * channels * 4
        frame = 4 * channels
        rest = b""
        flushed = True  # nothing new since the last flush
        try:
            while True:
                if not select.select([fd], [], [], IDLE_S)[0]:
                    if not flushed:
                        flushed = encoder.flush()
                    continue
                chunk = os.read(fd, size)
                if not chunk:
                    break
                chunk = rest + chunk
                whole = len(chunk) // frame * frame
                rest = chunk[whole:]
                encoder.write(np.frombuffer(chunk[:whole], dtype="<f4").reshape(-1, channels))
                flushed = False
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits
            errors.append(exc)
            on_error()

    thread = threading.Thread(target=run, name="videodub-encode-feed", daemon=True)
    thread.start()
    return thread
