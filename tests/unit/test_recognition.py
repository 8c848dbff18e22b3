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
