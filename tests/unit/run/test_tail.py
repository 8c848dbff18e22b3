"""The short tail: the mixer encodes the dub track the muxer's way while it mixes, and the
muxer copies that track instead of encoding it again."""

from __future__ import annotations

import hashlib

import av
import numpy as np
import pytest
import soundfile
from conftest import Talk

from videodub.builtin.mix_duck import DuckMixer, DuckMixOptions
from videodub.builtin.mux_ffmpeg import FfmpegMuxer, FfmpegMuxOptions
from videodub.config import Effort, implementation_config
from videodub.media import probe, run_ffmpeg
from videodub.model import DubEncoding, JobContext, MediaInfo, Segment
from videodub.run.tail import connect_tail
from videodub.subtitles import write_srt

MixConfig = implementation_config("mix", "duck", DuckMixOptions)
MuxConfig = implementation_config("mux", "ffmpeg", FfmpegMuxOptions)


def test_the_muxers_encoding_is_handed_to_a_streaming_mixer():
    mixer = DuckMixer(MixConfig())
    muxer = FfmpegMuxer(MuxConfig(effort=Effort.low))
    assert connect_tail({"mix": mixer, "mux": muxer})
    assert mixer.encoding == muxer.dub_encoding()
    assert mixer.encoding.args == ("-c:a", "aac", "-aac_coder", "fast", "-b:a", "128k")
    assert mixer.encoding.suffix == ".m4a"


def test_stages_without_the_capabilities_are_left_alone():
    class PlainMixer:
        def mix(self, segments, media, ctx):
            raise AssertionError

    assert not connect_tail({"mix": PlainMixer(), "mux": FfmpegMuxer(MuxConfig())})


def packets(path, index=0) -> str:
    """A hash of the audio track's packet bytes: equal only when copied, not re-encoded."""
    h = hashlib.sha256()
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.audio[index]):
            if packet.size:
                h.update(bytes(packet))
    return h.hexdigest()


@pytest.mark.parametrize("streaming", [True, False])
def test_a_track_encoded_while_mixing_is_copied_into_the_video(short_talk: Talk, tmp_path,
                                                              streaming):
    info = probe(short_talk.path)
    rate = 48000
    frames = int(info["duration"] * rate)
    rng = np.random.default_rng(2)
    full = tmp_path / "original.wav"
    soundfile.write(str(full), (0.05 * rng.standard_normal((frames, 2))).astype(np.float32), rate)
    clip = tmp_path / "clip.wav"
    soundfile.write(str(clip), (0.3 * np.sin(np.arange(2 * rate) / 20)).astype(np.float32), rate)
    media = MediaInfo(path=short_talk.path, duration=info["duration"], has_video=True,
                      audio_streams=1, audio_codec="aac", video_codec="h264",
                      speech_audio=full, full_audio=full, sample_rate=rate)
    mixer = DuckMixer(MixConfig(streaming=streaming))
    muxer = FfmpegMuxer(MuxConfig(effort=Effort.low))
    connect_tail({"mix": mixer, "mux": muxer})
    ctx = JobContext(tmp_path / "run", "es", "en")
    seg = Segment(id=0, start=1.0, end=3.0, target_text="x", slot_start=1.0, slot_end=3.0,
                  audio_path=str(clip))
    mixed = mixer.mix([seg], media, ctx)
    assert mixed.suffix == (".m4a" if streaming else ".wav")
    srt = write_srt([seg], tmp_path / "talk.es.srt", target=True)
    video = muxer.mux(media, mixed, srt, tmp_path / "talk.es.mp4", ctx)
    if streaming:
        assert packets(video) == packets(mixed), "the encoded track was encoded again"
    with av.open(str(video)) as container:
        dub = container.streams.audio[0]
        assert dub.codec_context.name == "aac" and dub.metadata.get("language") == "spa"
        assert abs(float(dub.duration * dub.time_base) - info["duration"]) < 0.05
    run_ffmpeg(["-v", "error", "-xerror", "-i", str(video), "-map", "0:v", "-map", "0:a", "-f",
                "null", "-"])
