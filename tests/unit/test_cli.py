"""The command line's handling of what is typed, before Hydra sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from videodub.cli import check_run_folder, job_overrides, quote_non_ascii, run_folder
from videodub.errors import VideodubError


def test_non_ascii_values_are_quoted_for_hydra_and_read_back_as_typed():
    argv = ["-m", "input=/tmp/ñ日本 x.mp4", "target_lang=es", "tts.voice=en", "a=ü,b"]
    quoted = quote_non_ascii(argv)
    assert quoted == ["-m", "input='/tmp/ñ日本 x.mp4'", "target_lang=es", "tts.voice=en", "a=ü,b"]
    with pytest.raises(VideodubError, match="quote a value"):
        job_overrides(["input=/tmp/ñ日本 x.mp4"])  # unquoted: Hydra's lexer refuses it
    assert job_overrides(quote_non_ascii(["input=/tmp/ñ日本 x.mp4"])) == [
        ["input='/tmp/ñ日本 x.mp4'"]]


def test_the_run_folder_is_the_one_named_last_and_none_for_interpolations():
    assert run_folder(["hydra.run.dir=a", "hydra.run.dir='b c'"]) == (Path("b c"), "hydra.run.dir")
    assert run_folder(["-m", "hydra.sweep.dir=s"]) == (Path("s"), "hydra.sweep.dir")
    assert run_folder(["hydra.run.dir=out/${now:%H}"]) is None
    assert run_folder(["input=x"]) is None


def test_a_run_folder_that_cannot_be_made_is_named_with_the_reason(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(VideodubError, match=rf"{blocker}/a/b: {blocker} is not a folder; set "
                                            r"hydra.run.dir"):
        check_run_folder(blocker / "a" / "b", "hydra.run.dir")
    check_run_folder(tmp_path / "new" / "deeper", "hydra.run.dir")  # creatable: no error
    assert not (tmp_path / "new").exists()  # and nothing was created
