"""mux=ffmpeg: the final video. The input's video stream is copied packet for packet; the dub
is the default audio track, the original audio the second, the subtitles a soft track."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from videodub import hookimpl
from videodub.config import Effort
from videodub.errors import VideodubError
from videodub.languages import primary
from videodub.media import atomic_path, probe, run_ffmpeg
from videodub.model import DubEncoding, JobContext, MediaInfo, WorkerHint

# ISO 639-1 -> ISO 639-2 for track language tags.
ISO639_2 = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "ca": "cat", "cs": "ces", "cy": "cym",
    "da": "dan", "de": "deu", "el": "ell", "en": "eng", "es": "spa", "et": "est", "eu": "eus",
    "fa": "fas", "fi": "fin", "fr": "fra", "ga": "gle", "gl": "glg", "gu": "guj", "he": "heb",
    "hi": "hin", "hr": "hrv", "hu": "hun", "hy": "hye", "id": "ind", "is": "isl", "it": "ita",
    "ja": "jpn", "ka": "kat", "kk": "kaz", "ko": "kor", "lt": "lit", "lv": "lav", "mk": "mkd",
    "ml": "mal", "mr": "mar", "ms": "msa", "mt": "mlt", "nl": "nld", "no": "nor", "pa": "pan",
    "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk", "sl": "slv", "sq": "sqi",
    "sr": "srp", "sv": "swe", "sw": "swa", "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl",
    "tr": "tur", "uk": "ukr", "ur": "urd", "vi": "vie", "zh": "zho",
}
# Audio codecs an MP4 file carries as they are; others are re-encoded to AAC.
MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}
# The suffix of a dub track handed over already encoded (AAC in an MP4 audio file).
ENCODED_SUFFIX = ".m4a"
MP4_VIDEO = {"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg2video", "mjpeg", "prores"}


def lang3(code: str | None) -> str:
    return ISO639_2.get(primary(code), "und") if code else "und"


@dataclass
class FfmpegMuxOptions:
    # AAC bitrate of the dubbed track; auto: 256k for effort high, 160k medium, 128k low, half
    # that for a mono dub (the encoder's time grows with the bitrate).
    audio_bitrate: str = "auto"
    # Keep the original audio as a second track.
    keep_original_audio: bool = True
    # ffmpeg's AAC coder: fast, or twoloop (better at the same bitrate, about twice the CPU;
    # docs/benchmarks.md measures both); empty is fast.
    aac_coder: str = "fast"

    def __post_init__(self) -> None:
        if self.aac_coder not in ("", "twoloop", "fast"):
            raise ValueError(f"aac_coder must be twoloop or fast, got {self.aac_coder!r}")
        if self.audio_bitrate != "auto" and not re.fullmatch(r"\d+k?", self.audio_bitrate):
            raise ValueError(f"audio_bitrate must be auto or like 160k, got {self.audio_bitrate!r}")


def dub_bitrate(options, channels: int = 2) -> str:
    """The dub track's AAC bitrate: as configured, or by effort for ``auto`` (128k, 80k or 64k
    per channel: a mono dub needs half a stereo one's bits for the same quality)."""
    if options.audio_bitrate != "auto":
        return options.audio_bitrate
    per_channel = {Effort.high: 128, Effort.medium: 80, Effort.low: 64}[options.effort]
    return f"{per_channel * min(channels, 2)}k"


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
                           codec_options=(("aac_coder", self._coder()),))

    def mux(self, media: MediaInfo, dubbed_audio: Path, subtitles: Path, out_path: Path,
            ctx: JobContext) -> Path:
        if media.has_video and media.video_codec not in MP4_VIDEO:
            raise VideodubError(
                f"the input's video codec {media.video_codec} cannot be copied into MP4 unchanged")
        args = ["-v", "error", "-i", str(media.path), "-i", str(dubbed_audio), "-i", str(subtitles)]
        if media.has_video:
            args += ["-map", "0:v:0", "-c:v", "copy"]
        coder = self._coder()
        # Already encoded our way while it was mixed (dub_encoding): copied, not encoded again.
        if dubbed_audio.suffix == ENCODED_SUFFIX:
            dub_codec = ["-c:a:0", "copy"]
        else:
            import soundfile

            channels = soundfile.info(str(dubbed_audio)).channels
            dub_codec = ["-c:a:0", "aac", "-b:a:0", dub_bitrate(self.options, channels)]
        # One coder for every AAC track written (the dub, and an original that cannot be copied).
        args += ["-map", "1:a:0", *dub_codec, "-aac_coder", coder,
                 "-metadata:s:a:0", f"language={lang3(ctx.target_lang)}",
                 "-metadata:s:a:0", f"title=Dub ({ctx.target_lang})", "-disposition:a:0", "default"]
        if self.options.keep_original_audio:
            original_codec = "copy" if media.audio_codec in MP4_AUDIO else "aac"
            args += ["-map", "0:a:0", "-c:a:1", original_codec,
                     "-metadata:s:a:1", f"language={lang3(ctx.source_lang)}",
                     "-metadata:s:a:1", "title=Original", "-disposition:a:1", "0"]
        args += ["-map", "2:s:0", "-c:s", "mov_text",
                 "-metadata:s:s:0", f"language={lang3(ctx.target_lang)}",
                 "-metadata:s:s:0", f"title={ctx.target_lang}",
                 "-movflags", "+faststart", "-f", "mp4"]
        with atomic_path(out_path) as tmp:
            run_ffmpeg([*args, str(tmp)], ctx, what="writing the dubbed video")
            if media.has_video:
                check_video_kept(media, tmp)
        return out_path


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
