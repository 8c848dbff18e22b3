"""Paths as users type them: letters beyond ASCII and characters Hydra's grammar refuses
(parentheses, '='), unquoted, in the input and the run folder."""

from __future__ import annotations

import shutil

import pytest
from failure_corpus import assert_message


@pytest.mark.slow
def test_an_unquoted_path_hydra_would_refuse_is_dubbed(run_cli, short_talk, tmp_path):
    src = tmp_path / "ñ日本 talk (1) = v2.mp4"
    shutil.copyfile(short_talk.path, src)

    run = run_cli(f"input={src}", "target_lang=en", "translate=none", "profile=speed",
                  run_dir=tmp_path / "salida_ñ")

    run.check()
    assert run.video == tmp_path / "salida_ñ" / "ñ日本 talk (1) = v2.en.mp4"
    assert run.video.is_file() and run.report()["job"]["input"] == str(src)


def test_a_non_ascii_value_that_cannot_be_quoted_for_the_user_says_how(run_cli, tmp_path):
    """With a comma (a sweep?) the value is left as typed; the line says how to quote it."""
    run = run_cli(f"input={tmp_path}/ñ,b.mp4", "target_lang=en")

    assert run.returncode == 2, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    assert_message("non_ascii_value_with_comma", run.error_lines[0])
    assert f"input={tmp_path}/ñ,b.mp4" in run.error_lines[0]
    assert "Traceback" not in run.stderr
