"""mux=ffmpeg: the final video. The input's video stream is copied packet for packet (or
re-encoded to H.264 when MP4 cannot carry its codec); the dub
is the default audio track, the original audio the second, the subtitles a soft track; the
input's other audio and text subtitle tracks follow, as they were."""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from videodub import hookimpl
from videodub.config import Effort
from videodub.errors import VideodubError
from videodub.languages import lang3
from videodub.media import atomic_path, probe, run_ffmpeg
from videodub.model import DubEncoding, JobContext, MediaInfo, WorkerHint

# Audio codecs an MP4 file carries as they are; others are re-encoded to AAC.
MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}
# The suffix of a dub track handed over already encoded (AAC in an MP4 audio file).
ENCODED_SUFFIX = ".m4a"
MP4_VIDEO = {"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg1video", "mpeg2video", "mjpeg",
             "prores"}
# Any other video (WMV, VP8, Theora, Flash video, DivX 3 ...) is re-encoded to H.264 with
# libx264 at this quality (CRF; 18 is about transparent) and a preset by effort. 60 s of
# 720p30 on 2 CPUs (docs/configuration.md): medium 24.3 s, veryfast 12.7 s, superfast 9.3 s
# (a file 1.6 times veryfast's).
X264_CRF = "20"
X264_PRESET = {Effort.high: "medium", Effort.medium: "veryfast", Effort.low: "superfast"}
# Subtitles drawn into the picture (mux.burn_subtitles): libass's style for SRT, outlined
# for any background.
BURN_STYLE = "BorderStyle=1,Outline=1.5,Shadow=0,MarginV=18"
# Subtitle codecs that become MP4's mov_text (their text kept, styling dropped); picture-based
# ones (DVD, Blu-ray) have no place in MP4 and are left out, with a note.
TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}


@dataclass
class FfmpegMuxOptions:
    # AAC bitrate of the dubbed track; auto: 256k for effort high, 160k medium, 128k low, half
    # that for a mono dub (the encoder's time grows with the bitrate).
    audio_bitrate: str = "auto"
    # Keep the original audio as a second track.
    keep_original_audio: bool = True
    # Carry the input's other audio tracks (those not dubbed) and its text subtitle tracks
    # after ours, with their language tags.
    keep_other_tracks: bool = True
    # Add the transcript (the source language's subtitles) as a second subtitle track, when
    # the dub is into another language or its text differs.
    source_subtitles: bool = True
    # Also draw the dub's subtitles into the picture (for platforms that show no soft
    # subtitles); the video is then re-encoded to H.264 (libx264, CRF 20, preset by effort).
    burn_subtitles: bool = False
    # ffmpeg's AAC coder: fast, or twoloop (better at the same bitrate, about twice the CPU;
    # docs/benchmarks.md measures both); empty is fast.
    aac_coder: str = "fast"

    def __post_init__(self) -> None:
        if self.aac_coder not in ("", "twoloop", "fast"):
            raise ValueError(f"aac_coder must be twoloop or fast, got {self.aac_coder!r}")
        if self.audio_bitrate != "auto" and not re.fullmatch(r"\d+k?", self.audio_bitrate):
            raise ValueError(f"audio_bitrate must be auto or like 160k, got {self.audio_bitrate!r}")


def dub_bitrate(options, channels: int = 2, lfe: int = 0) -> str:
    """The dub track's AAC bitrate: as configured (for a stereo dub; a surround one has that
    per pair of full-range channels), or by effort for ``auto`` (128k, 80k or 64k per
    full-range channel: a mono dub needs half a stereo one's bits for the same quality, and
    the LFE, 120 Hz at most, next to none)."""
    full = max(1, channels - lfe)
    if options.audio_bitrate != "auto":
        if channels <= 2:
            return options.audio_bitrate
        return f"{bits(options.audio_bitrate) * full // 2000}k"
    per_channel = {Effort.high: 128, Effort.medium: 80, Effort.low: 64}[options.effort]
    return f"{per_channel * (min(channels, 2) if channels <= 2 else full)}k"


def bits(rate: str) -> int:
    """``160k`` or ``160000`` as bits per second."""
    return int(rate[:-1]) * 1000 if rate.endswith("k") else int(rate)


