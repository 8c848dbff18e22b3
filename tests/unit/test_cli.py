"""The command line's handling of what is typed, before Hydra sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from videodub.cli import check_run_folder, job_overrides, run_folder
from videodub.errors import VideodubError
from videodub.overrides import hydra_quote, plain_input, quote_values, unquote


def test_non_ascii_values_are_quoted_for_hydra_and_read_back_as_typed():
    argv = ["-m", "input=/tmp/ñ日本 x.mp4", "target_lang=es", "tts.voice=en", "a=ü,b"]
    quoted = quote_values(argv)
    assert quoted == ["-m", "input='/tmp/ñ日本 x.mp4'", "target_lang=es", "tts.voice=en", "a=ü,b"]
    with pytest.raises(VideodubError, match="quote a value"):
        job_overrides(["input=/tmp/ñ日本 x.mp4"])  # unquoted: Hydra's lexer refuses it
    assert job_overrides(quote_values(["input=/tmp/ñ日本 x.mp4"])) == [
        ["input='/tmp/ñ日本 x.mp4'"]]


def _read(override: str):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override).value()


@pytest.mark.parametrize("value", [
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s",  # '=' and '&': Hydra's parser refuses
    "talks/intro (1).mp4", "talks/[draft] intro.mp4", "a=b.mp4", "#1 talk.mp4", "~/talks/a.mp4",
    "a;b.mp4", "it's.mp4"])
def test_paths_and_links_hydra_refuses_unquoted_are_quoted_and_read_back_as_typed(value):
    with pytest.raises(VideodubError, match="quote a value"):
        job_overrides([f"input={value}"])
    [arg] = quote_values([f"input={value}"])
    assert arg != f"input={value}" and _read(arg) == value
    assert job_overrides([arg]) == [[arg]]


def test_values_hydra_reads_as_typed_and_hydra_syntax_are_left_alone(tmp_path):
    kept = ["input=talk.mp4", "input=my talk.mp4", "input=a+b.mp4", "profile=speed,quality",
            "input=choice(a.mp4,b.mp4)", "hydra.run.dir=out/${now:%H}", "input='a (1).mp4'",
            "tts.voices=[a,b]", "-m", "--cfg", "job"]
    assert quote_values(kept) == kept
    # A comma is a sweep, unless the whole value names a file that exists.
    (tmp_path / "a,b.mp4").write_bytes(b"x")
    [arg] = quote_values([f"input={tmp_path}/a,b.mp4"])
    assert _read(arg) == f"{tmp_path}/a,b.mp4"


@pytest.mark.parametrize("value", ["plain", "a'b", "a\\b", "a\\'b", "end\\", "end\\\\",
                                   "x\\\\'y", "'", "\\"])
def test_hydra_quote_reads_back_as_the_value_with_quotes_and_backslashes(value):
    assert _read(f"k={hydra_quote(value)}") == value
    assert unquote(hydra_quote(value)) == value


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


def test_a_file_folder_or_link_typed_without_input_is_the_input(tmp_path):
    talk = tmp_path / "talk (1).mp4"
    talk.write_bytes(b"x")
    assert plain_input([str(talk), "target_lang=es"]) == [f"input={talk}", "target_lang=es"]
    assert plain_input(["-m", str(tmp_path), "profile=speed,quality"]) == [
        "-m", f"input={tmp_path}", "profile=speed,quality"]
    link = "https://www.youtube.com/watch?v=abc&t=42s"
    assert plain_input([link, "target_lang=es"]) == [f"input={link}", "target_lang=es"]
    # Hydra's own: the value after a flag that takes one, deletions, key=value.
    kept = ["--cfg", "job", "-cn", "other", "~translate", "--info", "plugins", "input=a.mp4",
            "hydra.run.dir=x"]
    assert plain_input(kept) == kept


@pytest.mark.parametrize("argv, line", [
    (["talk.mp4", "target_lang=es"], "talk.mp4: no such file, and not a key=value setting"),
    (["input=a.mp4", "b.mp4"], "b.mp4: not a key=value setting, and input= is given"),
    (["input=a.mp4", "--profile", "speed"], "--profile: not an option; settings are key=value, "
                                            "e.g. profile=speed"),
    (["--target_lang=es"], "--target_lang=es: not an option; settings are key=value, "
                           "e.g. target_lang=es"),
])
def test_words_hydra_would_not_parse_are_refused_saying_what_to_type(tmp_path, argv, line):
    (tmp_path / "b.mp4").write_bytes(b"x")
    argv = [str(tmp_path / a) if a == "b.mp4" else a for a in argv]
    with pytest.raises(VideodubError) as caught:
        plain_input(argv)
    assert str(caught.value).replace(str(tmp_path / "b.mp4"), "b.mp4").startswith(line)


def test_a_link_with_commas_is_one_input_and_links_apart_are_a_sweep(tmp_path):
    cdn = "https://cdn.example/hls/talk,480p,720p,.mp4.csmil/master.m3u8"
    [[one]] = job_overrides(quote_values([f"input={cdn}"]))
    assert unquote(one.split("=", 1)[1]) == cdn
    local = tmp_path / "b.mp4"
    local.write_bytes(b"x")
    jobs = job_overrides(quote_values(["-m", f"input=https://h/a.mp4,https://h/b.mp4,{local}"]))
    assert [job.replace("\\", "") for [job] in jobs] == [  # Hydra writes ':' as '\\:'
        "input=https://h/a.mp4", "input=https://h/b.mp4", f"input={local}"]
