"""The files a finished job leaves under their final names: the video's name, both subtitle
files (and where the transcript goes when both languages are the same), and segments.json
with the clips that outlive the run."""

from __future__ import annotations

import json
from pathlib import Path

from videodub.model import JobContext, Segment
from videodub.run.outputs import Outputs
from videodub.subtitles import read_cues


def segments(work_dir: Path, cache_dir: Path) -> list[Segment]:
    return [Segment(0, 0.5, 1.5, "Hello there.", "Hola.", audio_path=str(work_dir / "0.wav")),
            Segment(1, 2.0, 3.0, "Goodbye.", "Adiós.", audio_path=str(cache_dir / "1.wav")),
            Segment(2, 3.5, 4.0, "Unspoken.", "Sin voz.")]


def texts(path: Path) -> list[str]:
    return [cue.text for cue in read_cues(path)]


def test_names_follow_the_input_stem_and_the_languages(tmp_path):
    outputs = Outputs(tmp_path / "run", "/videos/talk.final.mp4", keep_work=False)
    assert outputs.video_path("es") == tmp_path / "run" / "talk.final.es.mp4"
    segs = segments(tmp_path / "work", tmp_path / "cache")
    source = outputs.write_source_srt(segs, "en")
    target = outputs.write_target_srt(segs, "es")
    assert source == tmp_path / "run" / "talk.final.en.srt"
    assert target == tmp_path / "run" / "talk.final.es.srt"
    assert texts(source) == ["Hello there.", "Goodbye.", "Unspoken."]
    assert texts(target) == ["Hola.", "Adiós.", "Sin voz."]
    assert outputs.names() == {"source_srt": "talk.final.en.srt",
                               "target_srt": "talk.final.es.srt"}


def test_an_input_name_as_long_as_a_name_may_be_gives_outputs_that_fit(tmp_path):
    """The input's name can take all 255 bytes: its stem is cut (between characters) so
    that ``<stem>.<lang>.mp4`` and the transcript's ``.source.srt`` still fit."""
    stem = "ñ日本 talk " + "長" * 80  # 254 bytes
    outputs = Outputs(tmp_path / "run", f"/videos/{stem}.m", keep_work=False)
    video = outputs.video_path("pt-br")
    assert len(video.name.encode()) <= 255 and video.name.startswith("ñ日本 talk 長長")
    assert video.name.endswith("長.pt-br.mp4")
    segs = segments(tmp_path / "work", tmp_path / "cache")
    outputs.write_source_srt(segs, "en")
    outputs.write_target_srt(segs, "en")  # same language, new text: a .source.srt too
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert len(names) == 2 and all(len(n.encode()) <= 255 for n in names), names


def test_outputs_take_the_name_an_ingester_gives_once_and_for_good(tmp_path):
    """A downloaded video's title names the outputs (the URL's last part may be ``watch``);
    what a file name cannot hold is replaced, and the name is fixed at the first output."""
    ctx = JobContext(tmp_path / "run", "es", "en")
    outputs = Outputs(tmp_path / "run", "https://example.org/watch?v=1", False, ctx=ctx)
    ctx.output_name = " Talk: part 1/2\x07. "
    assert outputs.video_path("es").name == "Talk: part 1_2_.es.mp4"
    ctx.output_name = "Another"
    assert outputs.stem == "Talk: part 1_2_"
    bare = Outputs(tmp_path / "run", "https://example.org/watch?v=1", False,
                   ctx=JobContext(tmp_path / "run", "es", "en"))
    assert bare.video_path("es").name == "watch.es.mp4"


def test_a_same_language_dub_with_new_text_keeps_the_transcript_apart(tmp_path):
    outputs = Outputs(tmp_path, "talk.mp4", keep_work=False)
    segs = [Segment(0, 0.5, 1.5, "Um, hello there.", "Hello there.")]
    outputs.write_source_srt(segs, "en")
    outputs.write_target_srt(segs, "en")
    assert outputs.names() == {"source_srt": "talk.en.source.srt", "target_srt": "talk.en.srt"}
    assert texts(tmp_path / "talk.en.source.srt") == ["Um, hello there."]
    assert texts(tmp_path / "talk.en.srt") == ["Hello there."]


def test_a_same_language_dub_with_the_same_text_writes_one_file(tmp_path):
    outputs = Outputs(tmp_path, "talk.mp4", keep_work=False)
    segs = [Segment(0, 0.5, 1.5, "Hello there.", "Hello there.")]
    outputs.write_source_srt(segs, "en")
    outputs.write_target_srt(segs, "en")
    assert outputs.names() == {"source_srt": "talk.en.srt", "target_srt": "talk.en.srt"}
    assert [p.name for p in tmp_path.iterdir()] == ["talk.en.srt"]
    assert texts(tmp_path / "talk.en.srt") == ["Hello there."]


def test_segments_json_drops_clips_that_go_with_the_work_folder(tmp_path):
    work, cache = tmp_path / "run" / "work", tmp_path / "cache"
    outputs = Outputs(tmp_path / "run", "talk.mp4", keep_work=False)
    path = outputs.write_segments(segments(work, cache), "en", "es", work)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["source_lang"], data["target_lang"]) == ("en", "es")
    assert [s["audio_path"] for s in data["segments"]] == [None, str(cache / "1.wav"), None]
    assert data["segments"][1]["target_text"] == "Adiós."
    assert outputs.names() == {"segments": "segments.json"}
    kept = Outputs(tmp_path / "kept", "talk.mp4", keep_work=True)
    data = json.loads(kept.write_segments(segments(work, cache), "en", "es", work).read_text())
    assert [s["audio_path"] for s in data["segments"]] == [
        str(work / "0.wav"), str(cache / "1.wav"), None]


def test_subtitles_are_laid_out_for_their_own_language(tmp_path):
    """Each file's lines break where its language does: the source in the transcript's
    language, the dub's in the target's (here Chinese in traditional characters, whose
    phrases the simplified model splits: 我|們將)."""
    from videodub.subtitles import SubtitleLayout, layout_cue

    text = "歡迎來到這個關於為每個人製作影片的簡短演講今天我們將看看好的配音是什麼樣子的"
    layout = SubtitleLayout(line_columns_by_lang={"zh": 16})
    outputs = Outputs(tmp_path, "talk.mp4", keep_work=False, layout=layout)
    segs = [Segment(0, 0.5, 9.5, "Welcome.", text)]
    outputs.write_source_srt(segs, "en")
    outputs.write_target_srt(segs, "zh-TW")
    written = [cue.replace("\n", "|") for cue in
               (tmp_path / "talk.zh-TW.srt").read_text(encoding="utf-8").split("\n\n")]
    expected = layout_cue(text, layout, "zh-TW")
    assert expected != layout_cue(text, layout, "zh")
    assert all(cue.replace("\n", "|") in "".join(written) for cue in expected)
