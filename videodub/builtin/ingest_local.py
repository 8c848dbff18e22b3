"""ingest=local: a file ffmpeg can read. Probes it, checks it, extracts the audio later stages use."""

from __future__ import annotations

import math
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videodub import hookimpl
from videodub.config import Validation
from videodub.errors import VideodubError
from videodub.extract import START_TOLERANCE_S, Decoded, Unsupported, WavOut, decode_to_wavs
from videodub.audio import GrowingWav
from videodub.media import Ffmpeg, decode_check, probe
from videodub.model import JobContext, MediaInfo, WorkerHint
from videodub.surround import centre_voice, shared_stretches, surround_dub
from videodub.tracks import check_track_choice, pick_audio_track
from videodub.wav import FFMPEG_WAV


@dataclass
class LocalIngestOptions:
    # Sample rate of the mixing track (the dubbed audio is written at this rate).
    mix_sample_rate: int = 48000
    # The audio track to dub: auto (the first tagged with source_lang when it is given, else
    # the one the file plays by default, else the first), a number (0 is the first audio
    # track) or a language (es, or spa as tagged).
    audio_track: str = "auto"

    def __post_init__(self) -> None:
        check_track_choice(self.audio_track)


# Audio longer than the container's duration by more than this is the timeline instead.
LONGER_AUDIO_S = 0.5
# A stereo track whose channels differ by less than this (difference under sum, dB) in nearly
# every half second is one signal twice: the dub is mixed and encoded in mono. A mono talk
# through a stereo AAC encode measures -30 to -75 dB in most half seconds (each channel gets
# its own coding noise), but a few of the quietest reach -24 (3 of 2400 in a 20-minute talk:
# whether one crossed -25 turned on where the half seconds fell, and a stereo mix and encode
# cost a quarter more CPU); a stereo recording's room tone or music, -3 to -20 dB in every
# pause or throughout.
SAME_CHANNELS_DB = -25.0
# ... in all but this share of the half seconds compared,
NOISE_SHARE = 0.01
# ... and never more than this (one half second this different is stereo).
STEREO_DB = -15.0
# Half seconds quieter than this (dBFS) are not compared.
SILENCE_DB = -60.0

# A URL that went through Path(): "http://host/x" became "http:/host/x".
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/+(?=[^/])")


def as_url(path: Path | str) -> str | None:
    """The URL ``path`` was made from (with its ``//`` back), or None for a file path."""
    text = str(path)
    match = _URL.match(text)
    if not match or text.startswith("/"):
        return None
    return f"{match.group(1)}://{text[match.end():]}"


