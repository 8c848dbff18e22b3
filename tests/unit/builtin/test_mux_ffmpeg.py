"""mux=ffmpeg on real files: the dub track's AAC bit rate and coder follow the effort (or the
keys that override it), and ``keep_original_audio`` decides whether the original audio
is written as a second track."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from conftest import Talk
from failure_corpus import assert_message

from videodub.builtin import mux_ffmpeg
from videodub.builtin.mux_ffmpeg import FfmpegMuxer, FfmpegMuxOptions
from videodub.config import Effort, implementation_config
from videodub.errors import VideodubError
from videodub.media import ffmpeg_exe, probe, run_ffmpeg
from videodub.model import JobContext, MediaInfo, Segment
from videodub.subtitles import write_srt

MuxConfig = implementation_config("mux", "ffmpeg", FfmpegMuxOptions)
# The native AAC encoder holds its average bit rate within a few percent on dense audio.
BITRATE_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def inputs(short_talk: Talk, tmp_path_factory) -> tuple[MediaInfo, Path, Path]:
    """The talk as ingest describes it, a dubbed track of noise as long as it (noise uses
    every bit the encoder is given) and one subtitle cue."""
    folder = tmp_path_factory.mktemp("mux_inputs")
    info = probe(short_talk.path)
    rng = np.random.default_rng(7)
    noise = 0.2 * rng.standard_normal((int(info["duration"] * 48000), 2))
    dub = folder / "dub.wav"
    soundfile.write(str(dub), noise.astype(np.float32), 48000)
    srt = write_srt([Segment(id=0, start=0.5, end=2.0, source_text="Hello", target_text="Hola")],
                    folder / "talk.es.srt", target=True)
    media = MediaInfo(path=short_talk.path, duration=info["duration"], has_video=True,
                      audio_streams=1, audio_codec="aac", video_codec="h264",
                      speech_audio=folder / "unused16k.wav", full_audio=folder / "unused.wav")
    return media, dub, srt


def mux(inputs, tmp_path: Path, **options) -> Path:
    media, dub, srt = inputs
    ctx = JobContext(tmp_path / "run", "es", "en")
    return FfmpegMuxer(MuxConfig(**options)).mux(media, dub, srt, tmp_path / "talk.es.mp4", ctx)


def audio_tracks(path: Path) -> list[dict[str, str]]:
    with av.open(str(path)) as container:
        return [dict(s.metadata) for s in container.streams.audio]


def dub_bit_rate(path: Path) -> float:
    """Bits per second of the first audio track, from the size of its packets."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        size = sum(packet.size for packet in container.demux(stream))
        return size * 8 / float(stream.duration * stream.time_base)


@pytest.mark.parametrize("effort, options, kbps", [
    (Effort.high, {}, 256), (Effort.medium, {}, 160), (Effort.low, {}, 128),
    (Effort.high, {"audio_bitrate": "96k"}, 96),
])
def test_the_dub_tracks_bit_rate_follows_effort_unless_set(inputs, tmp_path, effort, options,
                                                          kbps):
    """`mux.audio_bitrate=auto` gives the dub 256k at effort high, 160k medium, 128k low;
    a set bitrate wins over the effort."""
    out = mux(inputs, tmp_path, effort=effort, **options)
    assert dub_bit_rate(out) == pytest.approx(kbps * 1000, rel=BITRATE_TOLERANCE)


@pytest.mark.parametrize("effort, kbps", [(Effort.high, 128), (Effort.low, 64)])
def test_a_mono_dub_gets_half_the_bit_rate(inputs, tmp_path, effort, kbps):
    """``auto`` is set per channel: a mono dub track is given half a stereo one's bits, both
    when mux encodes it and in the encoding it hands a mixer that streams."""
    media, dub, srt = inputs
    mono = tmp_path / "mono.wav"
    soundfile.write(str(mono), soundfile.read(str(dub), dtype="float32")[0][:, 0], 48000)
    out = mux((media, mono, srt), tmp_path, effort=effort)
    assert dub_bit_rate(out) == pytest.approx(kbps * 1000, rel=BITRATE_TOLERANCE)
    encoding = FfmpegMuxer(MuxConfig(effort=effort)).dub_encoding()
    assert encoding.args_for(1)[-1] == f"{kbps}k" and encoding.args_for(2)[-1] == f"{2 * kbps}k"
    # The same, said to an in-process encoder (a mixer encoding stretches in threads).
    assert encoding.codec == "aac"
    assert encoding.bit_rates == (kbps * 1000, 2 * kbps * 1000)
    assert dict(encoding.codec_options) == {"aac_coder": "fast"}


