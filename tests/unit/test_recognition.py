"""Where Whisper runs: device auto|cpu|cuda and the compute type that goes with it."""

from __future__ import annotations

import pytest

from videodub.errors import VideodubError
from videodub.plugins import installed_registry
from videodub.recognition import cuda_devices, resolve_compute_type, resolve_device

NO_GPU = pytest.mark.skipif(cuda_devices() > 0, reason="this machine has a GPU")


def options(**kw):
    return installed_registry().get("transcribe", "faster_whisper").config(**kw)


def test_auto_compute_type_is_int8_on_a_cpu_and_float16_on_a_gpu():
    assert resolve_compute_type("auto", "cpu") == "int8"
    assert resolve_compute_type("auto", "cuda") == "float16"
    assert resolve_compute_type("int8_float32", "cuda") == "int8_float32"


def test_auto_device_is_the_gpu_when_there_is_one():
    assert resolve_device("auto") == ("cuda" if cuda_devices() > 0 else "cpu")
    assert resolve_device("cpu") == "cpu"


@NO_GPU
def test_cuda_without_a_gpu_is_one_line():
    with pytest.raises(VideodubError, match="transcribe.device=cuda but no CUDA GPU") as err:
        resolve_device("cuda")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("key, value", [("device", "gpu"), ("compute_type", "int4")])
def test_unknown_device_or_compute_type_is_refused_by_the_options(key, value):
    with pytest.raises(ValueError, match=f"{key} must be one of"):
        options(**{key: value})


@NO_GPU
def test_the_stage_check_refuses_cuda_before_loading_anything(tmp_path):
    from videodub.model import JobContext

    registry = installed_registry()
    stage = registry.get("transcribe", "faster_whisper").create(options(device="cuda"))
    with pytest.raises(VideodubError, match="no CUDA GPU"):
        stage.check(JobContext(tmp_path, "en", None))


def test_long_audio_comes_in_windows_cut_in_its_silences(tmp_path):
    import numpy as np
    import soundfile

    from videodub.recognition import audio_windows

    rate = 16000
    rng = np.random.default_rng(1)
    audio = np.zeros(100 * rate, np.float32)
    silences = []
    for start in range(0, 94, 7):  # 5 s of "speech", then 2 s of silence
        audio[start * rate:(start + 5) * rate] = 0.3 * rng.standard_normal(5 * rate)
        silences.append((start + 5, start + 7))
    path = tmp_path / "speech16k.wav"
    soundfile.write(str(path), audio, rate, subtype="PCM_16")
    windows = list(audio_windows(path, 30.0))
    assert len(windows) == 4  # each ends in the last silence before its 30 s
    offsets = [o for o, _ in windows]
    assert offsets[0] == 0.0
    for (o, a), nxt in zip(windows, offsets[1:] + [100.0]):
        assert o + len(a) / rate == pytest.approx(nxt, abs=1 / rate)  # nothing lost or doubled
        assert len(a) / rate <= 30.0
    for cut in offsets[1:]:
        assert any(a <= cut <= b for a, b in silences), f"cut at {cut} s is in speech"
    whole = np.concatenate([a for _, a in windows])
    assert np.allclose(whole, soundfile.read(str(path), dtype="float32")[0])


def test_short_audio_or_no_window_is_passed_whole(tmp_path):
    import numpy as np
    import soundfile

    from videodub.recognition import audio_windows

    from faster_whisper.audio import decode_audio

    path = tmp_path / "a.wav"
    rng = np.random.default_rng(2)
    soundfile.write(str(path), 0.3 * rng.standard_normal(40 * 16000), 16000, subtype="PCM_16")
    for window in (600.0, 0.0):
        ((offset, samples),) = audio_windows(path, window)
        # The samples faster-whisper would have decoded from the path itself.
        assert offset == 0.0 and np.array_equal(samples, decode_audio(str(path)))


def test_a_window_under_30_s_is_refused():
    with pytest.raises(ValueError, match="window_s must be 0 or at least 30"):
        options(window_s=10)


def speechlike(seconds: int, rate: int = 16000):
    """5 s bursts of noise with 2 s of silence between them (windows are cut in silences)."""
    import numpy as np

    rng = np.random.default_rng(3)
    audio = np.zeros(seconds * rate, np.float32)
    for start in range(0, seconds - 5, 7):
        audio[start * rate:(start + 5) * rate] = 0.3 * rng.standard_normal(5 * rate)
    return audio


