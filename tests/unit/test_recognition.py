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
