"""The dub track encoded in stretches on several threads and joined: it decodes to the input's
length and alignment, a join adds no more error than the codec makes anyway, and a failure
or an abort leaves no file and no thread behind."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import scipy.signal

from videodub.errors import VideodubError
from videodub.media import ffmpeg_exe
from videodub.parallel_encode import FRAME, ParallelEncoder, splices

RATE = 48000


SENTENCE = ("The quick brown fox jumps over the lazy dog while seven ships sail past the "
            "harbour lights and nobody hears the bells ring twice.")


def fresh_speech(text: str) -> tuple[np.ndarray, int]:
    """espeak-ng's speech for ``text`` from a new process: what espeak-ng says depends on what
    its process said before, and the figures below move with it (a join's overall error
    against one encoder's by -0.3 to +0.6 dB), so the input is the same whatever ran first."""
    code = ("import sys, numpy as np; from videodub.testing.samples import speak; "
            "a, r = speak(sys.argv[1]); "
            "sys.stdout.buffer.write(np.int32(r).tobytes() + a.astype('<f4').tobytes())")
    out = subprocess.run([sys.executable, "-c", code, text], capture_output=True, check=True,
                         timeout=120).stdout
    return np.frombuffer(out[4:], "<f4"), int(np.frombuffer(out[:4], "<i4")[0])


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """12 s of espeak speech at 48 kHz over faint noise, with a click every 0.7 s (transients
    make the encoder switch to short windows, the hardest case for a join)."""
    voice, rate = fresh_speech(SENTENCE)
    voice = scipy.signal.resample_poly(voice.astype(np.float64), RATE, rate)
    rng = np.random.default_rng(3)
    track = np.zeros(12 * RATE)
    track[:min(len(voice), len(track))] += 0.5 * voice[:len(track)] / np.abs(voice).max()
    track += 0.003 * rng.standard_normal(len(track))
    for k in range(int(12 / 0.7)):
        a = int(k * 0.7 * RATE) + 37
        track[a:a + 96] += 0.15 * rng.standard_normal(96)
    return np.clip(track, -1, 1).astype(np.float32)


def decode(path) -> np.ndarray:
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "f32le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, "<f4")


def encode(path, track: np.ndarray, workers: int, stretch_s: float, pieces: int = 7,
           coder: str = "fast") -> None:
    encoder = ParallelEncoder(path, RATE, 1, "aac", 64000, {"aac_coder": coder}, workers,
                              stretch_s=stretch_s)
    for piece in np.array_split(track[:, None], pieces):  # uneven writes, not frame-aligned
        encoder.write(piece)
    encoder.close()


def db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-20))


@pytest.mark.parametrize("coder, stretch_s", [("fast", 1.0), ("twoloop", 2.0)])
def test_joined_stretches_decode_like_one_encoder_at_the_same_length_and_place(
        tmp_path, speech, coder, stretch_s):
    """Eleven joins in 12 s with the fast coder, five with twoloop (its 2.7 s run-up)."""
    one, joined = tmp_path / "one.m4a", tmp_path / "joined.m4a"
    encode(one, speech, workers=1, stretch_s=1e9, coder=coder)
    encode(joined, speech, workers=3, stretch_s=stretch_s, coder=coder)
    a, b = decode(one), decode(joined)
    assert len(a) == len(b) == len(speech)  # priming and the short last frame trimmed exactly
    # Aligned to the sample (a shift would show as a lag), and as close to the input overall.
    excerpt = slice(2 * RATE, 4 * RATE)
    corr = scipy.signal.correlate(b[excerpt], speech[excerpt], mode="full", method="fft")
    assert np.argmax(corr) - (excerpt.stop - excerpt.start - 1) == 0
    assert db(b - speech) < db(speech) - 10
    # No worse than one encoder overall: twoloop's own figure moves by up to 0.9 dB with
    # where its encoder starts, so it is given 1 dB.
    assert db(b - speech) < db(a - speech) + (0.5 if coder == "fast" else 1.0)
    # No click at a join. Two encoders' errors differ by a few dB anywhere (a different rate
    # control path; up to 6 dB here over espeak's varying output), at a join or not. Joins
    # without the run-up and the frames past the end average 6-7 dB more, up to 13-15 dB.
    stretch = round(stretch_s * RATE / FRAME) * FRAME
    excess = []
    for join in range(stretch, len(speech) - stretch, stretch):
        around = slice(join - 2 * FRAME, join + 2 * FRAME)
        excess.append(db(b[around] - speech[around]) - db(a[around] - speech[around]))
    assert max(excess) < 10 and np.mean(excess) < 2, excess


