"""Many inputs as one sweep: the command line it becomes, the record of finished jobs that a
re-run skips, and the summary lines."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from videodub.errors import VideodubError
from videodub.run.batch import (
    SLUG_RESOLVER, already_done, batch_argv, mark_done, record_failure, register_resolver,
    render, summary_rows)


def test_a_folder_becomes_a_sweep_with_a_stable_folder_and_one_run_per_input(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "it's b.mkv").write_bytes(b"x")
    argv = batch_argv([f"input={tmp_path}", "target_lang=es"])
    assert argv[0] == "-m"
    assert argv[1] == f"input='{tmp_path / 'a.mp4'}','{tmp_path}/it\\'s b.mkv'"
    sweep = [a for a in argv if a.startswith("hydra.sweep.dir=")]
    assert len(sweep) == 1 and sweep[0].startswith("hydra.sweep.dir=outputs/batch/")
    assert batch_argv([f"input={tmp_path}", "target_lang=es"]) == argv, "a re-run must find it"
    assert f"hydra.sweep.subdir='${{{SLUG_RESOLVER}:${{input}}}}'" in argv
    assert any(a.endswith("videodub.run.batch.InputsSummary") for a in argv)


def test_the_sweep_values_parse_back_to_the_inputs(tmp_path):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    names = ["a.mp4", "it's b.mkv", "c,d.wav", "back\\slash (1).mp4", "q\\'x.mp4"]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    argv = batch_argv([f"input={tmp_path}", "target_lang=es"])
    parsed = OverridesParser.create().parse_overrides([argv[1]])[0]
    assert [v.text for v in parsed.sweep_iterator()] == sorted(str(tmp_path / n) for n in names)


def test_a_quoted_folder_or_one_under_home_is_still_many_inputs(tmp_path, monkeypatch):
    folder = tmp_path / "talks (2024)"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"x")
    argv = batch_argv([f"input='{folder}'", "target_lang=es"])
    assert argv[:2] == ["-m", f"input='{folder / 'a.mp4'}'"]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert batch_argv(["input='~/talks (2024)'"])[1] == argv[1]


def test_given_sweep_folder_and_single_inputs_are_left_alone(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    argv = batch_argv(["-m", f"input={tmp_path}", "hydra.sweep.dir=/x"])
    assert argv.count("-m") == 1 and "hydra.sweep.dir=/x" in argv
    assert not any(a.startswith("hydra.sweep.dir=outputs") for a in argv)
    one = [f"input={tmp_path / 'a.mp4'}", "target_lang=es"]
    assert batch_argv(one) == one


def test_a_folder_without_media_fails_before_any_job(tmp_path):
    with pytest.raises(VideodubError, match="no media files in folder"):
        batch_argv([f"input={tmp_path}"])


def test_the_slug_resolver_names_each_run_folder():
    register_resolver()
    cfg = OmegaConf.create({"input": "talks/a b.mp4", "dir": f"${{{SLUG_RESOLVER}:${{input}}}}"})
    assert cfg.dir.startswith("a_b-") and len(cfg.dir) == len("a_b-") + 8


def test_a_finished_job_is_skipped_only_with_the_same_config_and_its_video(tmp_path):
    cfg = OmegaConf.create({"input": "a.mp4", "target_lang": "es"})
    video = tmp_path / "a.es.mp4"
    video.write_bytes(b"video")
    assert already_done(tmp_path, cfg) is None
    mark_done(tmp_path, cfg, video)
    assert already_done(tmp_path, cfg) == video
    assert already_done(tmp_path, OmegaConf.create({"input": "a.mp4", "target_lang": "de"})) is None
    video.unlink()
    assert already_done(tmp_path, cfg) is None


def test_the_summary_has_one_line_per_input_and_names_the_failure(tmp_path):
    ok = tmp_path / "a-1"
    ok.mkdir()
    (ok / "report.json").write_text(json.dumps({
        "status": "ok", "wall_s": 3.5, "realtime_factor": 0.25, "cost_usd": 0.01,
        "job": {"input": "a.mp4"}, "outputs": {"video": "a.es.mp4"}}))
    bad = tmp_path / "b-2"
    bad.mkdir()
    record_failure(bad, "b.mp4", "input not found: b.mp4")
    record_failure(bad, "b.mp4", "a second message is not written over the first")
    rows = summary_rows(tmp_path)
    assert [(r["input"], r["status"]) for r in rows] == [("a.mp4", "ok"), ("b.mp4", "failed")]
    text = render(rows)
    assert text.splitlines()[0] == "2 inputs: 1 dubbed, 1 failed"
    assert "RTF  0.250" in text and str(ok / "a.es.mp4") in text
    assert "b.mp4  ->  error: input not found: b.mp4" in text
