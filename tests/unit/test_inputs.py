"""What ``input=`` names: URLs kept whole, folders, globs and list files expanded, and the
one-line errors when they name nothing."""

from __future__ import annotations

import pytest

from videodub.errors import VideodubError
from videodub.inputs import expand, input_slug, input_stem, is_many, with_ingest_for


def test_url_stem_keeps_its_name_and_drops_what_a_file_name_cannot_hold():
    assert input_stem("http://127.0.0.1:9/x.mp4") == "x"
    assert input_stem("https://example.org/watch?v=abc") == "watch"
    assert input_stem("https://example.org/") == "video"
    assert input_stem("talks/my talk.mp4") == "my talk"


def test_slugs_of_two_inputs_with_one_stem_differ():
    a, b = input_slug("a/talk.mp4"), input_slug("b/talk.mp4")
    assert a.startswith("talk-") and b.startswith("talk-") and a != b


def test_a_url_input_selects_the_url_ingester_unless_one_is_chosen():
    assert with_ingest_for(["input=http://127.0.0.1:9/x.mp4"])[-1] == "ingest=url"
    assert with_ingest_for(["input=a.mp4,https://h/b.mp4", "-m"])[-1] == "ingest=url"
    assert "ingest=url" not in with_ingest_for(["input=talk.mp4"])
    chosen = ["input=http://h/x.mp4", "ingest=local"]
    assert with_ingest_for(chosen) == chosen


def test_a_folder_expands_to_its_media_files_in_order(tmp_path):
    for name in ("b.mp4", "a.wav", "notes.md", "._b.mp4", ".hidden.mkv"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    assert is_many(str(tmp_path))
    assert expand(str(tmp_path)) == [str(tmp_path / "a.wav"), str(tmp_path / "b.mp4")]


def test_a_folder_without_media_is_one_line(tmp_path):
    (tmp_path / "notes.md").write_text("hi")
    with pytest.raises(VideodubError, match="no media files in folder"):
        expand(str(tmp_path))


def test_a_glob_expands_and_one_matching_nothing_is_one_line(tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"x")
    (tmp_path / "y.mkv").write_bytes(b"x")
    assert expand(str(tmp_path / "*.mp4")) == [str(tmp_path / "x.mp4")]
    with pytest.raises(VideodubError, match="no media files match"):
        expand(str(tmp_path / "*.webm"))


def test_a_list_file_names_paths_relative_to_itself_and_urls(tmp_path):
    lst = tmp_path / "inputs.txt"
    lst.write_text("# talks\n\none.mp4\n/abs/two.mp4\nhttps://h/three.mp4\n")
    assert expand(str(lst)) == [str(tmp_path / "one.mp4"), "/abs/two.mp4", "https://h/three.mp4"]
    lst.write_text("# nothing\n\n")
    with pytest.raises(VideodubError, match="names no input"):
        expand(str(lst))


def test_a_list_saved_by_windows_notepad_reads_as_typed(tmp_path, monkeypatch):
    """A byte order mark, CRLF line ends, paths pasted in quotes and ``~`` are what lists
    written by hand hold."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    lst = tmp_path / "inputs.txt"
    lst.write_bytes('one.mp4\r\n"two (1).mp4"\r\n~/three.mp4\r\n\'https://h/4.mp4\'\r\n'
                    .encode("utf-8-sig"))
    assert expand(str(lst)) == [str(tmp_path / "one.mp4"), str(tmp_path / "two (1).mp4"),
                                str(tmp_path / "home" / "three.mp4"), "https://h/4.mp4"]


def test_one_file_or_url_is_one_input(tmp_path):
    f = tmp_path / "talk.mp4"
    f.write_bytes(b"x")
    assert not is_many(str(f)) and expand(str(f)) == [str(f)]
    assert not is_many("https://h/*.mp4") and expand("https://h/x.mp4") == ["https://h/x.mp4"]