@pytest.mark.parametrize("effort, aac_coder, expected", [
    (Effort.high, "", "fast"), (Effort.medium, "fast", "fast"), (Effort.low, "", "fast"),
    (Effort.low, "twoloop", "twoloop"), (Effort.high, "twoloop", "twoloop"),
])
def test_the_aac_coder_is_fast_unless_set(inputs, tmp_path, monkeypatch, effort, aac_coder,
                                          expected):
    """ffmpeg is asked for the `fast` AAC coder at every effort (the quality profile gets more
    bits instead: measured to sound better for half the CPU); `mux.aac_coder=twoloop` wins."""
    commands: list[list[str]] = []

    def recording(args, ctx=None, what="ffmpeg"):
        commands.append(list(args))
        return run_ffmpeg(args, ctx, what)

    monkeypatch.setattr(mux_ffmpeg, "run_ffmpeg", recording)
    out = mux(inputs, tmp_path, effort=effort, aac_coder=aac_coder)

    assert out.is_file()
    (args,) = commands
    coders = [args[i + 1] for i, arg in enumerate(args) if arg == "-aac_coder"]
    assert coders == [expected]


@pytest.mark.parametrize("keep", [True, False])
def test_keep_original_audio_decides_the_second_audio_track(inputs, tmp_path, keep):
    """The dub is the first audio track (tagged with the target language); the original
    audio follows it only with `mux.keep_original_audio=true`."""
    out = mux(inputs, tmp_path, keep_original_audio=keep)

    tracks = audio_tracks(out)
    assert [t["language"] for t in tracks] == (["spa", "eng"] if keep else ["spa"])
    with av.open(str(out)) as container:
        assert len(container.streams.video) == 1
        assert len(container.streams.subtitles) == 1


def multitrack_media(path: Path, folder: Path) -> MediaInfo:
    """The multi-track talk as ingest describes it when its second track (the talk) is dubbed."""
    info = probe(path)
    return MediaInfo(path=path, duration=info["duration"], has_video=True, audio_streams=2,
                     audio_codec="aac", video_codec="h264", audio_stream=1,
                     speech_audio=folder / "unused16k.wav", full_audio=folder / "unused.wav")


def streams_of(path: Path) -> list[tuple[str, str | None, str | None, int, int | None]]:
    """Each stream: type, language, title (MP4 keeps it as ``name``), whether it is the
    default, sample rate."""
    with av.open(str(path)) as container:
        return [(s.type, s.metadata.get("language"), s.metadata.get("name"),
                 int(s.disposition & av.stream.Disposition.default != 0),
                 s.codec_context.sample_rate if s.type == "audio" else None)
                for s in container.streams]


@pytest.mark.parametrize("keep_other_tracks", [True, False])
@pytest.mark.parametrize("source_subtitles", [True, False])
def test_the_inputs_other_audio_and_subtitle_tracks_follow_ours(inputs, multitrack_talk,
                                                                tmp_path, keep_other_tracks,
                                                                source_subtitles):
    """A film's other tracks are not lost: after the dub and the original (the track that was
    dubbed, the input's second here), its other audio track and its text subtitles follow,
    with their own tags and none of them the default; ``keep_other_tracks=false`` drops them."""
    from conftest import TONE_RATE

    _, dub, srt = inputs
    media = multitrack_media(multitrack_talk, tmp_path)
    ctx = JobContext(tmp_path / "run", "es", "en")
    transcript = write_srt([Segment(id=0, start=0.5, end=2.0, source_text="Hello",
                                    target_text="Hola")], tmp_path / "multi.en.srt", target=False)
    ctx.artifacts["source_subtitles"] = transcript
    out = FfmpegMuxer(MuxConfig(keep_other_tracks=keep_other_tracks,
                                source_subtitles=source_subtitles)).mux(
        media, dub, srt, tmp_path / "multi.es.mp4", ctx)

    talk_rate = probe(multitrack_talk)["streams"][2]["sample_rate"]
    assert talk_rate != TONE_RATE
    ours = [("video", None, None, 1, None), ("audio", "spa", "Dub (es)", 1, 48000),
            ("audio", "eng", "Original", 0, talk_rate)]
    theirs_audio = [("audio", "fre", "Commentary", 0, TONE_RATE)]
    our_subtitles = [("subtitle", "spa", "es", 1, None)]
    if source_subtitles:  # the transcript, after the dub's
        our_subtitles.append(("subtitle", "eng", "en (original)", 0, None))
    theirs_subtitles = [("subtitle", "ger", None, 0, None)]
    got = [(t, lang if lang != "und" else None, title, default, rate)
           for t, lang, title, default, rate in streams_of(out)]
    if keep_other_tracks:
        assert got == [*ours, *theirs_audio, *our_subtitles, *theirs_subtitles]
    else:
        assert got == [*ours, *our_subtitles]