def test_windows_of_speech_still_being_written_come_before_it_ends(tmp_path):
    """ffmpeg writes the WAV as ingest does (fed here through a pipe, held half-way): the
    first windows come while it runs, and every window equals the finished file's."""
    import subprocess
    import threading
    import time

    import numpy as np

    from videodub.audio import GrowingWav
    from videodub.media import ffmpeg_exe
    from videodub.recognition import audio_windows

    rate = 16000
    audio = speechlike(150)
    path = tmp_path / "speech16k.wav"
    writer = subprocess.Popen([ffmpeg_exe(), "-v", "error", "-f", "s16le", "-ar", str(rate),
                               "-ac", "1", "-i", "pipe:0", "-c:a", "pcm_s16le", str(path)],
                              stdin=subprocess.PIPE)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    half = 80 * rate
    writer.stdin.write(pcm[:half].tobytes())
    writer.stdin.flush()
    growing = GrowingWav(path, rate)
    got: list[tuple[float, np.ndarray]] = []
    fed: list[tuple[int, int]] = []
    first_two = threading.Event()

    def read() -> None:
        feed = lambda wav, start, have: fed.append((start, have))  # noqa: E731
        for window in audio_windows(growing, 30.0, feed=feed):
            got.append(window)
            if len(got) == 2:
                first_two.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        # Two 30 s windows (and what decides their cuts) are in the first 80 s.
        assert first_two.wait(20), "no window came while the file was being written"
        assert writer.poll() is None and not growing.done.is_set()
        assert len(got) == 2
        # The third window needs more than the 80 s written: the reader waits for it, and
        # offers what is there while it waits (the first two may have come without a wait,
        # if ffmpeg wrote 80 s before the reader looked).
        deadline = time.monotonic() + 20
        while not fed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(got) == 2
        # What was written of each window was offered, never past where the window could
        # reach (30 s, or 33 s for the first, which may be the whole file).
        assert fed and all(have - start <= 33 * rate + 1 for start, have in fed), fed
    finally:
        writer.stdin.write(pcm[half:].tobytes())
        writer.stdin.close()
        assert writer.wait() == 0
        growing.finish(ok=True)
        reader.join(20)
    whole = list(audio_windows(path, 30.0))
    assert [o for o, _ in got] == [o for o, _ in whole] and len(whole) >= 5
    for (_, a), (_, b) in zip(got, whole):
        assert np.array_equal(a, b)


def test_a_writer_that_fails_stops_the_reader_quietly(tmp_path):
    import threading

    from videodub.audio import GrowingWav
    from videodub.errors import Cancelled
    from videodub.recognition import audio_windows

    growing = GrowingWav(tmp_path / "never.wav", 16000)  # not even a header yet
    threading.Timer(0.1, growing.finish, kwargs={"ok": False}).start()
    with pytest.raises(Cancelled):  # the writer's own error is the job's, not this one
        list(audio_windows(growing, 30.0))


def test_a_reader_waiting_for_speech_stops_when_the_job_is_cancelled(tmp_path):
    from videodub.audio import GrowingWav
    from videodub.errors import Cancelled
    from videodub.recognition import audio_windows

    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        list(audio_windows(GrowingWav(tmp_path / "never.wav", 16000), 30.0, check))
    assert len(calls) == 3


def test_voice_activity_run_as_the_file_grows_finds_what_faster_whisper_finds(tmp_path, talk):
    """StreamingVad fed part of a window (more than the window turns out to hold, then less,
    then nothing) finds the speech faster-whisper's own get_speech_timestamps finds in it."""
    import numpy as np
    import soundfile
    from faster_whisper.audio import decode_audio
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    from videodub.audio import GrowingWav
    from videodub.recognition import VAD_BATCH, VAD_FRAME, StreamingVad

    rate = 16000
    speech = np.tile(decode_audio(str(talk.path)), 3)[:75 * rate]
    path = tmp_path / "speech16k.wav"
    soundfile.write(str(path), speech, rate, subtype="PCM_16")
    wav = GrowingWav.whole(path)
    audio = wav.read(0, wav.frames)

    def expected(window):
        return get_speech_timestamps(window, VadOptions(min_silence_duration_ms=500))

    vad = StreamingVad.create(500)
    assert vad is not None, "the installed faster-whisper's VAD model is not the one it reads"
    vad.feed(wav, 0, 20 * rate)  # 20 s written; the window is then cut at 13.7 s
    assert len(vad._probs) == 20 * rate // (VAD_BATCH * VAD_FRAME)
    cut = int(13.7 * rate)
    first = vad.speech(audio[:cut], 0)
    assert first == expected(audio[:cut]) and len(first) >= 2
    end = cut + 30 * rate + 100  # fed to 100 samples short of its end
    vad.feed(wav, cut, cut + 30 * rate)
    assert vad.speech(audio[cut:end], cut) == expected(audio[cut:end])
    assert vad.speech(audio[end:], end) == expected(audio[end:])  # nothing fed
    assert vad.speech(audio[:10], 0) == expected(audio[:10]) == []


@pytest.mark.parametrize("logprob, no_speech, text, flagged", [
    (-0.2, 0.62, "Welcome to this short talk about making videos.", False),  # a confident line
    (-1.3, 0.62, "Welcome to this short talk about making videos.", True),  # Whisper's own rule
    (-0.5, 0.76, "Oh", True),  # a blip heard in noise
    (-0.3, 0.70, "Thank you.", True),  # a stock phrase
    (-0.3, 0.40, "Oh", False),
])
def test_no_speech_counts_with_a_low_log_probability_or_on_a_short_line(logprob, no_speech,
                                                                        text, flagged):
    from videodub.recognition import suspect_flags

    assert ("suspect_no_speech" in suspect_flags(logprob, 1.2, no_speech, text)) == flagged
