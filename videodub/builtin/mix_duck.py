"""mix=duck: lay the dubbed clips over the original audio, ducked under the speech, then
normalise loudness (EBU R128) to a stated target.

By default (``streaming``) the track is finished as clips arrive (``videodub.streammix``):
ducking from the clips' positions, the gain predicted from the loudness so far, a limiter and
a meter that stream, so little is left after the last clip. With ``streaming=false`` the
speech track is written to disk as clips arrive, in start order, keeping only the overlap
window in memory; then background ducking (a sidechain compressor) and loudness normalisation
run in ffmpeg over the whole track, in two passes. A long video is never held in memory as
one array either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from videodub import hookimpl
from videodub.config import Effort
from videodub.errors import VideodubError
from videodub.background import (StreamingRemoval, removal_spans, removes_original,
                                 write_background)
from videodub.media import run_ffmpeg
from videodub.machine import Machine
from videodub.model import DubEncoding, JobContext, MediaInfo, Segment, WorkerHint
from videodub.parallel_encode import EncoderSpec, splices
from videodub.placement import ClipPlacer, placed
from videodub.separation import DEFAULT_MODEL_URL, fetch_model, separate_background
from videodub.speech_regions import LevelMeter
from videodub.surround import channel_names
from videodub.voice_activity import source_regions_of_file, source_regions_until
from videodub.wav import FFMPEG_WAV, wav_format


@dataclass
class DuckMixOptions:
    # Integrated loudness target of the dubbed track, LUFS.
    loudness: float = -16.0
    # True-peak ceiling, dBTP.
    true_peak: float = -1.5
    # Background level relative to the original, dB, applied everywhere.
    background_db: float = -4.0
    # Sidechain compressor that ducks the background while dubbed speech plays.
    duck_threshold: float = 0.01
    duck_ratio: float = 20.0
    duck_attack_ms: float = 20.0
    duck_release_ms: float = 400.0
    # Build the track while clips arrive (ducking from clip positions, predicted gain); false:
    # the two-pass mix after the last clip (sidechain compressor, measured gain).
    streaming: bool = True
    # Streaming: how far the background is ducked under speech, dB.
    duck_db: float = -18.0
    # Streaming, AAC: threads encoding stretches of the track side by side (joined at frame
    # boundaries); 0 = the CPUs the job has, 1 = one encoder over the whole track.
    encode_workers: int = 0
    # The original voice: auto = removed where the source speaks for a dub into another
    # language, ducked for a same-language re-voice; remove; duck; separate = taken out by a
    # source-separation model, the background kept at its level under the dub.
    original_voice: str = "auto"
    # separate: the MDX-Net ONNX model, a local file or a URL fetched once into the cache.
    separator_model: str = DEFAULT_MODEL_URL
    # separate: the model file's SHA-256, checked on every use ("" = not checked).
    separator_sha256: str = ""
    # separate: allow fetching a model that is not cached yet.
    separator_download: bool = True
    # A surround original (5.1, 7.1...) whose voice is in its centre channel is dubbed in its
    # own channels, the dub in the centre (streaming, auto or remove); false: in stereo.
    surround: bool = True

    def __post_init__(self) -> None:
        if self.original_voice not in ("auto", "remove", "duck", "separate"):
            raise ValueError("original_voice must be auto, remove, duck or separate, got "
                             f"{self.original_voice}")
        if not -70.0 <= self.loudness <= -5.0:
            raise ValueError(f"loudness must be between -70 and -5 LUFS, got {self.loudness}")
        if not -9.0 <= self.true_peak <= 0.0:
            raise ValueError(f"true_peak must be between -9 and 0 dBTP, got {self.true_peak}")
        if not 1.0 <= self.duck_ratio <= 20.0:
            raise ValueError(f"duck_ratio must be between 1 and 20, got {self.duck_ratio}")
        if not -60.0 <= self.duck_db <= 0.0:
            raise ValueError(f"duck_db must be between -60 and 0 dB, got {self.duck_db}")
        if self.encode_workers < 0:
            raise ValueError(f"encode_workers must be 0 (auto) or more, got {self.encode_workers}")


class SpeechTrackWriter:
    """Writes clips at their start times into a mono WAV, holding only overlapping tails;
    ``frames`` is about how long it will be (RF64 past what a RIFF WAV holds)."""

    def __init__(self, path: Path, rate: int, frames: int = 0) -> None:
        import soundfile

        self.rate = rate
        self.file = soundfile.SoundFile(str(path), "w", samplerate=rate, channels=1,
                                        subtype="FLOAT", format=wav_format(frames, 1, 4))
        self.written = 0  # samples already on disk
        self.pending = np.zeros(0, dtype=np.float32)  # samples from ``written`` onwards

    def add(self, audio: np.ndarray, start_s: float) -> None:
        pos = max(int(round(start_s * self.rate)), self.written)
        if pos > self.written + len(self.pending):
            self._flush(len(self.pending))
            gap = pos - self.written
            self.file.write(np.zeros(gap, dtype=np.float32))
            self.written += gap
        else:
            self._flush(pos - self.written)
        need = len(audio)
        if need > len(self.pending):
            self.pending = np.concatenate([self.pending, np.zeros(need - len(self.pending),
                                                                  dtype=np.float32)])
        self.pending[:need] += audio

    def _flush(self, n: int) -> None:
        if n > 0:
            self.file.write(self.pending[:n])
            self.pending = self.pending[n:]
            self.written += n

    def close(self, total_s: float) -> None:
        self._flush(len(self.pending))
        total = int(round(total_s * self.rate))
        if total > self.written:
            self.file.write(np.zeros(total - self.written, dtype=np.float32))
        self.file.close()


class DuckMixer:
    def __init__(self, options) -> None:
        self.options = options
        self.encoding: DubEncoding | None = None

    def encode_as(self, encoding: DubEncoding) -> None:
        """Streaming, write the track encoded the muxer's way (it then copies it)."""
        self.encoding = encoding

    def keeps_surround(self) -> bool:
        """A surround original is dubbed in its own channels: streaming, with the voice
        taken out of the centre, and a muxer that encodes surround (when it says how)."""
        return (bool(getattr(self.options, "surround", False))
                and getattr(self.options, "streaming", False)
                and self.options.original_voice in ("auto", "remove")
                and (self.encoding is None or bool(self.encoding.surround_bit_rate)))

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=200, max_concurrency=1,
                          reason="one speech track, written in order")

    def mix(self, segments: Iterable[Segment], media: MediaInfo, ctx: JobContext) -> Path:
        if getattr(self.options, "streaming", False):
            return self._mix_streaming(segments, media, ctx)
        rate = media.sample_rate
        speech_path = ctx.work_dir / "speech_track.wav"
        writer = SpeechTrackWriter(speech_path, rate, int(media.duration * rate))
        placer = ClipPlacer(media.duration)
        kept: list[tuple[float, float]] = []  # lines where the original plays instead
        lines: list[tuple[float, float]] = []  # dubbed lines: the original voice goes there
        done = False

        def unvoiced(seg: Segment) -> None:
            if "kept_original" in seg.flags:
                kept.append((seg.start, seg.end))

        try:
            for seg, audio, start in placed(segments, rate, ctx, placer, unvoiced,
                                            fine=self.options.effort != Effort.low):
                lines.append((seg.start, seg.end))
                writer.add(audio, start)
            done = True
        finally:
            writer.close(media.duration if done else 0.0)
        ctx.artifacts["speech_track"] = speech_path
        out = ctx.work_dir / "dub_mix.wav"
        self._render(media, speech_path, out, ctx, self._background(media, kept, ctx, lines))
        return out

    def _mix_streaming(self, segments: Iterable[Segment], media: MediaInfo,
                       ctx: JobContext) -> Path:
        """The streaming mix over the background this mode asks for: a separated one (neither
        lowered nor ducked), the original with its voice taken out a stretch at a time as the
        mix advances, or the original ducked."""
        o, background, removal = self._levels(media), media.full_audio, None
        if self.options.original_voice == "separate":
            background = self._background(media, [], ctx)
        elif removes_original(self.options.original_voice, ctx.source_lang, ctx.target_lang):
            # Asked for what the mix has reached: the regions come good as far as the
            # transcriber's probabilities go (further than any clip that has arrived);
            # asking ahead of them would run the model over windows it is about to give.
            removal = StreamingRemoval(partial(source_regions_until, media.speech_audio))
        ctx.artifacts.update(background_ducked=False, background_gain_db=0.0)
        layout = None
        if (media.surround_audio is not None and removal is not None
                and self._centre(media) is not None and self.keeps_surround()):
            background, layout = media.surround_audio, media.surround_layout
            ctx.note(f"mix: dubbed in {layout}, the original's own channels: the dub in the "
                     f"centre, the others as they are")
        out = mix_streaming(o, segments, media, ctx, self.encoding, background, removal,
                            measure=True, centre=self._centre(media), layout=layout)
        if removal is not None:
            ctx.note(f"mix: original voice removed in {len(removal.spans or ())} speech regions"
                     + (" of the centre channel" if self._centre(media) else ""))
        return out

    def _centre(self, media: MediaInfo | None) -> Path | None:
        """A surround original's centre, when the voice is taken out there: the mix removes
        the voice by removing it, and the other channels play on."""
        if media is None or self.options.original_voice not in ("auto", "remove"):
            return None
        return media.centre_audio

    def _levels(self, media: MediaInfo | None = None):
        """The options the graph uses: a separated background is already free of the voice
        and plays at its own level, neither lowered nor ducked; so is a surround original
        once its centre, where the voice was, is taken out under the lines."""
        if self.options.original_voice != "separate" and self._centre(media) is None:
            return self.options
        import copy

        levels = copy.copy(self.options)
        levels.background_db, levels.duck_ratio = 0.0, 1.0
        return levels

    def _background(self, media: MediaInfo, kept: list[tuple[float, float]],
                    ctx: JobContext, lines: list[tuple[float, float]] = ()) -> Path:
        """The original as the dub's background: with the source's speech regions removed
        for a dub into another language (see ``videodub.background``), else as it is."""
        ctx.artifacts["background_gain_db"] = self.options.background_db
        if self.options.original_voice == "separate":
            model = fetch_model(self.options.separator_model, self.options.separator_sha256,
                                download=self.options.separator_download)
            out = separate_background(media.full_audio, ctx.work_dir / "background.wav", model)
            ctx.note(f"mix: original voice separated out with {model.name}")
            ctx.artifacts.update(background=out, background_ducked=False, background_gain_db=0.0)
            return out
        if not removes_original(self.options.original_voice, ctx.source_lang, ctx.target_lang):
            ctx.artifacts.update(background=media.full_audio, background_ducked=True)
            return media.full_audio
        spans = removal_spans(source_regions_of_file(media.speech_audio), kept, lines)
        centre = self._centre(media)
        ctx.note(f"mix: original voice removed in {len(spans)} speech regions"
                 + (" of the centre channel" if centre else ""))
        kept = LevelMeter(media.sample_rate) if centre else None  # the centre left: the voice
        out = write_background(media.full_audio, ctx.work_dir / "background.wav", spans, centre,
                               kept, media.centre_shared)
        ctx.artifacts.update(background=out, background_ducked=False,
                             background_gain_db=self._levels(media).background_db)
        if kept is not None:
            ctx.artifacts.update(background_levels=kept.levels(), voice_in_centre=True)
        return out

    def _graph(self, samples: int, tail: str, media: MediaInfo) -> str:
        """The ducking mix, ``samples`` long, followed by ``tail`` (a measurement or the gain).

        Both inputs are padded with silence and the mix is cut at ``samples``: left to end on
        their own, ``sidechaincompress`` stops at whichever input's end it sees first, and with
        ffmpeg's threaded decoders that varies from run to run (seen: 0.02-0.5 s lost).
        """
        o = self._levels(media)
        return (
            "[1:a]aformat=channel_layouts=stereo,apad,asplit=2[sc][voice];"
            f"[0:a]volume={o.background_db}dB,apad[bgin];"
            f"[bgin][sc]sidechaincompress=threshold={o.duck_threshold}:ratio={o.duck_ratio}"
            f":attack={o.duck_attack_ms}:release={o.duck_release_ms}[bg];"
            f"[bg][voice]amix=inputs=2:duration=first:normalize=0,atrim=end_sample={samples},"
            f"{tail}[out]"
        )

    def _render(self, media: MediaInfo, speech: Path, out: Path, ctx: JobContext,
                background: Path | None = None) -> None:
        """Measure the mix (EBU R128 integrated loudness and true peak), then render it with
        one linear gain to the target and a limiter under the true-peak ceiling.

        ffmpeg's ``loudnorm`` would do both in one filter, but it resamples to 192 kHz and, when
        the gain would break the ceiling, silently falls back to dynamic compression; measuring
        with ``ebur128`` and limiting explicitly is about six times faster and says what it did.
        """
        import soundfile

        o = self.options
        inputs = ["-i", str(background or media.full_audio), "-i", str(speech)]
        samples = soundfile.info(str(media.full_audio)).frames
        measured = measure_loudness(
            inputs, self._graph(samples, "ebur128=peak=true:framelog=quiet", media), ctx)
        gain = o.loudness - measured["I"] if measured["I"] > -70 else 0.0
        # Sample-peak limiting leaves inter-sample peaks; keep 0.5 dB of headroom for them.
        ceiling = o.true_peak - 0.5
        for attempt in range(3):
            limiter = (f"alimiter=limit={10 ** (ceiling / 20):.5f}:level=false:attack=5:release=50"
                       if measured["peak"] + gain > ceiling else "anull")
            run_ffmpeg(["-v", "error", *inputs, "-filter_complex",
                        self._graph(samples, f"volume={gain:.3f}dB,{limiter}", media),
                        "-map", "[out]",
                        "-ar", str(media.sample_rate), *FFMPEG_WAV, str(out)],
                       ctx, what="mixing the dubbed audio")
            if o.effort != Effort.high:
                break
            # Thorough: check the result and tighten the ceiling if a peak still got through.
            result = measure_loudness(["-i", str(out)], "[0:a]ebur128=peak=true:framelog=quiet[out]", ctx)
            if result["peak"] <= o.true_peak:
                break
            ceiling -= result["peak"] - o.true_peak + 0.2
        ctx.note(f"mix: measured {measured['I']:.1f} LUFS / {measured['peak']:.1f} dBTP, "
                 f"gain {gain:+.1f} dB, limiter {'on' if limiter != 'anull' else 'off'}")


