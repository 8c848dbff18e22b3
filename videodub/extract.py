"""The input's first audio stream decoded once, in this process, into the WAVs later stages
read: the 16 kHz mono speech and the mixing audio.

PyAV (FFmpeg's own decoders and resampler, the ones the ffmpeg command uses) in-process instead
of one ffmpeg command per output: the stream is decoded once instead of twice, without two
processes' start-up and threads, and the speech is whole sooner (on a one-minute talk 100 ms
of CPU against 240-290 ms, the speech whole after 105 ms against 117-160 ms; see
docs/benchmarks.md). The samples are the ffmpeg command's (``-ac/-ar``, with
``aresample=async=1:first_pts=0``: on the picture's timeline, see :class:`Timeline`), to a
least significant bit. Frames are gathered into blocks of about a second before they are resampled:
PyAV's resampler and a file write per 1024-sample frame cost three times the decode.

A stream this cannot set up (a decoder the PyAV build lacks, a channel layout it cannot name)
raises :class:`Unsupported` before anything is written; ingest then runs ffmpeg instead.
A packet that does not decode is skipped, as the ffmpeg command does (``validation=full``
refuses such a file); what it held becomes silence if it leaves a gap of 0.1 s or more."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videodub.errors import VideodubError, is_no_space, no_space
from videodub.surround import CentreShare
from videodub.wav import WavWriter

# Source samples gathered before each resampling (about a second at 48 kHz).
BLOCK_SAMPLES = 48_000
# Source samples held back until the end: decoded samples past the stream's declared duration
# (a codec's padding of its last frame, such as AAC's in MP4) are dropped, as the ffmpeg
# command drops them, when there are no more than this many (more would be audio the
# declared duration leaves out, which is kept).
END_HOLD = 8192
# Timestamps and samples apart by more than this (seconds) are brought together (silence
# inserted, or samples dropped): ffmpeg's ``aresample`` threshold. Less is timestamp rounding
# (milliseconds in Matroska) or a lost packet. At the stream's start any delay counts.
TOLERANCE_S = 0.1
START_TOLERANCE_S = 0.001
# An overlap longer than this is a timestamp reset (files joined end to end), not audio given
# twice: the audio goes on from where it was, as before, instead of being dropped to the end.
RESET_S = 1.0
# In formats whose timestamps may jump (MPEG-TS: AVFMT_TS_DISCONT), any jump back, or one
# forward past this, is such a discontinuity, as ffmpeg treats them (its dts_delta_threshold).
DISCONTINUITY_S = 10.0
TS_DISCONT = 0x0200
# What a decoded sample format's integers are divided by to be -1..1 floats (as swresample).
_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}
# Packed sample formats FFmpeg decodes to, and their numpy types (planar ones end in "p").
_DTYPES = {"u8": np.dtype(np.uint8), "s16": np.dtype(np.int16), "s32": np.dtype(np.int32),
           "flt": np.dtype(np.float32), "dbl": np.dtype(np.float64)}


class Unsupported(Exception):
    """The stream cannot be decoded here; nothing has been written."""


class Damaged(VideodubError):
    """A packet of the stream did not decode (``strict``): ``decoding <name> failed: ...``."""


@dataclass(frozen=True)
class Decoded:
    """What an extraction met: packets skipped (they did not decode), and the timestamp
    gaps filled with silence / overlaps dropped to keep the audio on the picture's timeline
    (a late start is not counted: ingest knows it from the probe)."""

    skipped: int = 0
    gaps: int = 0
    filled_s: float = 0.0
    dropped_s: float = 0.0
    resets: int = 0  # timestamp jumps the audio was kept continuous over
    # A source with a front-centre channel and others beside it (5.1, 7.1, 3.0...): how much
    # of the other channels is the centre's signal where the centre is loud (see
    # :class:`CentreShare`); None when there is no such channel.
    centre_share: float | None = None
    centre_sections: tuple = ()  # the same, in sections of the source (``CentreShare.sections``)
    layout: str | None = None  # what an ``own_layout`` output was written in


@dataclass(frozen=True)
class WavOut:
    """One output: a 16-bit PCM WAV at ``rate`` with ``channels`` (1 or 2). With ``centre``
    (one channel): only the source's front-centre channel, at the share of it the stereo
    output carries in each of its channels (the same downmix with the others silent), so
    that the stereo output less it is the source without its centre; silence when the
    source has no centre beside other channels (a mono source's one channel is not one)."""

    path: Path
    rate: int
    channels: int
    centre: bool = False
    # The source's own channels in its own layout (the first the stream has; ``channels``
    # is then taken from it): a surround original for a surround dub.
    own_layout: bool = False


class _Writer:
    """One output's resampler and WAV file (the header is written first, its sizes at
    :meth:`close`, so a reader may follow the file as it grows; RF64 past 4 GiB)."""

    def __init__(self, out: WavOut) -> None:
        self.out = out
        self.layout: str | None = None
        self.channels = out.channels
        self.file = None if out.own_layout else WavWriter(out.path, out.rate, out.channels)
        self.resampler = None

    def start(self, av, source_layout: str) -> None:
        """A new resampler (at the start, and after the source's format changed)."""
        self.flush()
        if self.out.own_layout:
            if self.file is None:
                self.layout = source_layout
                self.channels = av.AudioLayout(source_layout).nb_channels
                self.file = WavWriter(self.out.path, self.out.rate, self.channels)
            layout = self.layout
        else:
            layout = "mono" if self.out.channels == 1 and not self.out.centre else "stereo"
        self.resampler = av.AudioResampler(format="s16", layout=layout, rate=self.out.rate)

    def write(self, frame) -> None:
        for part in self.resampler.resample(frame):
            if self.out.centre:  # the stereo downmix's left channel (both carry the centre)
                data = np.frombuffer(part.planes[0], np.int16, part.samples * 2)[::2].tobytes()
            else:
                data = bytes(part.planes[0])[:part.samples * 2 * self.channels]
            self.file.write(data)

    def flush(self) -> None:
        if self.resampler is not None:
            self.write(None)
            self.resampler = None

    def close(self) -> None:
        self.flush()
        if self.file is not None:
            self.file.close()


def _planar(frame) -> np.ndarray:
    """A decoded frame as float32, channels x samples. Read from its planes directly:
    ``to_ndarray`` stacks them with numpy's ``vstack``, which is most of the time a frame
    takes here."""
    fmt, samples = frame.format, frame.samples
    planar = fmt.is_planar
    dtype = _DTYPES.get(fmt.name[:-1] if planar else fmt.name)
    if dtype is None:  # a format not in the table: PyAV's own conversion
        data = frame.to_ndarray()
        if not planar:
            data = data.reshape(-1, frame.layout.nb_channels).T
    elif planar:
        planes = frame.planes
        data = np.empty((len(planes), samples), dtype)
        for i, plane in enumerate(planes):
            data[i] = np.frombuffer(plane, dtype, samples)
    else:
        channels = frame.layout.nb_channels
        data = np.frombuffer(frame.planes[0], dtype, samples * channels).reshape(-1, channels).T
    if data.dtype in _SCALE:
        data = data / _SCALE[data.dtype]
    elif data.dtype == np.uint8:
        data = (data.astype(np.float32) - 128.0) / 128.0
    return np.ascontiguousarray(data, dtype=np.float32)


def decode_to_wavs(source: Path, outputs: list[WavOut], what: str,
                   check: Callable[[], None] = lambda: None, strict: bool = False,
                   track: int = 0) -> Decoded:
    """Decode ``source``'s audio track number ``track`` (0: the first) into each of ``outputs`` (see :class:`Decoded`
    for what it returns). Raises :class:`Unsupported` before writing anything when
    the stream cannot be set up here, VideodubError (one line) for a failure after; with
    ``strict``, a packet that does not decode is such a failure too (``Damaged``), as
    ``ffmpeg -xerror`` stops at it."""
    import av

    try:
        container = av.open(str(source))
    except av.error.FFmpegError as exc:
        raise Unsupported(str(exc)) from exc
    writers: list[_Writer] = []
    timeline = Timeline((container.start_time or 0) / 1_000_000,
                        discontinuous=bool(container.format.flags & TS_DISCONT))
    try:
        try:
            stream = container.streams.audio[track]
            decoded_packets = _decoded(stream, container.demux(stream),
                                       source if strict else None)
            first, skipped = [], 0
            for frames in decoded_packets:  # up to the first frames, to set up on
                if frames is None:
                    skipped += 1
                elif frames:
                    first = frames
                    break
            key = _key(first[0]) if first else None
            if key is not None:
                _frame(av, _planar(first[0]), *key)
        except (av.error.FFmpegError, ValueError, IndexError, KeyError, AttributeError) as exc:
            raise Unsupported(str(exc)) from exc
        try:
            for out in outputs:
                writers.append(_Writer(out))
                writers[-1].start(av, key[1] if key else "mono")
            centre_writers = any(out.centre for out in outputs)
            share = CentreShare(key[1] if key else "mono")
            block: list[np.ndarray] = []
            held = decoded = 0
            declared = _declared_samples(container, stream)

            def emit(keep: int = 0) -> None:
                """Resample what is gathered, all but its last ``keep`` samples."""
                nonlocal block, held
                if held <= keep:
                    return
                data = np.concatenate(block, axis=1) if len(block) > 1 else block[0]
                block = [data[:, held - keep:]] if keep else []
                data = np.ascontiguousarray(data[:, :held - keep])
                frame = _frame(av, data, *key)
                if centre_writers:
                    share.add(data, key[0])
                    only = np.zeros_like(data)
                    if share.centre is not None:
                        only[share.centre] = data[share.centre]
                    centre_frame = _frame(av, only, *key)
                for w in writers:
                    w.write(centre_frame if w.out.centre else frame)
                held = keep

            for frame in _frames(first, decoded_packets):
                if frame is None:
                    skipped += 1
                    continue
                k = _key(frame)
                if k != key:  # the stream changed rate or layout: resample anew from here
                    emit()
                    key, declared = k, None
                    share.layout(key[1])
                    for w in writers:
                        w.start(av, key[1])
                for data in timeline.place(frame, _planar(frame)):
                    block.append(data)
                    held += data.shape[1]
                decoded += frame.samples
                if held >= BLOCK_SAMPLES + END_HOLD:
                    emit(keep=END_HOLD)
                    check()
            past = decoded - declared if declared is not None else 0
            if 0 < past <= min(held, END_HOLD):
                data = np.concatenate(block, axis=1)
                block, held = [data[:, :held - past]], held - past
            emit()
            layout = next((w.layout for w in writers if w.out.own_layout), None)
            for w in writers:
                w.close()
            writers = []
        except OSError as exc:
            if is_no_space(exc):
                failed = next((w.out.path for w in writers), outputs[0].path)
                raise no_space(OSError(exc.errno or errno.ENOSPC, exc.strerror, str(failed)),
                               what) from exc
            raise VideodubError(f"{what} failed: {exc}") from exc
        except av.error.FFmpegError as exc:
            raise VideodubError(f"{what} failed: {exc.strerror or exc}") from exc
        except ValueError as exc:  # a layout the stream changed to that PyAV cannot name
            raise VideodubError(f"{what} failed: {exc}") from exc
    finally:
        for w in writers:  # after a failure: close the files (the caller removes them)
            try:
                if w.file is not None:
                    w.file.close()
            except OSError:
                pass
        container.close()
    return Decoded(skipped, timeline.gaps, round(timeline.filled, 3), round(timeline.dropped, 3),
                   timeline.resets, share.result() if centre_writers else None,
                   tuple(share.sections()) if centre_writers else (), layout)


class Timeline:
    """Where the decoded samples go on the input's timeline, the one the muxer's copy of the
    video is on (it starts at the container's start): a stream that starts later than the
    container is preceded by that much silence, and later a gap in its timestamps (dropped
    audio in a recording, a cut) is filled with silence and an overlap dropped, as ffmpeg's
    ``aresample=async=1:first_pts=0`` does. Without this the dub of an input whose audio
    starts 1.5 s into its picture would play 1.5 s early, and every line after a gap would
    be early by the gap. A jump that is a reset of the timestamps, not a gap (``RESET_S``,
    ``DISCONTINUITY_S``), is stepped over: the audio goes on from where it was."""

    def __init__(self, origin_s: float, discontinuous: bool = False) -> None:
        self.origin = origin_s
        self.discontinuous = discontinuous
        self.at = 0.0  # seconds of the timeline laid so far
        self.gaps, self.filled, self.dropped, self.resets = 0, 0.0, 0.0, 0  # after the start

    def place(self, frame, data: np.ndarray) -> list[np.ndarray]:
        """The frame's samples (channels x samples), with silence before them or some of
        them dropped to put them at their timestamp."""
        rate = frame.sample_rate
        pts, base = frame.pts, frame.time_base
        if pts is not None and base is not None:
            # Not pts * base: Fraction arithmetic per frame costs more than the rest of this.
            off = pts * base.numerator / base.denominator - self.origin - self.at
            if self.at and (off < -RESET_S or self.discontinuous
                            and (off < -TOLERANCE_S or off > DISCONTINUITY_S)):
                self.origin += off  # a reset: timestamps from here are counted anew
                self.resets += 1
                off = 0.0
            if off > (START_TOLERANCE_S if self.at == 0.0 else TOLERANCE_S):
                silence = np.zeros((data.shape[0], round(off * rate)), dtype=np.float32)
                if self.at:
                    self.gaps += 1
                    self.filled += silence.shape[1] / rate
                self.at += (silence.shape[1] + data.shape[1]) / rate
                return [silence, data]
            if off < -TOLERANCE_S:
                cut = min(data.shape[1], round(-off * rate))
                self.gaps += 1
                self.dropped += cut / rate
                data = data[:, cut:]
        self.at += data.shape[1] / rate
        return [data]


def _frame(av, data: np.ndarray, rate: int, layout: str):
    """An audio frame of ``data`` (float32, channels x samples). Planar, or packed from eight
    channels on (7.1): PyAV's ``from_ndarray`` asks a planar frame of eight channels for a
    ninth plane."""
    if data.shape[0] < 8:
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)
    else:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.T).reshape(1, -1),
                                           format="flt", layout=layout)
    frame.sample_rate = rate
    return frame


def _declared_samples(container, stream) -> int | None:
    """The stream's length in samples as an MP4 or QuickTime file declares it (its edit list);
    None for other containers, whose durations may be estimates (from the bit rate, say)."""
    if "mp4" not in container.format.name.split(","):
        return None
    if not stream.duration or not stream.time_base or not stream.codec_context.sample_rate:
        return None
    return round(float(stream.duration * stream.time_base) * stream.codec_context.sample_rate)


def _key(frame) -> tuple[int, str]:
    return frame.sample_rate, frame.layout.name


def _frames(first: list, decoded_packets):
    """The frames from ``first`` on, one by one; None for a packet that did not decode."""
    yield from first
    for frames in decoded_packets:
        if frames is None:
            yield None
        else:
            yield from frames


def _decoded(stream, packets, strict: Path | None):
    """Each packet's decoded frames, in order; None for a packet that did not decode
    (skipped, as ffmpeg does), or :class:`Damaged` when ``strict`` names the source."""
    import av

    for packet in packets:
        try:
            yield stream.decode(packet)
        except av.error.FFmpegError as exc:
            if strict is not None:
                raise Damaged(f"decoding {strict.name} failed: {exc.strerror or exc} "
                              f"(audio stream)") from exc
            yield None