class LocalIngester:
    def __init__(self, options) -> None:
        self.options = options

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=150, max_concurrency=1,
                          reason="one input file")

    def _probe(self, input_path: Path) -> tuple[Path, dict]:
        url = as_url(input_path)
        if url:
            raise VideodubError(f"input {url} is a URL; ingest=local reads files on this machine "
                                f"(download it first)")
        if not input_path.exists():
            raise VideodubError(f"input not found: {input_path}")
        if not input_path.is_file():
            raise VideodubError(f"input is not a file: {input_path}")
        # Absolute, so that ffmpeg never reads a name like "concat:x" or "a:b.mp4" as a protocol.
        input_path = input_path.resolve()
        info = probe(input_path)
        if not info["streams"]:
            raise VideodubError(f"{input_path.name} is damaged: its container lists no streams "
                                f"(a garbled header?)")
        if not any(s["type"] == "audio" for s in info["streams"]):
            raise VideodubError(f"{input_path.name} has no audio stream to dub")
        if not info["duration"]:
            raise VideodubError(f"{input_path.name}: cannot tell its duration")
        return input_path, info

    def _track(self, info: dict, path: Path, ctx: JobContext) -> tuple[int, dict]:
        audio = [s for s in info["streams"] if s["type"] == "audio"]
        n = pick_audio_track(audio, self.options.audio_track, ctx.source_lang, path.name)
        return n, audio[n]

    def check(self, ctx: JobContext) -> None:
        """Readable media with an audio stream, and room on disk for the run, before any work."""
        if ctx.input_path is None:
            return
        path, info = self._probe(ctx.input_path)
        _, track = self._track(info, path, ctx)
        duration = float(info["duration"])
        ctx.input_duration = duration
        # Extracted WAVs (16 kHz mono + stereo at the mix rate, and a surround track's centre
        # in mono), the mixed track, the output (about the input's size) and a margin.
        rate = self.options.mix_sample_rate
        channels = track.get("channels") or 0
        centre = 2 * rate if channels >= 3 else 0
        if channels >= 3 and ctx.surround:  # and all of them, for a surround dub
            centre += 2 * rate * channels * 2  # the WAV and the mixed track
        need = duration * (32000 + 2 * 2 * 2 * rate + centre) + path.stat().st_size
        need = int(need * 1.2) + 50 * 2**20
        free = shutil.disk_usage(ctx.run_dir).free
        if free < need:
            raise VideodubError(
                f"not enough disk space in {ctx.run_dir}: the run needs about {need / 2**20:.0f} "
                f"MiB, {free / 2**20:.0f} MiB are free; free space or set hydra.run.dir elsewhere")

    def ingest(self, input_path: Path, ctx: JobContext) -> MediaInfo:
        input_path, info = self._probe(input_path)
        audio = [s for s in info["streams"] if s["type"] == "audio"]
        n, track = self._track(info, input_path, ctx)
        video = [s for s in info["streams"] if s["type"] == "video" and not s["attached_pic"]]
        speech = ctx.work_dir / "speech16k.wav"
        full = ctx.work_dir / "original.wav"
        rate = self.options.mix_sample_rate

        # Seconds the audio starts after the picture: silence is laid before it (extract.py).
        delay = round((track["start"] or 0.0) - info["start"], 3)
        timeline = {"audio_delay_s": delay} if delay > START_TOLERANCE_S else {}

        duration = float(info["duration"])

        def media(channels: int, centre_audio: Path | None = None, centre_shared=(),
                  surround: tuple[Path, str] | None = None, **extra) -> MediaInfo:
            return MediaInfo(
                path=input_path, duration=duration, has_video=bool(video),
                audio_streams=len(audio), audio_stream=n, audio_codec=track["codec"],
                video_codec=video[0]["codec"] if video else None, speech_audio=speech,
                full_audio=full, sample_rate=rate, channels=channels,
                centre_audio=centre_audio, centre_shared=list(centre_shared),
                surround_audio=surround[0] if surround else None,
                surround_layout=surround[1] if surround else None,
                extra={"format": info["format"], **timeline, **extra})

        what = f"extracting audio from {input_path.name}"
        # 16 kHz mono for recognition, which may start on it while it is written (``early``),
        # and the mixing rate in stereo: one decode in this process (``videodub.extract``),
        # or two ffmpeg processes for a stream it cannot set up.
        outputs = [WavOut(speech, 16000, 1), WavOut(full, rate, 2)]
        centre = ctx.work_dir / "centre.wav"
        own = ctx.work_dir / "surround.wav"
        if (track.get("channels") or 0) >= 3:  # a centre beside others, maybe: 3.0, 5.1, 7.1
            outputs.append(WavOut(centre, rate, 1, centre=True))
            if ctx.surround:  # the mixer dubs it in its own channels, if the voice is there
                outputs.append(WavOut(own, rate, track["channels"], own_layout=True))
        share: list = [None, (), None]  # the centre's share of the others: whole, in sections

        def extract(early: bool, strict: bool = False) -> None:
            growing = GrowingWav(speech, 16000)
            try:
                if early:
                    ctx.speech_started(media(track.get("channels") or 2,
                                             speech_growing=growing))
                try:
                    decoded = decode_to_wavs(input_path, outputs, what, ctx.check_cancelled,
                                             strict=strict, track=n)
                except Unsupported:
                    share[0] = math.nan  # one ffmpeg per output: no centre read apart
                    extract_with_ffmpeg(input_path, [o for o in outputs
                                                     if not o.centre and not o.own_layout],
                                        growing, ctx, what, n)
                    if strict:  # the audio the in-process decode did not check
                        decode_check(input_path, ctx, (f"0:a:{n}",))
                else:
                    growing.finish(ok=True)
                    noted(decoded, input_path.name, ctx)
                    share[:] = decoded.centre_share, decoded.centre_sections, decoded.layout
            except BaseException:
                growing.finish(ok=False)
                raise

        if self.options.validation == Validation.full:
            # Nothing is handed on before the whole input has decoded cleanly: the audio
            # stream as it is extracted (strictly), the others by ffmpeg beside it.
            others = len(info["streams"]) > 1
            checked_while_extracting(input_path, lambda: extract(early=False, strict=True),
                                     tuple(o.path for o in outputs), ctx, others, n)
        else:
            extract(early=True)
        if timeline:
            ctx.note(f"ingest: the audio of {input_path.name} starts {delay:.2f} s after its "
                     f"picture; the dub is laid on the picture's timeline")
        if len(audio) > 1:
            ctx.note(f"ingest: audio track {n} ({track.get('language') or 'untagged'}) of "
                     f"{len(audio)} is dubbed (ingest.audio_track)")
        # Files joined end to end (a recording in parts, MPEG-TS whose timestamps start anew)
        # make the container report only the last part's length; the audio, laid end to
        # end, is the timeline (the dub's lines were placed past the "end" otherwise).
        import soundfile

        heard = soundfile.info(str(full)).duration
        if heard > duration + LONGER_AUDIO_S:
            ctx.note(f"ingest: {input_path.name} says it lasts {duration:.2f} s but its audio "
                     f"runs {heard:.2f} s; the dub follows the audio")
            duration = heard
        mono = track.get("channels") == 1 or same_channels(full)
        if mono and track.get("channels") != 1:
            ctx.note("ingest: both channels of the original carry the same signal; the dub is "
                     "mixed and encoded in mono")
        voice_centre = centre_voice(share[0], track, input_path.name, ctx, list(share[1]))
        surround = surround_dub(own, share[2], voice_centre, input_path.name, ctx)
        if not voice_centre:
            centre.unlink(missing_ok=True)
            return media(1 if mono else 2)
        # Sections of the source's audio, on the picture's timeline as the WAVs are.
        shared = shared_stretches(list(share[1]), timeline.get("audio_delay_s", 0.0))
        return media(1 if mono else 2, centre_audio=centre, centre_shared=shared,
                     surround=surround)


