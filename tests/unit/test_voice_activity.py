"""Speech regions by voice: Silero decides what is speech, the energy detector places its edges
where it hears them. Media is synthesized: espeak-ng lines, white noise, a tune of decaying
harmonic notes."""

from __future__ import annotations

import math
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from videodub import voice_activity
from videodub.speech_regions import Regions, regions_of_file
from videodub.testing.samples import ENGLISH_TALK, speak
from videodub.voice_activity import probabilities, refine, voice_regions_of_file

RATE = 16000


def talk(lines: int = 3, lead_in: float = 1.0, pause: float = 1.2):
    """Mono 16 kHz speech of the demo talk's first ``lines`` lines and their known spans."""
    pieces, spans, t = [np.zeros(int(lead_in * RATE), np.float32)], [], lead_in
    for text, _ in ENGLISH_TALK[:lines]:
        audio, rate = speak(text)
        audio = soxr.resample(audio, rate, RATE).astype(np.float32) * 0.8
        spans.append((t, t + len(audio) / RATE))
        pieces += [audio, np.zeros(int(pause * RATE), np.float32)]
        t += len(audio) / RATE + pause
    return np.concatenate(pieces), spans


def with_noise(speech: np.ndarray, spans, snr_db: float) -> np.ndarray:
    """White noise at ``snr_db`` below the speech's own power (measured over its lines)."""
    voiced = np.concatenate([speech[int(s * RATE):int(e * RATE)] for s, e in spans])
    noise = np.random.default_rng(7).standard_normal(len(speech)).astype(np.float32)
    noise *= np.sqrt(np.mean(voiced ** 2) / 10 ** (snr_db / 10))
    return speech + noise


def tune(seconds: float) -> np.ndarray:
    """Notes with four harmonics, each decaying, two a second: loud, steady, not a voice."""
    t = np.arange(int(0.5 * RATE)) / RATE
    notes = [220, 277, 330, 440, 392, 330, 294, 262]
    out = [sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3, 4)) * np.exp(-3 * t) * 0.15
           for f in (notes * 8)[:int(seconds * 2)]]
    return np.concatenate(out).astype(np.float32)


def onset_errors(regions: Regions, spans) -> list[float]:
    """For each known line, its onset error against the region that covers its start."""
    out = []
    for s, e in spans:
        near = [r for r, q in regions.spans if q > s and r < e]
        out.append(near[0] - s if near else float("inf"))
    return out


@pytest.mark.parametrize("snr_db", [0, 3])
def test_speech_under_noise_is_found_where_the_energy_detector_hears_little(tmp_path, snr_db):
    speech, spans = talk()
    path = tmp_path / "noisy.wav"
    soundfile.write(str(path), with_noise(speech, spans, snr_db), RATE, subtype="PCM_16")
    energy = regions_of_file(path)
    said = sum(e - s for s, e in spans)
    # Why: the energy detector hears under a third of the speech at these levels.
    assert energy.total() < 0.3 * said
    regions = voice_regions_of_file(path)
    assert all(abs(err) <= 0.15 for err in onset_errors(regions, spans)), regions.spans
    # Every region is in a line (Silero ends a region up to 0.35 s late), and the lines heard.
    assert all(any(s - 0.15 <= r and q <= e + 0.4 for s, e in spans) for r, q in regions.spans), \
        regions.spans
    assert regions.total() == pytest.approx(said, abs=0.3 * len(spans))


def test_a_tune_before_the_talk_is_not_speech(tmp_path):
    speech, spans = talk(lines=2, lead_in=0.5)
    intro = tune(8.0)
    path = tmp_path / "intro.wav"
    soundfile.write(str(path), np.concatenate([intro, speech]), RATE, subtype="PCM_16")
    start = len(intro) / RATE
    energy = regions_of_file(path)
    assert energy.overlap(0.0, start) > 6.0  # loud enough that energy calls it speech
    regions = voice_regions_of_file(path)
    assert regions.overlap(0.0, start) == 0.0
    known = [(s + start, e + start) for s, e in spans]
    assert all(abs(err) <= 0.05 for err in onset_errors(regions, known)), regions.spans