def test_stereo_and_a_track_shorter_than_one_stretch(tmp_path, speech):
    stereo = np.stack([speech[:RATE // 3], -0.5 * speech[:RATE // 3]], axis=1)
    encoder = ParallelEncoder(tmp_path / "s.m4a", RATE, 2, "aac", 128000, {}, 2)
    encoder.write(stereo)
    encoder.close()
    out = decode(tmp_path / "s.m4a").reshape(-1, 2)
    assert out.shape == stereo.shape
    assert db(out - stereo) < db(stereo) - 10


def test_an_empty_track_is_an_error_not_an_empty_file(tmp_path):
    encoder = ParallelEncoder(tmp_path / "e.m4a", RATE, 1, "aac", 64000, {}, 2)
    with pytest.raises(VideodubError, match="empty"):
        encoder.close()
    encoder.abort()


def test_only_aac_with_a_known_coder_is_split():
    assert splices("aac", {"aac_coder": "fast"}) and splices("aac", {})
    assert splices("aac", {"aac_coder": "twoloop"})
    assert not splices("aac", {"aac_coder": "anmr"}) and not splices("libopus", {})
    with pytest.raises(ValueError):
        ParallelEncoder(None, RATE, 1, "libopus", 64000, {})


def test_a_failing_encoder_fails_the_mix_with_one_line_and_leaves_nothing(tmp_path, speech,
                                                                          monkeypatch):
    import soundfile

    from videodub.model import JobContext
    from videodub.parallel_encode import EncoderSpec
    from videodub.streammix import StreamingMix, StreamOptions

    soundfile.write(str(tmp_path / "bg.wav"), np.stack([speech, speech], 1), RATE)

    def broken(self, *args):
        raise RuntimeError("encoder out of memory")

    monkeypatch.setattr(ParallelEncoder, "_encode", broken)
    before = {t.name for t in threading.enumerate()}
    ctx = JobContext(tmp_path / "run", "es", "en")
    out = tmp_path / "dub.m4a"
    stream = StreamingMix(tmp_path / "bg.wav", out,
                          StreamOptions(-16.0, -1.5, -4.0, -18.0, 0.02, 0.4), ctx,
                          channels=1, stretches=EncoderSpec("aac", 64000, {}, 2))
    with pytest.raises(VideodubError, match="encoding the dubbed audio failed: encoder out of"):
        try:
            stream.add(speech[:RATE], 1.0)
            stream.close()
        finally:
            stream.abort()
    assert not out.exists() and not list(tmp_path.glob(".dub*"))
    left = {t.name for t in threading.enumerate()} - before
    assert not [n for n in left if n.startswith("videodub-encode")]


def test_a_pause_in_the_pipe_encodes_what_came_and_the_joins_stay_clean(tmp_path, speech):
    """The mix waits for clips (recognition is still on its next window): the feed encodes
    what it has then, as a shorter stretch, and the result is as one encoder's."""
    import os

    from videodub.parallel_encode import IDLE_S, feed

    one, fed = tmp_path / "one.m4a", tmp_path / "fed.m4a"
    encode(one, speech, workers=1, stretch_s=1e9)
    encoder = ParallelEncoder(fed, RATE, 1, "aac", 64000, {"aac_coder": "fast"}, 2,
                              stretch_s=10.0)
    submitted = []
    real_submit = encoder._submit

    def noted(end, last):
        submitted.append((encoder.next, end, last))
        real_submit(end, last)

    encoder._submit = noted
    read_end, write_end = os.pipe()
    errors: list[BaseException] = []
    with open(read_end, "rb") as stream:
        thread = feed(stream, encoder, 1, errors, on_error=lambda: None)
        data = speech.astype("<f4").tobytes()
        pause_at = 5 * RATE * 4 + 123 * 4  # 5 s and a bit: under one 10 s stretch
        os.write(write_end, data[:pause_at])
        threading.Event().wait(IDLE_S * 4)  # quiet: the mix waits for a clip
        assert submitted, "nothing was encoded during the pause"
        os.write(write_end, data[pause_at:])
        os.close(write_end)
        thread.join(10)
    assert not errors
    encoder.close()
    # The first stretch ended on the frame grid, two frames short of what had come.
    first_end = submitted[0][1]
    assert first_end % FRAME == 0 and first_end == (5 * RATE + 123) // FRAME * FRAME - 2 * FRAME
    a, b = decode(one), decode(fed)
    assert len(b) == len(speech)
    assert db(b - speech) < db(a - speech) + 0.5
    around = slice(first_end - 2 * FRAME, first_end + 2 * FRAME)
    assert db(b[around] - speech[around]) - db(a[around] - speech[around]) < 10
