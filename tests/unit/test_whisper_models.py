"""videodub/whisper_models.py: the packaged multilingual Whisper base (the ``multilingual``
extra, which the test extra installs) assembled from its two wheels into a model cache: byte
for byte the published model, once, under a temporary name until whole, and again when the
cached copy is damaged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from videodub.errors import VideodubError
from videodub.whisper_models import PACKAGED, PackagedFile, PackagedModel, model_path, packaged_model

BASE = PACKAGED["base"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def assembled(tmp_path_factory) -> Path:
    return packaged_model("base", tmp_path_factory.mktemp("models"))


def test_base_is_assembled_into_the_cache_as_published(assembled):
    assert assembled.name == "faster-whisper-base"
    assert sorted(p.name for p in assembled.iterdir()) == sorted(f.name for f in BASE.files), \
        "a temporary file was left beside the model"
    for f in BASE.files:
        assert (assembled / f.name).stat().st_size == f.size
        assert sha256(assembled / f.name) == f.sha256, f.name
    # The digest published for Systran/faster-whisper-base's model.bin.
    assert BASE.files[1].sha256.startswith("d01c3014881c")


def test_the_assembled_model_is_reused_not_written_again(assembled):
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in assembled.iterdir()}
    assert packaged_model("base", assembled.parent) == assembled
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in assembled.iterdir()}
    assert after == before


def test_a_damaged_cached_model_is_assembled_again(tmp_path):
    folder = packaged_model("base", tmp_path)
    model = folder / "model.bin"
    with open(model, "r+b") as f:  # an interrupted copy by hand, say
        f.truncate(1000)
    assert packaged_model("base", tmp_path) == folder
    assert model.stat().st_size == BASE.files[1].size
    assert sha256(model) == BASE.files[1].sha256


def test_a_directory_is_used_as_it_is(tmp_path):
    assert model_path(str(tmp_path)) == str(tmp_path)


def test_a_piece_that_is_not_the_published_one_is_refused_and_nothing_is_left(tmp_path,
                                                                               monkeypatch):
    config = BASE.files[0]
    wrong = PackagedFile(config.name, config.size, "0" * 64, config.pieces)
    monkeypatch.setitem(PACKAGED, "changed", PackagedModel("changed", "multilingual", (wrong,)))
    with pytest.raises(VideodubError, match="config.json is not the published one") as err:
        packaged_model("changed", tmp_path)
    assert "\n" not in str(err.value)
    assert "pip install --force-reinstall 'videodub[multilingual]'" in str(err.value)
    assert list((tmp_path / "changed").iterdir()) == []


def test_no_wheel_installed_means_no_packaged_copy_and_some_is_an_error(tmp_path, monkeypatch):
    absent = PackagedFile("model.bin", 1, "0" * 64, ("videodub_no_such_wheel/model.bin",))
    monkeypatch.setitem(PACKAGED, "absent", PackagedModel("absent", "absent", (absent,)))
    assert packaged_model("absent", tmp_path) is None
    assert packaged_model("small", tmp_path) is None  # no packaged copy at all

    half = PackagedFile("model.bin", 1, "0" * 64,
                        (BASE.files[1].pieces[0], "videodub_no_such_wheel/model.bin.part2"))
    monkeypatch.setitem(PACKAGED, "half", PackagedModel("half", "half", (half,)))
    with pytest.raises(VideodubError) as err:
        packaged_model("half", tmp_path)
    assert str(err.value) == ("the packaged Whisper half model is incomplete (not installed: "
                              "videodub_no_such_wheel); pip install 'videodub[half]'")
    assert not (tmp_path / "half").exists()