def frames_and_size(path: Path) -> tuple[str, int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for p in container.demux(stream) if p.size)
        return stream.codec_context.codec.canonical_name, frames, stream.width, stream.height


@pytest.mark.parametrize("codec, size, args, reencoded", [
    ("wmv2", "160x120", ["-c:v", "wmv2", "-c:a", "wmav2"], True),  # Windows Media
    ("vp8", "161x121", ["-c:v", "libvpx", "-c:a", "libvorbis"], True),  # older WebM, odd sides
    ("av1", "161x121", ["-c:v", "libaom-av1", "-cpu-used", "8", "-c:a", "libopus"], False),
    ("hevc", "160x120", ["-c:v", "libx265", "-preset", "ultrafast", "-c:a", "libopus"], False),
])
def test_a_video_mp4_cannot_carry_is_re_encoded_to_h264_and_one_it_can_is_copied(
        inputs, tmp_path, codec, size, args, reencoded):
    """Not an error after the whole job: WMV and VP8 become H.264 (every frame kept, odd
    sides padded to even, a note says so); AV1 (decoded by libdav1d) and HEVC are copied, HEVC
    from Matroska tagged hvc1 as Apple's players want it (ffmpeg's default is hev1)."""
    _, dub, srt = inputs
    suffix = {"wmv2": ".wmv", "vp8": ".webm", "av1": ".mkv", "hevc": ".mkv"}[codec]
    source = tmp_path / f"talk{suffix}"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    f"testsrc=size={size}:rate=10:duration=3", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=3", *args, "-shortest", str(source)],
                   check=True, capture_output=True, timeout=120)
    info = probe(source)
    assert info["streams"][0]["codec"] == codec
    media = MediaInfo(path=source, duration=info["duration"], has_video=True, audio_streams=1,
                      audio_codec=info["streams"][1]["codec"], video_codec=codec,
                      speech_audio=tmp_path / "unused16k.wav", full_audio=tmp_path / "unused.wav")
    ctx = JobContext(tmp_path / "run", "es", "en")
    out = FfmpegMuxer(MuxConfig(effort=Effort.low)).mux(media, dub, srt, tmp_path / "o.mp4", ctx)

    _, frames, width, height = frames_and_size(source)
    notes = [n for n in ctx.notes if "re-encoded to H.264" in n]
    if reencoded:
        assert frames_and_size(out) == ("h264", frames, width + width % 2, height + height % 2)
        assert notes == [f"mux: the input's video ({codec}) has no place in MP4 as it is; "
                         f"re-encoded to H.264 (libx264, CRF 20, preset superfast)"]
    else:
        assert frames_and_size(out) == (codec, frames, width, height) and not notes
        with av.open(str(source)) as a, av.open(str(out)) as b:
            if codec == "hevc":
                assert b.streams.video[0].codec_context.codec_tag == "hvc1"
            assert [bytes(p) for p in a.demux(a.streams.video[0]) if p.size] == \
                [bytes(p) for p in b.demux(b.streams.video[0]) if p.size]