class FfmpegMuxer:
    def __init__(self, options) -> None:
        self.options = options

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=100, max_concurrency=1, reason="one output")

    def _coder(self) -> str:
        return self.options.aac_coder or "fast"

    def _dub_args(self, channels: int = 2) -> list[str]:
        return ["-c:a", "aac", "-aac_coder", self._coder(), "-b:a",
                dub_bitrate(self.options, channels)]

    def dub_encoding(self) -> DubEncoding:
        """The dub track as this muxer would encode it: a mixer that streams encodes it so
        while it mixes, and :meth:`mux` copies it (``videodub/run/tail.py``)."""
        return DubEncoding(args=tuple(self._dub_args()), suffix=ENCODED_SUFFIX,
                           mono_args=tuple(self._dub_args(channels=1)), codec="aac",
                           bit_rates=(bits(dub_bitrate(self.options, 1)),
                                      bits(dub_bitrate(self.options, 2))),
                           codec_options=(("aac_coder", self._coder()),),
                           surround_bit_rate=bits(dub_bitrate(self.options, 3)) // 3)

    def _video_codec(self, media: MediaInfo, ctx: JobContext,
                     burn: Path | None = None) -> list[str]:
        """Copied packet for packet when MP4 carries the codec and nothing is drawn into it;
        else H.264, said in a note."""
        if media.video_codec in MP4_VIDEO and burn is None:
            # HEVC from Matroska or MPEG-TS would be tagged hev1, which Apple's players refuse.
            return ["-c:v", "copy", *(["-tag:v", "hvc1"] if media.video_codec == "hevc" else [])]
        preset = X264_PRESET[self.options.effort]
        why = ("the dub's subtitles are drawn into the picture" if burn is not None else
               f"the input's video ({media.video_codec}) has no place in MP4 as it is")
        ctx.note(f"mux: {why}; re-encoded to H.264 (libx264, CRF {X264_CRF}, preset {preset})")
        # 4:2:0 wants even sides: an odd one gets a line of black.
        filters = "pad=ceil(iw/2)*2:ceil(ih/2)*2"
        if burn is not None:  # a path of letters, digits, '_', '/' and '.': nothing to escape
            filters += f",subtitles=filename={burn}:force_style='{BURN_STYLE}'"
        return ["-c:v", "libx264", "-preset", preset, "-crf", X264_CRF, "-pix_fmt", "yuv420p",
                "-vf", filters]

    @staticmethod
    def _copy_or_aac(track: dict) -> str:
        """Copied when MP4 carries the track as it is; MP3 below 16 kHz (MPEG-2.5: a phone
        recording) it does not."""
        if track["codec"] == "mp3" and (track.get("sample_rate") or 0) < 16000:
            return "aac"
        return "copy" if track["codec"] in MP4_AUDIO else "aac"

    @staticmethod
    def _source_subtitles(source: Path | None, ctx: JobContext) -> list[str]:
        """The transcript as the second subtitle track (input 3), not shown by default."""
        if source is None:
            return []
        return ["-map", "3:s:0", "-c:s:1", "mov_text",
                "-metadata:s:s:1", f"language={lang3(ctx.source_lang)}",
                "-metadata:s:s:1", f"title={ctx.source_lang} (original)", "-disposition:s:1", "0"]

    def _other_tracks(self, media: MediaInfo, streams: list[dict], audio_out: int,
                      ctx: JobContext, subtitle_out: int = 1) -> tuple[list[str], list[str]]:
        """The ``-map`` arguments of the input's audio tracks besides the dubbed one, and of
        its text subtitles: after ours, their own tags kept, none of them the default."""
        if not self.options.keep_other_tracks:
            return [], []
        audio = [s for s in streams if s["type"] == "audio"]
        subtitles = [s for s in streams if s["type"] == "subtitle"]
        audio_args: list[str] = []
        for i, track in enumerate(audio):
            if i != media.audio_stream:
                audio_args += ["-map", f"0:a:{i}", f"-c:a:{audio_out}",
                               self._copy_or_aac(track),
                               f"-disposition:a:{audio_out}", "0"]
                audio_out += 1
        subtitle_args: list[str] = []
        for i, track in enumerate(subtitles):
            if track["codec"] in TEXT_SUBTITLES:
                subtitle_args += ["-map", f"0:s:{i}", f"-c:s:{subtitle_out}", "mov_text",
                                  f"-disposition:s:{subtitle_out}", "0"]
                subtitle_out += 1
            else:
                ctx.note(f"mux: subtitle track {i} of the input ({track['codec']}, pictures) "
                         f"has no place in MP4 and is left out")
        return audio_args, subtitle_args

    def mux(self, media: MediaInfo, dubbed_audio: Path, subtitles: Path, out_path: Path,
            ctx: JobContext) -> Path:
        if not media.has_video:  # a podcast or a recording: an audio file, named as players expect
            out_path = out_path.with_suffix(".m4a")
        source = ctx.artifacts.get("source_subtitles") if self.options.source_subtitles else None
        burn = None
        if self.options.burn_subtitles and media.has_video:
            # Under a name the filter's option syntax reads as it is, wherever the run is.
            burn = Path(tempfile.mkdtemp(prefix="videodub_burn_")) / "dub.srt"
            if not re.fullmatch(r"[\w/.\-]+", str(burn), re.ASCII):
                shutil.rmtree(burn.parent, ignore_errors=True)
                raise VideodubError(f"mux.burn_subtitles needs a temporary folder with a plain "
                                    f"name, not {burn.parent.parent}; set TMPDIR to one")
            shutil.copyfile(subtitles, burn)
        elif self.options.burn_subtitles:
            ctx.note("mux: no picture to draw the subtitles into (the input is audio only)")
        # libass says what it could not draw only as warnings.
        args = ["-v", "warning" if burn else "error", "-i", str(media.path),
                "-i", str(dubbed_audio), "-i", str(subtitles),
                *(["-i", str(source)] if source else [])]
        if media.has_video:
            args += ["-map", "0:v:0", *self._video_codec(media, ctx, burn)]
        coder = self._coder()
        # Already encoded our way while it was mixed (dub_encoding): copied, not encoded again.
        if dubbed_audio.suffix == ENCODED_SUFFIX:
            dub_codec = ["-c:a:0", "copy"]
        else:
            import soundfile

            channels = soundfile.info(str(dubbed_audio)).channels
            # A surround dub's WAV carries no layout: FFmpeg's usual one for its channels.
            lfe = 1 if channels in (6, 7, 8) else 0
            dub_codec = ["-c:a:0", "aac", "-b:a:0", dub_bitrate(self.options, channels, lfe)]
        # One coder for every AAC track written (the dub, and an original that cannot be copied).
        args += ["-map", "1:a:0", *dub_codec, "-aac_coder", coder,
                 "-metadata:s:a:0", f"language={lang3(ctx.target_lang)}",
                 "-metadata:s:a:0", f"title=Dub ({ctx.target_lang})", "-disposition:a:0", "default"]
        streams = probe(media.path)["streams"]
        audio = [s for s in streams if s["type"] == "audio"]
        audio_out = 1
        if self.options.keep_original_audio:
            args += ["-map", f"0:a:{media.audio_stream}",
                     f"-c:a:{audio_out}", self._copy_or_aac(audio[media.audio_stream]),
                     f"-metadata:s:a:{audio_out}", f"language={lang3(ctx.source_lang)}",
                     f"-metadata:s:a:{audio_out}", "title=Original",
                     f"-disposition:a:{audio_out}", "0"]
            audio_out += 1
        other_audio, other_subtitles = self._other_tracks(media, streams, audio_out, ctx,
                                                          2 if source else 1)
        args += [*other_audio, "-map", "2:s:0", "-c:s:0", "mov_text",
                 "-metadata:s:s:0", f"language={lang3(ctx.target_lang)}",
                 "-metadata:s:s:0", f"title={ctx.target_lang}", "-disposition:s:0", "default",
                 *self._source_subtitles(source, ctx), *other_subtitles,
                 "-movflags", "+faststart", "-f", "mp4"]
        try:
            with atomic_path(out_path) as tmp:
                log = run_ffmpeg([*args, str(tmp)], ctx, what="writing the dubbed video")
                if burn is not None:
                    check_fonts(log, subtitles)
                if media.has_video:
                    check_video_kept(media, tmp)
        finally:
            if burn is not None:
                shutil.rmtree(burn.parent, ignore_errors=True)
        return out_path


def check_fonts(log: str, subtitles: Path) -> None:
    """A burn that drew nothing, or not every character, fails (its output is not kept): the
    text would be missing from the picture without a word. A re-run after installing fonts
    reuses everything but the mux."""
    codes = {int(code, 16) for code in
             re.findall(r"failed to find any fallback with glyph 0x([0-9A-Fa-f]+)", log)}
    if "Failed to load fontconfig fonts" in log or 0 in codes:
        raise VideodubError("mux.burn_subtitles: no fonts found on this machine (fontconfig); "
                            "install some (e.g. Debian's fonts-dejavu-core) and run again")
    missing = sorted(chr(code) for code in codes)
    if missing:
        shown = "".join(missing[:12]) + ("..." if len(missing) > 12 else "")
        raise VideodubError(f"mux.burn_subtitles: no font on this machine has {shown} (from "
                            f"{subtitles.name}); install one that does (e.g. Debian's "
                            f"fonts-noto-cjk for Chinese and Japanese) and run again")


def check_video_kept(media: MediaInfo, written: Path) -> None:
    """ffmpeg drops a video track whose samples it cannot read and still succeeds: the dub
    must never come out without the input's picture."""
    kept = [s for s in probe(written)["streams"] if s["type"] == "video"]
    if not kept or not kept[0]["duration"]:
        raise VideodubError(
            f"the video track of {media.path.name} is damaged: ffmpeg could not copy it into the "
            f"dubbed video; repair or re-encode the input")


@hookimpl
def register_muxers(register):
    register("ffmpeg", FfmpegMuxer, FfmpegMuxOptions,
             description="MP4: video copied, dub + original audio, soft subtitles.")
