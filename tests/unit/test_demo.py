"""The demo's command line: a folder, overrides passed on to the run, and --help that
makes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from videodub import demo


def test_the_folder_defaults_to_outputs_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert demo.parse([]) == (tmp_path / "outputs" / "demo", [])


def test_overrides_go_to_the_run_and_the_folder_is_the_argument_without_equals(tmp_path):
    out, overrides = demo.parse(["profile=speed", str(tmp_path / "d"), "mux.aac_coder=twoloop"])
    assert out == tmp_path / "d"
    assert overrides == ["profile=speed", "mux.aac_coder=twoloop"]
    cmd = demo.command(out, out / "talk.mp4", out / "talk.es.given.srt", overrides)
    assert cmd[-3:] == [f"hydra.run.dir={out / 'run'}", "profile=speed", "mux.aac_coder=twoloop"]


@pytest.mark.parametrize("argv, code", [(["--help"], 0), (["a", "b"], 2)])
def test_help_and_two_folders_make_nothing(tmp_path, monkeypatch, capsys, argv, code):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        demo.main(argv)
    assert exit_.value.code == code
    assert list(Path(tmp_path).iterdir()) == []
    out = capsys.readouterr()
    assert "KEY=VALUE" in (out.out if code == 0 else out.err)