def test_clean_speech_keeps_the_energy_detectors_exact_edges_and_pauses(tmp_path):
    speech, spans = talk()
    path = tmp_path / "clean.wav"
    hum = 0.02 * np.sin(2 * np.pi * 110 * np.arange(len(speech)) / RATE)
    soundfile.write(str(path), speech + hum.astype(np.float32), RATE, subtype="PCM_16")
    energy, regions = regions_of_file(path), voice_regions_of_file(path)
    assert [s for s, _ in regions.spans] == [s for s, _ in energy.spans]
    assert len(regions.spans) >= len(spans)


def test_the_model_read_in_blocks_gives_one_calls_probabilities(tmp_path, monkeypatch):
    import faster_whisper.vad as fv

    speech, spans = talk(lines=2)
    audio = with_noise(speech, spans, 10)
    audio = audio[: len(audio) // 512 * 512 + 100]  # a last frame that needs padding
    path = tmp_path / "speech.wav"
    soundfile.write(str(path), audio, RATE, subtype="FLOAT")
    monkeypatch.setattr(voice_activity, "BATCH", 37)  # many blocks, none a whole batch
    blocks = probabilities(path)
    whole = np.asarray(fv.get_vad_model()(np.pad(audio, (0, 512 - 100)))).reshape(-1)
    assert blocks.shape == whole.shape
    np.testing.assert_allclose(blocks, whole, atol=1e-4)


def test_a_file_at_another_rate_and_in_stereo_gives_the_same_regions(tmp_path):
    speech, spans = talk(lines=2)
    noisy = with_noise(speech, spans, 3)
    mono16, stereo48 = tmp_path / "a.wav", tmp_path / "b.wav"
    soundfile.write(str(mono16), noisy, RATE, subtype="PCM_16")
    up = soxr.resample(noisy, RATE, 48000)
    soundfile.write(str(stereo48), np.stack([up, up], axis=1), 48000, subtype="PCM_16")
    a, b = voice_regions_of_file(mono16), voice_regions_of_file(stereo48)
    assert len(a.spans) == len(b.spans) == 2
    for (s1, e1), (s2, e2) in zip(a.spans, b.spans):
        assert abs(s1 - s2) <= 0.033 and abs(e1 - e2) <= 0.25


def test_refine_keeps_heard_pauses_cuts_music_and_falls_back_to_the_voice():
    energy = Regions(((0.0, 9.0), (9.4, 10.0), (20.05, 20.1), (30.0, 31.0), (40.5, 41.0)),
                     50.0, -40.0)
    voice = [(8.0, 10.1), (20.0, 22.0), (40.0, 41.0)]
    # (8, 10.1): heard, its pause at 9.0-9.4 kept; the music from 0 s into it is not speech.
    # (20, 22): 50 ms heard of 2 s: the voice span. (30, 31): no voice, not speech.
    # (40, 41): heard, but the first onset 0.5 s in is lost in noise: the span's start.
    assert refine(voice, energy) == ((8.0, 9.0), (9.4, 10.0), (20.0, 22.0), (40.0, 41.0))
    # An onset up to 0.12 s before the voice span is the energy detector's (exact on clean
    # speech, where Silero starts a frame or two late).
    assert refine([(5.0, 6.0)], Regions(((4.9, 6.0),), 10.0, -40.0)) == ((4.9, 6.0),)


def test_without_a_model_it_can_read_the_energy_regions_stand(tmp_path, monkeypatch):
    speech, spans = talk(lines=1)
    path = tmp_path / "s.wav"
    soundfile.write(str(path), speech, RATE, subtype="PCM_16")

    def no_model(path):
        raise RuntimeError("faster-whisper's VAD model takes other inputs than Silero v6")

    monkeypatch.setattr(voice_activity, "probabilities", no_model)
    assert voice_regions_of_file(path) == regions_of_file(path)


@pytest.mark.parametrize("streaming", [False, True], ids=["two-pass", "streaming"])
def test_the_mix_keeps_a_tune_that_plays_before_the_talk(tmp_path, streaming):
    """The energy detector called the tune speech, and the mix took it out of the dub
    (-120 dB where the original's intro was -18.5 dB)."""
    from types import SimpleNamespace

    from videodub.builtin.mix_duck import DuckMixer, DuckMixOptions
    from videodub.config import Effort
    from videodub.model import JobContext, MediaInfo, Segment

    speech, spans = talk(lines=1, lead_in=0.5, pause=2.0)
    intro = tune(4.0)
    source = np.concatenate([intro, speech])
    start = len(intro) / RATE
    speech_path, full = tmp_path / "speech.wav", tmp_path / "full.wav"
    soundfile.write(str(speech_path), source, RATE, subtype="PCM_16")
    up = soxr.resample(source, RATE, 48000)
    soundfile.write(str(full), np.stack([up, up], axis=1), 48000, subtype="PCM_16")
    clip = tmp_path / "clip.wav"
    soundfile.write(str(clip), talk(lines=1, lead_in=0.0, pause=0.0)[0], RATE)
    duration = len(source) / RATE
    media = MediaInfo(path=full, duration=duration, has_video=False, audio_streams=1,
                      audio_codec="pcm_s16le", video_codec=None, speech_audio=speech_path,
                      full_audio=full, sample_rate=48000)
    mixer = DuckMixer(SimpleNamespace(**{**vars(DuckMixOptions()), "streaming": streaming},
                                      effort=Effort.low))
    voice_activity.by_voice(speech_path)  # as faster_whisper's job says
    s, e = spans[0][0] + start, spans[0][1] + start
    seg = Segment(id=0, start=s, end=e, target_text="x", slot_start=s, slot_end=e + 1.0,
                  audio_path=str(clip))
    out = mixer.mix([seg], media, JobContext(tmp_path / "run", "es", "en"))
    mixed = soundfile.read(str(out), dtype="float32", always_2d=True)[0].mean(axis=1)
    assert regions_of_file(speech_path).overlap(0.0, start) > 3.0  # energy: "speech"

    def level(a: float, b: float) -> float:  # the mix's RMS over the original's, a..b
        o, m = up[int(a * 48000):int(b * 48000)], mixed[int(a * 48000):int(b * 48000)]
        return float(np.sqrt(np.mean(m ** 2) / np.mean(o ** 2)))

    assert level(0.2, start - 0.5) > 0.5  # the tune plays, at about the mix's gain


def offer_windows(path, audio: np.ndarray, cut: int) -> None:
    """What the transcriber's VAD tells of two windows of ``audio``, cut at sample ``cut``
    (each its own model state, its last frame padded)."""
    import faster_whisper.vad as fv

    for at, window in ((0, audio[:cut]), (cut, audio[cut:])):
        padded = np.pad(window, (0, 512 - len(window) % 512))
        voice_activity.offer(path, at, len(window), fv.get_vad_model()(padded))


def test_the_transcribers_probabilities_are_read_not_computed_again(tmp_path, monkeypatch):
    speech, spans = talk()
    audio = with_noise(speech, spans, 0)
    path, copy = tmp_path / "speech.wav", tmp_path / "copy.wav"
    for p in (path, copy):
        soundfile.write(str(p), audio, RATE, subtype="PCM_16")
    audio = soundfile.read(str(path), dtype="float32")[0]  # as the transcriber reads it
    expected = voice_regions_of_file(copy)
    offer_windows(path, audio, cut=5 * RATE + 123)

    def computed(*args):
        raise AssertionError("the model ran again")

    monkeypatch.setattr(voice_activity, "probabilities", computed)
    found = voice_regions_of_file(path)
    # Each window's model starts afresh: a short pause may be bridged in one and not in the
    # other, but every line starts within a frame or so, and as much is speech.
    assert np.allclose(onset_errors(found, spans), onset_errors(expected, spans), atol=0.05)
    assert found.total() == pytest.approx(expected.total(), abs=0.4)


def test_only_what_the_transcriber_has_not_reached_is_computed(tmp_path, monkeypatch):
    speech, spans = talk()
    path = tmp_path / "speech.wav"
    soundfile.write(str(path), with_noise(speech, spans, 0), RATE, subtype="PCM_16")
    audio = soundfile.read(str(path), dtype="float32")[0]
    cut = 6 * RATE + 77
    offer_windows(path, audio[:cut + 4 * RATE], cut)  # two windows, 10 s of 13
    starts = []
    real = voice_activity.probabilities

    def computed(p, start=0, count=-1, carry=None):
        starts.append(start)
        return real(p, start, count, carry)

    monkeypatch.setattr(voice_activity, "probabilities", computed)
    found = voice_regions_of_file(path)
    assert starts == [cut + 4 * RATE]
    assert all(abs(err) <= 0.15 for err in onset_errors(found, spans)), found.spans
    # A window that does not follow on is not taken: a new pass starts at 0.
    voice_activity.offer(path, 3 * RATE, RATE, np.zeros(32))
    assert [at for at, _, _ in voice_activity._offered[voice_activity._store_key(path)]] == [0, cut]


def test_the_hysteresis_without_a_loop_is_the_loop_s():
    """voice_spans decides every frame at once (two hours are 225,000 frames); a frame by
    frame reading of the same rule gives the same spans."""
    from videodub.voice_activity import FRAME_S, MERGE_GAP_S, MIN_SPEECH_S, OFF, ON, voice_spans

    def by_frame(probs, duration):
        spans, speaking, begin = [], False, 0
        for i, p in enumerate(np.append(probs, 0.0)):
            if not speaking and p >= ON:
                speaking, begin = True, i
            elif speaking and p < OFF:
                speaking = False
                s, e = begin * FRAME_S, min(i * FRAME_S, duration)
                if spans and s - spans[-1][1] < MERGE_GAP_S:
                    spans[-1][1] = e
                else:
                    spans.append([s, e])
        return [(s, e) for s, e in spans if e - s >= MIN_SPEECH_S]

    rng = np.random.default_rng(1)
    for _ in range(200):
        probs = np.clip(np.cumsum(rng.normal(0, 0.15, rng.integers(1, 400))), 0, 1)
        probs = probs.astype(np.float32)
        expected = by_frame(probs, len(probs) * FRAME_S)
        found = voice_spans(probs, len(probs) * FRAME_S)
        assert len(found) == len(expected)
        assert np.allclose(np.array(found).reshape(-1), np.array(expected).reshape(-1))


def test_regions_up_to_a_time_run_the_model_only_a_little_past_it(tmp_path, monkeypatch):
    """align asks about each line as it comes: on long media the model runs up to it, a
    piece at a time (its state carried from one to the next), not over the whole file before
    the first line (with transcribe=openai, 1000 lines, that held align 7 s at its first
    line)."""
    from videodub.voice_activity import FRAME, voice_regions_until

    speech, spans = talk()
    path = tmp_path / "speech.wav"
    soundfile.write(str(path), with_noise(speech, spans, 0), RATE, subtype="PCM_16")
    monkeypatch.setattr(voice_activity, "PIECE_S", 2.0)
    step = 2 * RATE // FRAME * FRAME  # whole frames
    counts = []
    real = voice_activity.probabilities

    def computed(p, start=0, count=-1, carry=None):
        counts.append((start, count))
        return real(p, start, count, carry)

    monkeypatch.setattr(voice_activity, "probabilities", computed)
    regions, good_to = voice_regions_until(path, 3.0)  # 4 s needed: the edge beyond it
    assert counts == [(0, step), (step, step), (2 * step, step)]
    assert good_to == pytest.approx(3 * step / RATE - 1.0)
    assert regions.spans[0][0] == pytest.approx(spans[0][0], abs=0.15)
    regions, good_to = voice_regions_until(path, good_to - 0.5)  # reached: nothing run
    assert len(counts) == 3
    regions, good_to = voice_regions_until(path, 8.0)
    assert [start for start, _ in counts[3:]] == [3 * step, 4 * step]  # to 9 s and past
    assert good_to >= 8.0
    # the pieces, each on from the one before, are one pass's regions
    fresh = tmp_path / "fresh.wav"
    fresh.write_bytes(path.read_bytes())
    whole = voice_regions_of_file(fresh)
    assert [s for s in regions.spans if s[1] < good_to] == \
        [s for s in whole.spans if s[1] < good_to]


def test_run_ahead_gives_one_pass_s_regions_and_leaves_align_nothing_to_run(tmp_path,
                                                                           monkeypatch):
    """transcribe=openai has the model run ahead in a thread while it waits on the API: the
    regions are those of one pass over the file, whoever ran which piece, and align then
    asks for nothing more. A cancelled job's thread runs nothing."""
    from videodub.voice_activity import RunAhead, voice_regions_until

    speech, spans = talk()
    first = tmp_path / "first.wav"
    soundfile.write(str(first), with_noise(speech, spans, 0), RATE, subtype="PCM_16")
    for name in ("second.wav", "third.wav"):
        (tmp_path / name).write_bytes(first.read_bytes())
    monkeypatch.setattr(voice_activity, "PIECE_S", 2.0)
    counts = []
    real = voice_activity.probabilities

    def computed(p, start=0, count=-1, carry=None):
        counts.append(Path(p).name)
        return real(p, start, count, carry)

    monkeypatch.setattr(voice_activity, "probabilities", computed)
    whole = voice_regions_of_file(first)
    RunAhead(tmp_path / "second.wav", threading.Event()).thread.join()
    ran = len(counts)
    assert counts.count("second.wav") == ran - 1 > 3
    assert voice_regions_until(tmp_path / "second.wav", 5.0)[0] == whole
    assert len(counts) == ran
    cancel = threading.Event()
    cancel.set()
    RunAhead(tmp_path / "third.wav", cancel).thread.join()
    assert "third.wav" not in counts


def test_a_job_finds_its_regions_by_voice_only_where_its_transcriber_runs_silero(tmp_path):
    """faster_whisper (with transcribe.vad) says so; a transcriber that sends the audio away
    does not, and its job keeps the energy detector's regions (no model on align's path)."""
    from videodub.voice_activity import source_regions_of_file, source_regions_until

    speech, spans = talk(lines=1, lead_in=0.5)
    path = tmp_path / "speech.wav"
    soundfile.write(str(path), np.concatenate([tune(4.0), speech]), RATE, subtype="PCM_16")
    energy = regions_of_file(path)
    assert source_regions_of_file(path) == energy
    assert source_regions_until(path, 2.0) == (energy, math.inf)
    voice_activity.by_voice(path)
    assert source_regions_of_file(path) == voice_regions_of_file(path) != energy
    assert source_regions_of_file(path).overlap(0.0, 4.0) == 0.0


def test_regions_for_where_the_mix_is_do_not_run_the_model_ahead_of_the_transcriber(tmp_path, monkeypatch):
    """The mix asks for what it has reached; the transcriber's windows reach further. Asking
    a minute ahead had the model run over the next window itself, and every window after it
    (the transcriber's no longer joined up)."""
    from videodub.background import StreamingRemoval
    from videodub.voice_activity import source_regions_until

    speech, spans = talk()
    path = tmp_path / "speech.wav"
    soundfile.write(str(path), with_noise(speech, spans, 0), RATE, subtype="PCM_16")
    audio = soundfile.read(str(path), dtype="float32")[0]
    cut = 6 * RATE
    offer_windows(path, audio[:cut + 4 * RATE], cut)  # the first two of three windows
    voice_activity.by_voice(path)
    monkeypatch.setattr(voice_activity, "probabilities",
                        lambda *args: pytest.fail("the model ran ahead of the transcriber"))
    removal = StreamingRemoval(partial(source_regions_until, path))
    removal.gains(0, 4 * RATE, RATE)  # the mix at 4 s of the 10 s the windows cover
    assert removal.spans and removal._good_to == pytest.approx(9.0)


def test_the_model_is_read_without_importing_faster_whisper_where_it_is_not(tmp_path):
    """A job that sends its audio away has no faster-whisper loaded: the run ahead loads the
    model file as faster-whisper does, without its package (CTranslate2, tokenizers: 50 MB),
    and hears the same probabilities."""
    import subprocess
    import sys

    speech, spans = talk(lines=2)
    path = tmp_path / "speech.wav"
    soundfile.write(str(path), speech, RATE, subtype="PCM_16")
    script = (
        "import sys, threading, numpy as np\n"
        "from videodub import voice_activity as va\n"
        f"va.RunAhead({str(path)!r}, threading.Event()).thread.join()\n"
        f"np.save({str(tmp_path / 'own.npy')!r}, va.file_probabilities(__import__('pathlib')"
        f".Path({str(path)!r}))[0])\n"
        "print('faster_whisper' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "False", out.stderr
    import faster_whisper.vad  # noqa: F401  (this process: the transcriber's session)

    assert np.array_equal(np.load(tmp_path / "own.npy"), probabilities(path))
