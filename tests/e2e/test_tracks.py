"""Films come with several tracks: the speech may not be the first audio track, and the
other audio tracks and subtitles must survive the dub."""

from __future__ import annotations

import re

import av
import pytest

from conftest import TONE_HZ
from videodub.testing.samples import ENGLISH_TALK


@pytest.mark.slow
def test_the_speech_track_is_dubbed_and_the_films_other_tracks_kept(run_cli, multitrack_talk,
                                                                    tmp_path):
    """source_lang=en picks the track tagged eng (the second; the first is a tone); the
    quality profile decodes the whole file first (subtitle tracks and all); the output keeps
    the tone track and the German subtitles after ours. A run that asks for the tone track
    does not reuse the talk's transcript from the cache: it finds no speech."""
    cache = tmp_path / "cache"
    run = run_cli(f"input={multitrack_talk}", "target_lang=en", "source_lang=en",
                  "translate=none", "profile=quality", cache_dir=cache).check()

    heard = set(re.findall(r"[a-z']+",
                           " ".join(s["source_text"] for s in run.segments()).lower()))
    said = set(re.findall(r"[a-z']+", " ".join(line for line, _ in ENGLISH_TALK[:2]).lower()))
    assert len(heard & said) >= 0.8 * len(said), heard
    with av.open(str(run.video)) as container:
        audio = [(s.metadata.get("language"), s.metadata.get("name"))
                 for s in container.streams.audio]
        subtitles = [s.metadata.get("language") for s in container.streams.subtitles]
    assert audio == [("eng", "Dub (en)"), ("eng", "Original"), ("fre", "Commentary")]
    assert subtitles == ["eng", "ger"]
    assert "ingest: audio track 1 (eng) of 2 is dubbed (ingest.audio_track)" in \
        run.report()["notes"]

    tone = run_cli(f"input={multitrack_talk}", "target_lang=en", "source_lang=en",
                   "translate=none", "profile=quality", "ingest.audio_track=0", cache_dir=cache)
    assert tone.returncode == 2, tone.describe()
    assert tone.error_lines == ["error: no speech found in multi.mkv"]


def ffmpeg_loudness(path) -> float:
    """The dub track's integrated loudness by FFmpeg's own meter (BS.1770, channel weights
    and all)."""
    from videodub.media import run_ffmpeg

    log = run_ffmpeg(["-v", "info", "-nostats", "-i", str(path), "-map", "0:a:0", "-af",
                      "ebur128=framelog=quiet", "-f", "null", "-"])
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", log)[-1])


@pytest.mark.slow
def test_a_surround_films_voice_is_taken_out_of_its_centre_and_its_music_stays(
        run_cli, short_talk, tmp_path):
    """5.1 as films carry dialogue: the talk in the centre channel alone, a 5 kHz tone (the
    film's music) in the four others. Dubbed into Spanish, the tone plays on under the lines
    at its level (it was cut there, with the voice, before the centre was read apart), and
    what is left of the centre where the source speaks is nothing."""
    import numpy as np
    import soundfile

    from videodub.media import run_ffmpeg

    rate = 48000
    mono = tmp_path / "talk.wav"
    run_ffmpeg(["-v", "error", "-i", str(short_talk.path), "-ac", "1", "-ar", str(rate),
                str(mono)])
    voice = soundfile.read(str(mono), dtype="float32")[0]
    tone = 0.05 * np.sin(2 * np.pi * TONE_HZ * np.arange(len(voice)) / rate)
    zero = np.zeros_like(voice)
    wav, film = tmp_path / "film.wav", tmp_path / "film.m4a"
    soundfile.write(str(wav), np.stack([tone, tone, voice, zero, tone, tone], 1), rate)
    run_ffmpeg(["-v", "error", "-i", str(wav), "-af", "aformat=channel_layouts=5.1",
                "-c:a", "aac", "-b:a", "384k", str(film)])

    run = run_cli(f"input={film}", "target_lang=es", "translate=subtitles",
                  f"translate.file={short_talk.translation_srt}", "profile=speed").check()
    notes = run.report()["notes"]
    assert any(n.startswith("ingest: the voice of film.m4a is in its centre channel")
               for n in notes), notes
    assert any(n.endswith("speech regions of the centre channel") for n in notes), notes
    left = run.report()["quality"]["original_voice"]
    assert left["centre_only"] and left["original_where_source_speaks_db"] < -60, left

    with av.open(str(run.video)) as container:
        stream = container.streams.audio[0]
        assert (stream.layout.name, stream.channels) == ("5.1", 6)
        channels = np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1)
        dub_rate = stream.rate
    dub = channels.mean(axis=0)

    def tone_db(a: float, b: float) -> float:  # its peak: the dub's voice spreads thin
        window = dub[int(a * dub_rate):int(b * dub_rate)] * np.hanning(int(b * dub_rate)
                                                                      - int(a * dub_rate))
        spectrum = np.abs(np.fft.rfft(window)) / window.size
        return 20 * np.log10(spectrum[int((TONE_HZ - 3) * (b - a)):
                                      int((TONE_HZ + 3) * (b - a))].max())

    before = tone_db(0.1, short_talk.script[0].start - 0.3)
    for line in short_talk.script:
        assert abs(tone_db(line.start + 0.2, line.end - 0.2) - before) < 3.0

    # The dub is in the centre alone; the front pair and the surrounds keep the tone, as it
    # was, at its level; the LFE stays silent.
    def power(channel: int, a: float, b: float) -> float:
        x = channels[channel, int(a * dub_rate):int(b * dub_rate)]
        return 10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-20)

    for line in short_talk.script:
        a, b = line.start + 0.2, line.end - 0.2
        assert power(2, a, b) > power(0, a, b) + 6  # the dub's voice over a -26 dBFS tone
        for other in (0, 1, 4, 5):
            assert abs(power(other, a, b) - power(other, 0.1, short_talk.script[0].start
                                                  - 0.3)) < 1.0
    assert power(3, 0.0, len(dub) / dub_rate) < -80
    assert "mix: dubbed in 5.1, the original's own channels: the dub in the centre, the " \
        "others as they are" in notes
    loudness = ffmpeg_loudness(run.video)
    assert abs(loudness - (-16.0)) <= 1.0, loudness