def noted(decoded: Decoded, name: str, ctx: JobContext) -> None:
    """The run's notes of what the extraction met in the audio."""
    if decoded.skipped:
        ctx.note(f"ingest: {decoded.skipped} damaged audio packet(s) of {name} skipped")
    if decoded.gaps:
        ctx.note(f"ingest: {decoded.gaps} gap(s) in the audio timestamps of {name}: "
                 f"{decoded.filled_s:.2f} s of silence laid in, {decoded.dropped_s:.2f} s of "
                 f"overlap dropped, to keep the dub on the picture's timeline")
    if decoded.resets:
        ctx.note(f"ingest: the audio timestamps of {name} start anew {decoded.resets} "
                 f"time(s) (files joined end to end?); the audio goes on across them")


def extract_with_ffmpeg(source: Path, outputs: list[WavOut], growing: GrowingWav,
                        ctx: JobContext, what: str, stream: int = 0) -> None:
    """The ffmpeg command's extraction, one process per output, for a stream
    :func:`~videodub.extract.decode_to_wavs` cannot set up (the speech first: ``growing``
    is finished as soon as it is whole)."""
    # On the input's timeline, as the in-process decode lays it (extract.Timeline): silence
    # before a late start and in timestamp gaps, overlaps dropped.
    src = ["-v", "error", "-i", str(source), "-map", f"0:a:{stream}", "-vn", "-sn", "-dn",
           "-af", "aresample=async=1:first_pts=0"]
    runs = [Ffmpeg([*src, "-ac", str(o.channels), "-ar", str(o.rate), *FFMPEG_WAV,
                    str(o.path)], ctx, what) for o in outputs]
    try:
        runs[0].wait()
        growing.finish(ok=True)
        for run in runs[1:]:
            run.wait()
    finally:
        for run in runs:
            run.stop()


def checked_while_extracting(path: Path, extract, outputs: tuple[Path, ...],
                             ctx: JobContext, others: bool = True, stream: int = 0) -> None:
    """``validation=full``: the streams besides the extracted audio (``others``) decoded by
    ffmpeg (:func:`decode_check`) beside the extraction, on another CPU, instead of before
    it; the extraction checks its own stream. A damaged file still fails with the decoder's
    line, and what was extracted from it is removed."""
    def check_others() -> None:
        if others:
            decode_check(path, ctx, ("0", f"-0:a:{stream}"))

    with ThreadPoolExecutor(1, thread_name_prefix="videodub-decode-check") as pool:
        check = pool.submit(check_others)
        try:
            extract()
        except BaseException:
            for out in outputs:
                out.unlink(missing_ok=True)
            check.result()  # another stream's damage, named, rather than the extraction's error
            raise
        try:
            check.result()
        except BaseException:
            for out in outputs:
                out.unlink(missing_ok=True)
            raise


def same_channels(path: Path, below_db: float = SAME_CHANNELS_DB) -> bool:
    """True when a stereo WAV carries one signal twice: in the half seconds that are not
    silent, the difference of its channels stays ``below_db`` under their sum in all but
    ``NOISE_SHARE`` of them and ``STEREO_DB`` under it in every one (a talk recorded in mono
    and delivered as stereo, codec noise aside). Stereo room tone or music between sentences
    fails it, so stereo backgrounds stay stereo. Read in blocks; a half second over
    ``STEREO_DB`` ends the check."""
    import soundfile

    compared = over = 0
    with soundfile.SoundFile(str(path)) as f:
        if f.channels != 2:
            return f.channels == 1
        part = max(1, f.samplerate // 2)
        for block in f.blocks(blocksize=part * 16, dtype="float32", always_2d=True):
            n = len(block) // part * part or len(block)
            pairs = block[:n].reshape(-1, min(part, n), 2).astype(np.float64)
            side = pairs[..., 0] - pairs[..., 1]
            mid = pairs[..., 0] + pairs[..., 1]
            side_e, mid_e = (side * side).mean(axis=1), (mid * mid).mean(axis=1)
            loud = mid_e > 4 * 10 ** (SILENCE_DB / 10)  # (2x the level)^2
            with np.errstate(divide="ignore"):
                apart = 10 * np.log10(side_e[loud] / mid_e[loud] + 1e-30)
            if np.any(apart > STEREO_DB):
                return False
            compared += len(apart)
            over += int(np.count_nonzero(apart > below_db))
    return over <= NOISE_SHARE * compared


@hookimpl
def register_ingesters(register):
    register("local", LocalIngester, LocalIngestOptions,
             description="Any file ffmpeg reads; probes, validates and extracts audio.")