def encoder_spec(encoding: DubEncoding | None, channels: int,
                 workers: int, lfe: int = 0) -> EncoderSpec | None:
    """Stretches of the track encoded on ``workers`` threads (0: the job's CPUs), when the
    muxer's encoding allows it and there is more than one; None: one ffmpeg encoder."""
    if (encoding is None or not encoding.bit_rate(channels, lfe)
            or not splices(encoding.codec, dict(encoding.codec_options))):
        return None
    workers = workers or Machine.detect().cpus
    if workers < 2:
        return None
    return EncoderSpec(encoding.codec, encoding.bit_rate(channels, lfe),
                       dict(encoding.codec_options), workers)


def mix_streaming(o, segments: Iterable[Segment], media: MediaInfo, ctx: JobContext,
                  encoding: DubEncoding | None = None, background: Path | None = None,
                  removal: StreamingRemoval | None = None, measure: bool = False,
                  centre: Path | None = None, layout: str | None = None) -> Path:
    """The track finished as clips arrive (and encoded, given the muxer's ``encoding``);
    checked by the limiter's own meter, and corrected in one more pass only if it missed.
    With ``measure``, the frame levels of the dub and of the background as laid under it go
    to ``ctx.artifacts`` (``speech_levels``, ``background_levels``) for the quality figures."""
    from videodub.streammix import StreamingMix, StreamOptions, correct

    # A surround dub (``layout``): the background's own channels, the centre's among them.
    names = channel_names(layout) if layout else []
    channels, lfe = (len(names), sum(n.startswith("LFE") for n in names)) if names else (
        media.channels, 0)
    args = (*encoding.args_for(channels, lfe), "-f", "mp4") if encoding else None
    out = ctx.work_dir / ("dub_mix" + (encoding.suffix if encoding else ".wav"))
    duck_db = 0.0 if o.duck_ratio <= 1.0 else o.duck_db  # a separated background: not ducked
    stream = StreamingMix(background or media.full_audio, out, StreamOptions(
        loudness=o.loudness, true_peak=o.true_peak, background_db=o.background_db,
        duck_db=duck_db, attack_s=o.duck_attack_ms / 1000, release_s=o.duck_release_ms / 1000,
        measure_true_peak=o.effort == Effort.high), ctx, args, removal, measure, channels,
        stretches=encoder_spec(encoding, channels, o.encode_workers, lfe),
        centre=None if layout else centre, shared=media.centre_shared, layout=layout)

    def unvoiced(seg: Segment) -> None:
        if removal is not None and "kept_original" in seg.flags:
            removal.keep(seg.start, seg.end)  # the original plays there instead

    peak = 0.0
    try:
        for seg, audio, start in placed(segments, media.sample_rate, ctx,
                                        ClipPlacer(media.duration), unvoiced,
                                        fine=o.effort != Effort.low):
            peak = max(peak, float(np.abs(audio).max(initial=0.0)))
            if removal is not None:
                removal.line(seg.start, seg.end)
            stream.add(audio, start)
        result = stream.close()
    finally:
        stream.abort()
    if stream.levels:
        ctx.artifacts.update(speech_levels=stream.levels[0].levels(),
                             background_levels=stream.levels[1].levels(),
                             voice_in_centre=stream.centre is not None
                             or stream.own_centre is not None)
    note = (f"mix: streamed, gain {result['first_gain']:+.1f} dB then {result['last_gain']:+.1f}"
            f" dB, speech peak {20 * np.log10(max(peak, 1e-6)):.1f} dBFS before gain, "
            f"result {result['I']:.1f} LUFS")
    if "peak" in result:
        note += f" / {result['peak']:.1f} dBTP"
    off = o.loudness - result["I"] if result["I"] > -70 else 0.0
    ceiling = o.true_peak - 0.5
    over = result.get("peak", -120.0) - o.true_peak
    if abs(off) > 1.0 or over > 0:
        correct(out, off, ceiling - max(0.0, over + 0.2), ctx, args)
        note += f"; corrected by {off:+.1f} dB"
    ctx.note(note)
    return out


def measure_loudness(inputs: list[str], graph: str, ctx: JobContext) -> dict[str, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) of a filter graph's ``[out]``."""
    from videodub.streammix import parse_summary

    stderr = run_ffmpeg(["-v", "info", "-nostats", *inputs, "-filter_complex", graph,
                         "-map", "[out]", "-f", "null", "-"], ctx, what="measuring loudness")
    result = parse_summary(stderr)
    if "peak" not in result:
        raise VideodubError("mixing: ffmpeg ebur128 printed no loudness summary")
    return result


@hookimpl
def register_mixers(register):
    register("duck", DuckMixer, DuckMixOptions,
             description="Clips over the ducked original, loudness-normalised (EBU R128).")