@pytest.mark.parametrize("rate, original", [(8000, "aac"), (44100, "mp3")])
def test_an_mp3_original_is_copied_unless_mp4_cannot_carry_its_rate(inputs, tmp_path, rate,
                                                                    original):
    """MP4 carries MP3 from 16 kHz: a phone recording's 8 kHz MP3 (MPEG-2.5) is re-encoded
    to AAC for the original track instead of failing the mux."""
    _, dub, srt = inputs
    source = tmp_path / "call.mp3"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    f"sine=frequency=440:sample_rate={rate}:duration=3", "-c:a", "libmp3lame",
                    str(source)], check=True, capture_output=True, timeout=120)
    info = probe(source)
    media = MediaInfo(path=source, duration=info["duration"], has_video=False, audio_streams=1,
                      audio_codec="mp3", video_codec=None, speech_audio=tmp_path / "u16k.wav",
                      full_audio=tmp_path / "u.wav")
    out = FfmpegMuxer(MuxConfig()).mux(media, dub, srt, tmp_path / "call.es.mp4",
                                       JobContext(tmp_path / "run", "es", "en"))
    with av.open(str(out)) as container:
        codecs = [s.codec_context.codec.canonical_name for s in container.streams.audio]
        assert not container.streams.video
    assert codecs == ["aac", original]
    # Audio in, audio out: an .m4a, as podcast apps and players expect of audio in MP4.
    assert out == tmp_path / "call.es.m4a" and not (tmp_path / "call.es.mp4").exists()


def bottom_third(path: Path, at: float) -> np.ndarray:
    """The lower third of the frame shown at ``at`` seconds, as grey levels."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time >= at:
                grey = frame.to_ndarray(format="gray").astype(np.float32)
                return grey[2 * grey.shape[0] // 3:]
    raise AssertionError(f"no frame at {at} s in {path}")


def test_burned_subtitles_are_drawn_in_the_cue_and_nowhere_else(inputs, tmp_path, monkeypatch):
    """``mux.burn_subtitles``: the picture is re-encoded with the cue drawn into it while it
    shows (the lower third changes), and left alone outside it; the soft track stays; the
    copy of the subtitles made for the filter is gone afterwards."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    media, dub, srt = inputs  # one cue, "Hola", from 0.5 to 2.0 s
    ctx = JobContext(tmp_path / "run", "es", "en")
    out = FfmpegMuxer(MuxConfig(burn_subtitles=True)).mux(media, dub, srt,
                                                           tmp_path / "talk.es.mp4", ctx)

    assert frames_and_size(out)[:2] == ("h264", frames_and_size(media.path)[1])
    def changed(at: float) -> float:  # share of the lower third changed by more than coding
        return float((np.abs(bottom_third(out, at) - bottom_third(media.path, at)) > 48).mean())

    inside, outside = changed(1.2), changed(3.0)
    assert inside > 0.002 and outside < 0.0005, (inside, outside)  # "Hola": 0.6 % of it
    with av.open(str(out)) as container:
        assert len(container.streams.subtitles) == 1
    assert any("subtitles are drawn into the picture" in n for n in ctx.notes)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_burn_without_fonts_fails_in_one_line_and_keeps_no_video(inputs, tmp_path,
                                                                   monkeypatch):
    """libass draws nothing where fontconfig finds no font, and says so only as a warning:
    the mux fails rather than hand over a picture without its subtitles."""
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd">'
                    "<fontconfig></fontconfig>")
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))
    media, dub, srt = inputs
    out = tmp_path / "talk.es.mp4"
    with pytest.raises(VideodubError) as failure:
        FfmpegMuxer(MuxConfig(burn_subtitles=True)).mux(media, dub, srt, out,
                                                         JobContext(tmp_path / "run", "es", "en"))
    assert_message("burn_without_fonts", f"error: {failure.value}")
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.suffix == ".mp4"] == []


def test_characters_no_font_has_are_named():
    log = ("[Parsed_subtitles_0 @ 0x1] fontselect: failed to find any fallback with glyph "
           "0x65E5 for font: (Arial, 400, 0)\n[Parsed_subtitles_0 @ 0x1] fontselect: failed to "
           "find any fallback with glyph 0x672C for font: (Arial, 400, 0)\n")
    with pytest.raises(VideodubError) as failure:
        mux_ffmpeg.check_fonts(log, Path("x.srt"))
    assert_message("burn_missing_glyphs", f"error: {failure.value}")
    assert "has 日本 (from x.srt)" in str(failure.value)
    mux_ffmpeg.check_fonts("[mp4 @ 0x1] track 0: codec frame size is not set\n", Path("x.srt"))
