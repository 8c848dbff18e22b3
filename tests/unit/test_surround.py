"""A surround original's centre channel (``videodub.surround``, ``extract``): written as the
stereo downmix carries it, so the downmix less it is the original without its centre; the
voice judged to be there alone, or not; and ingest handing it to the mix only then."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from helpers_surround import RATE, spoken, surround
from videodub.builtin import ingest_local
from videodub.builtin.ingest_local import LocalIngester, LocalIngestOptions
from videodub.config import implementation_config
from videodub.extract import Unsupported, WavOut, decode_to_wavs
from videodub.media import ffmpeg_exe
from videodub.model import JobContext
from videodub.surround import CENTRE_SHARE_MAX


def extracted(path: Path, folder: Path):
    stereo, centre = folder / "stereo.wav", folder / "centre.wav"
    decoded = decode_to_wavs(path, [WavOut(stereo, RATE, 2), WavOut(centre, RATE, 1, True)],
                             "extracting audio")
    return (decoded, soundfile.read(str(stereo), dtype="int32")[0] >> 16,
            soundfile.read(str(centre), dtype="int32")[0] >> 16)


@pytest.mark.parametrize("layout, pan", [
    ("5.1", "FL=FL|FR=FR|FC=0*FC|LFE=LFE|BL=BL|BR=BR"),
    ("7.1", "FL=FL|FR=FR|FC=0*FC|LFE=LFE|BL=BL|BR=BR|SL=SL|SR=SR")])
def test_the_downmix_less_the_centre_is_the_original_without_its_centre(tmp_path, layout, pan):
    """The same file with its centre silenced, downmixed by the ffmpeg command, is the
    extracted stereo less the extracted centre in each channel, to a bit or two."""
    path = surround(tmp_path, "film.wav", spoken(4.0), layout=layout)
    decoded, stereo, centre = extracted(path, tmp_path)
    assert decoded.centre_share is not None and decoded.centre_share < 0.05
    without = tmp_path / "without.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(path), "-af",
                    f"pan={layout}|{pan}", "-ac", "2",
                    "-c:a", "pcm_s16le", str(without)], check=True, capture_output=True,
                   timeout=60)
    reference = soundfile.read(str(without), dtype="int16")[0].astype(np.int32)
    assert np.abs(centre).max() > 1500  # the centre is there, loud
    rest = stereo - centre[:, None]
    assert len(rest) == len(reference)
    assert np.abs(rest - reference).max() <= 2


def test_a_dialogue_centre_is_told_from_a_voice_in_the_front_channels_too(tmp_path):
    """Where the centre is loud the other channels carry other sounds: a share near 0. The
    same voice at -6 dB in the front pair (as an upmix from stereo leaves it): over the
    limit, and ingest would take the voice out of the whole downmix."""
    voice = spoken(6.0)
    alone = extracted(surround(tmp_path, "alone.m4a", voice, codec=("-c:a", "aac")),
                      tmp_path)[0].centre_share
    upmixed = extracted(surround(tmp_path, "upmix.m4a", voice, 0.5, ("-c:a", "aac")),
                        tmp_path)[0].centre_share
    assert alone is not None and alone < 0.05
    assert upmixed is not None and upmixed > CENTRE_SHARE_MAX


def test_a_silent_centre_and_a_stereo_source_have_none(tmp_path):
    silent = extracted(surround(tmp_path, "silent.wav", np.zeros(2 * RATE, np.float32)),
                       tmp_path)
    assert silent[0].centre_share is None
    assert not silent[2].any()
    stereo = tmp_path / "stereo.wav"
    soundfile.write(str(stereo), np.stack([spoken(2.0), spoken(2.0)], 1), RATE)
    decoded, _, centre = extracted(stereo, tmp_path)
    assert decoded.centre_share is None and not centre.any()


def test_the_voice_is_judged_in_sections_and_a_stretch_with_it_elsewhere_too_is_named(
        tmp_path, monkeypatch):
    """A film whose voice is in the front pair too for two thirds of it (an upmixed scene,
    a score carrying it) measured over the whole file as not in the centre alone, and lost
    the centre for all of it. Judged in sections, the centre serves where the voice is
    there alone, and the stretch where it is not is named for the mix."""
    from videodub import surround as sr

    monkeypatch.setattr(sr, "SECTION_S", 5.0)
    voice = spoken(30.0)
    front = np.where(np.arange(len(voice)) >= 10 * RATE, 0.5, 0.0)
    film = surround(tmp_path, "film.wav", voice, front)
    decoded = extracted(film, tmp_path)[0]
    assert decoded.centre_share > sr.CENTRE_SHARE_MAX  # the whole file: not alone
    shares = [share for _, _, share in decoded.centre_sections]
    assert [a for a, _, _ in decoded.centre_sections] == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    assert max(shares[:2]) < 0.05 and min(shares[2:]) > sr.CENTRE_SHARE_MAX, shares
    assert sr.shared_stretches(list(decoded.centre_sections), 0.5) == [(10.5, 30.5)]
    media, notes = ingested(film, tmp_path)
    assert media.centre_audio is not None and media.centre_shared == [(10.0, 30.0)]
    assert any("except in 1 stretch where they follow it (0:10.0-0:30.0)" in n
               for n in notes), notes
    media, notes = ingested(surround(tmp_path, "upmix.wav", voice, 0.5), tmp_path)
    assert media.centre_audio is None and media.centre_shared == []  # nowhere alone


def ingested(path: Path, tmp_path: Path):
    ctx = JobContext(tmp_path / f"run-{path.stem}", "es", "en")
    options = implementation_config("ingest", "local", LocalIngestOptions)()
    media = LocalIngester(options).ingest(path, ctx)
    return media, [n for n in ctx.notes if n.startswith("ingest:")]


def test_ingest_hands_the_mix_the_centre_only_when_the_voice_is_there_alone(tmp_path):
    voice = spoken(4.0)
    media, notes = ingested(surround(tmp_path, "film.wav", voice), tmp_path)
    assert media.centre_audio is not None and media.centre_audio.is_file()
    assert soundfile.info(str(media.centre_audio)).frames == \
        soundfile.info(str(media.full_audio)).frames
    assert any("is in its centre channel" in n for n in notes), notes

    media, notes = ingested(surround(tmp_path, "upmix.wav", voice, 0.5), tmp_path)
    assert media.centre_audio is None
    assert not (media.full_audio.parent / "centre.wav").exists()
    assert any("is not in its centre channel alone" in n for n in notes), notes

    stereo = tmp_path / "stereo.wav"
    soundfile.write(str(stereo), np.stack([voice, 0.5 * voice], 1), RATE)
    media, notes = ingested(stereo, tmp_path)
    assert media.centre_audio is None and not any("centre" in n for n in notes)


def test_a_fully_checked_input_hands_on_its_centre_and_a_failed_one_leaves_none(tmp_path):
    """validation=full (the quality profile) decodes the file strictly while extracting:
    the centre comes with the rest; a file that fails the check leaves no centre behind."""
    from videodub.config import Validation
    from videodub.errors import VideodubError

    options = implementation_config("ingest", "local", LocalIngestOptions)()
    options.validation = Validation.full
    film = surround(tmp_path, "film.m4a", spoken(4.0), codec=("-c:a", "aac"))
    ctx = JobContext(tmp_path / "run", "es", "en")
    media = LocalIngester(options).ingest(film, ctx)
    assert media.centre_audio is not None and media.centre_audio.is_file()
    damaged = tmp_path / "damaged.m4a"
    data = bytearray(film.read_bytes())
    for at in range(len(data) // 3, len(data) * 2 // 3, 997):  # the middle of the audio
        data[at] ^= 0xFF
    damaged.write_bytes(bytes(data))
    bad = JobContext(tmp_path / "bad", "es", "en")
    with pytest.raises(VideodubError):
        LocalIngester(options).ingest(damaged, bad)
    assert not list(bad.work_dir.glob("*.wav"))


def test_a_stream_left_to_the_ffmpeg_command_is_not_read_apart(tmp_path, monkeypatch):
    """The ffmpeg command's one process per output cannot give the centre apart: the mix
    removes the voice from the whole downmix, and the note says why."""
    def unsupported(*args, **kwargs):
        raise Unsupported("no decoder")

    monkeypatch.setattr(ingest_local, "decode_to_wavs", unsupported)
    media, notes = ingested(surround(tmp_path, "film.wav", spoken(3.0)), tmp_path)
    assert media.centre_audio is None
    assert soundfile.info(str(media.full_audio)).channels == 2
    assert any("does not give its centre apart" in n for n in notes), notes


def centre_mix(tmp_path: Path, streaming: bool, seconds: float, starts: tuple[float, ...],
               with_centre: bool = True, shared: list[tuple[float, float]] = ()):
    """A surround original as ingest hands it on (noise above 4 kHz in both channels for the
    other channels, a 1 kHz tone standing in for the voice in the centre, which the
    downmix carries too), mixed under 1.5 s lines at ``starts``: (the mix's band power
    between two times and frequencies, the job's context)."""
    from types import SimpleNamespace

    from videodub.builtin.mix_duck import DuckMixer, DuckMixOptions
    from videodub.config import Effort
    from videodub.model import MediaInfo, Segment

    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    rng = np.random.default_rng(3)
    hiss = np.diff(rng.standard_normal((n + 1, 2)), axis=0) * 0.02  # mostly high
    voice = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    full, centre, clip = tmp_path / "full.wav", tmp_path / "centre.wav", tmp_path / "clip.wav"
    soundfile.write(str(full), (hiss + voice[:, None]).astype(np.float32), RATE, subtype="FLOAT")
    soundfile.write(str(centre), voice, RATE, subtype="FLOAT")
    soundfile.write(str(clip), (0.3 * np.sin(2 * np.pi * 440 * t[:int(1.5 * RATE)])), RATE)
    media = MediaInfo(path=full, duration=seconds, has_video=False, audio_streams=1,
                      audio_codec="pcm_f32le", video_codec=None, speech_audio=full,
                      full_audio=full, sample_rate=RATE,
                      centre_audio=centre if with_centre else None, centre_shared=list(shared))
    mixer = DuckMixer(SimpleNamespace(**{**vars(DuckMixOptions()), "streaming": streaming},
                                      effort=Effort.low))
    ctx = JobContext(tmp_path / "run", "es", "en")
    segs = [Segment(id=i, start=a, end=a + 1.5, target_text="x", slot_start=a,
                    slot_end=a + 1.5, audio_path=str(clip)) for i, a in enumerate(starts)]
    mixed = soundfile.read(str(mixer.mix(segs, media, ctx)), dtype="float32",
                           always_2d=True)[0].mean(axis=1)

    def band(a: float, b: float, lo: float, hi: float) -> float:
        spectrum = np.abs(np.fft.rfft(mixed[int(a * RATE):int(b * RATE)])) ** 2
        return float(spectrum[int(lo * (b - a)):int(hi * (b - a))].mean())

    return band, ctx


def db(x: float, y: float) -> float:
    return 10 * np.log10(x / y)


@pytest.mark.parametrize("streaming", [False, True], ids=["two-pass", "streaming"])
@pytest.mark.parametrize("with_centre", [True, False], ids=["centre", "no-centre"])
def test_under_a_line_the_centre_goes_and_the_other_channels_stay(tmp_path, streaming,
                                                                  with_centre):
    """The mix takes out the centre (a 1 kHz tone standing in for the voice) under a dubbed
    line and keeps the other channels (noise above 4 kHz) at their level there; without the
    centre it takes out everything there, as before."""
    band, ctx = centre_mix(tmp_path, streaming, 6.0, (2.0,), with_centre)
    # the centre's 1 kHz under the line against after it: gone either way
    assert db(band(2.2, 3.3, 990, 1010), band(4.4, 5.5, 990, 1010)) < -40
    under, after = band(2.2, 3.3, 6000, 20000), band(4.4, 5.5, 6000, 20000)
    if with_centre:
        assert abs(db(under, after)) < 1.0, db(under, after)
        assert any("of the centre channel" in n for n in ctx.notes), ctx.notes
        # the quality figures read what is left of the centre, not the kept music
        assert ctx.artifacts["voice_in_centre"]
        left = ctx.artifacts["background_levels"].db
        assert left[int(2.2 / 0.01):int(3.3 / 0.01)].max() < -90
        assert left[int(4.4 / 0.01):int(5.5 / 0.01)].min() > -30  # the voice where kept
    else:
        assert db(under, after) < -40


@pytest.mark.parametrize("streaming", [False, True], ids=["two-pass", "streaming"])
def test_where_the_voice_is_in_the_other_channels_too_everything_goes_under_a_line(
        tmp_path, streaming):
    """A centre with stretches where the voice is in the other channels too: under a line
    in such a stretch the whole background goes (the centre alone would leave the voice);
    under a line elsewhere only the centre goes and the rest plays on."""
    band, ctx = centre_mix(tmp_path, streaming, 8.0, (1.0, 5.0), shared=[(4.0, 8.0)])
    hiss_after = band(3.0, 3.9, 6000, 20000)  # between the lines: all of it plays
    assert abs(db(band(1.2, 2.3, 6000, 20000), hiss_after)) < 1.0  # alone: the rest stays
    assert db(band(5.2, 6.3, 6000, 20000), hiss_after) < -40  # shared: all of it goes
    for a, b in ((1.2, 2.3), (5.2, 6.3)):  # the voice goes under both
        assert db(band(a, b, 990, 1010), band(3.0, 3.9, 990, 1010)) < -40
    left = ctx.artifacts["background_levels"].db  # the original's voice as the figures read it
    assert left[int(1.2 / 0.01):int(2.3 / 0.01)].max() < -90
    assert left[int(5.2 / 0.01):int(6.3 / 0.01)].max() < -60
