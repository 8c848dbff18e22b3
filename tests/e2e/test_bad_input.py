"""Bad inputs and bad settings, through the command line: each fails with one ``error:`` line
that names the problem, no traceback, and no media left behind in the run folder.

``verbose=true`` is the one way to get the traceback.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from failure_corpus import assert_message

from videodub.testing.samples import ENGLISH_TALK, make_talk


@dataclass(frozen=True)
class BadFiles:
    folder: Path
    missing: Path
    text: Path
    no_audio: Path
    silence: Path
    garbage_srt: Path
    no_video_frames: Path
    garbled_moov: Path
    a_file: Path


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error",
                    "-y", *args], check=True)


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> BadFiles:
    folder = tmp_path_factory.mktemp("bad_input")
    files = BadFiles(folder=folder, missing=folder / "missing.mp4", text=folder / "notes.mp4",
                     no_audio=folder / "no_audio.mp4", silence=folder / "silence.mp4",
                     garbage_srt=folder / "garbage.srt",
                     no_video_frames=folder / "no_video_frames.mp4",
                     garbled_moov=folder / "garbled_moov.mp4", a_file=folder / "a_file.txt")
    # Text in a file with a media name: the name must not fool ingest.
    files.text.write_text("These are notes, not a video.\n" * 20, encoding="utf-8")
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=3",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(files.no_audio))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=4",
           "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "4",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-shortest", str(files.silence))
    # Deterministic binary noise that is not UTF-8 and not SRT.
    files.garbage_srt.write_bytes(bytes((i * 197 + 91) % 256 for i in range(4096)))
    files.a_file.write_text("a regular file where a folder should be\n", encoding="utf-8")
    talk = folder / "talk.mp4"
    make_talk(talk, ENGLISH_TALK[:2], lead_in=0.5)
    damage_mp4(talk, files.no_video_frames, zero_video_sizes=True)
    damage_mp4(talk, files.garbled_moov, zero_video_sizes=False)
    return files


def damage_mp4(src: Path, dst: Path, zero_video_sizes: bool) -> None:
    """Either zero the video track's sample-size table (the track is still listed, with no
    usable samples), or overwrite the whole moov box with noise (no track is listed at all)."""
    data = bytearray(src.read_bytes())
    if zero_video_sizes:
        video = data.find(b"vide", data.find(b"hdlr"))
        start = data.find(b"stsz", video)
        assert video > 0 and start > 0 and data.find(b"soun") > start, "video track comes first"
        size = int.from_bytes(data[start - 4:start], "big")
        data[start + 8:start - 4 + size] = bytes(size - 12)
    else:
        start = data.find(b"moov")
        size = int.from_bytes(data[start - 4:start], "big")
        data[start + 4:start - 4 + size] = bytes((i * 197 + 91) % 256 for i in range(size - 8))
    dst.write_bytes(bytes(data))


# (case id, overrides given the fixture and a good input, words the error line must contain)
def cases(bad: BadFiles, good: Path) -> dict[str, tuple[list[str], list[str]]]:
    return {
        "missing_file": ([f"input={bad.missing}", "target_lang=es"],
                         ["missing.mp4", "not found"]),
        "not_media": ([f"input={bad.text}", "target_lang=es"],
                      ["notes.mp4", "not a readable media file"]),
        "video_without_audio": ([f"input={bad.no_audio}", "target_lang=es"],
                                ["no_audio.mp4", "no audio"]),
        "silence_only": ([f"input={bad.silence}", "target_lang=en"],
                         ["silence.mp4", "no speech"]),
        "unreadable_subtitles": ([f"input={good}", "target_lang=es", "translate=subtitles",
                                  f"translate.file={bad.garbage_srt}"],
                                 ["garbage.srt", "subtitle"]),
        "unknown_language": ([f"input={good}", "target_lang=xq"],
                             ["target_lang", "'xq'", "language code"]),
        "not_an_option": ([f"input={good}", "target_lang=es", "--profile", "speed"],
                          ["--profile", "profile=speed"]),
        "no_such_bare_input": ([str(bad.missing), "target_lang=es"],
                               ["missing.mp4", "no such file"]),
        "unknown_implementation": ([f"input={good}", "target_lang=es", "tts=espek"],
                                   ["tts", "'espek'", "espeak"]),
        "bad_value": ([f"input={good}", "target_lang=es", "align.max_speed=-1"],
                      ["max_speed", "-1"]),
        "unknown_top_level_key": ([f"input={good}", "target_lang=es", "speling=1"],
                                  ["speling"]),
        "unknown_stage_key": ([f"input={good}", "target_lang=es", "align.max_sped=1.2"],
                              ["align.max_sped", "max_speed"]),
        # Known from the job alone: stages' check() fails these before any media work.
        "missing_subtitle_file": ([f"input={good}", "target_lang=es", "translate=subtitles",
                                   f"translate.file={bad.folder / 'missing.srt'}"],
                                  ["missing.srt", "subtitle file not found"]),
        "no_subtitles_beside_input": ([f"input={good}", "target_lang=fr", "translate=subtitles"],
                                      ["translate.file", "short.fr.srt", "short.mp4"]),
        "no_voice_for_language": ([f"input={good}", "target_lang=yo", "translate=subtitles",
                                   f"translate.file={good.with_name(good.stem + '.es.given.srt')}"],
                                  ["espeak-ng", "voice", "target_lang=yo"]),
        "english_model_other_source": ([f"input={good}", "target_lang=es", "source_lang=es",
                                        "transcribe.model=bundled"],
                                       ["tiny.en", "only transcribes English", "source_lang=es"]),
        # source_lang not given: the English-only model tells it before any work (it was
        # found only after transcription).
        "same_language_needed": ([f"input={good}", "target_lang=es"],
                                 ["translate=none", "target_lang=es"]),
        "audio_track_out_of_range": ([f"input={good}", "target_lang=en", "ingest.audio_track=2"],
                                     ["short.mp4", "1 audio track(s)", "ingest.audio_track=2"]),
        "audio_track_language_missing": ([f"input={good}", "target_lang=en",
                                          "ingest.audio_track=ja"],
                                         ["short.mp4", "no audio track in ja"]),
        # A video track whose samples are unreadable: the dub would come out without video.
        "damaged_video_track": ([f"input={bad.no_video_frames}", "target_lang=en"],
                                ["no_video_frames.mp4", "video", "damaged"]),
        "garbled_moov": ([f"input={bad.garbled_moov}", "target_lang=en"],
                         ["garbled_moov.mp4", "damaged"]),
        "empty_input": (["input=", "target_lang=es"], ["input is empty"]),
        "url_input": (["input=http://127.0.0.1:9/x.mp4", "ingest=local", "target_lang=es"],
                      ["http://127.0.0.1:9/x.mp4", "URL"]),
        "unreachable_url": (["input=http://127.0.0.1:9/x.mp4", "target_lang=es"],
                            ["http://127.0.0.1:9/x.mp4", "cannot reach"]),
        "run_dir_under_a_file": ([f"input={good}", "target_lang=en"],
                                 ["cannot create the run folder", "a_file.txt", "hydra.run.dir"]),
        "cache_dir_under_a_file": ([f"input={good}", "target_lang=en"],
                                   ["cannot create the cache folder", "a_file.txt", "cache_dir"]),
    }


# Cases that need a run folder of their own (given the fixture).
def run_dirs(bad: BadFiles) -> dict[str, Path]:
    return {"run_dir_under_a_file": bad.a_file / "sub"}


# Cases that need a cache folder of their own.
def cache_dirs(bad: BadFiles) -> dict[str, Path]:
    return {"cache_dir_under_a_file": bad.a_file / "cache"}

BEFORE_ANY_WORK = ["no_subtitles_beside_input", "no_voice_for_language", "english_model_other_source", "same_language_needed",
                   "audio_track_out_of_range", "audio_track_language_missing"]


CASE_IDS = ["missing_file", "not_media", "video_without_audio", "silence_only",
            "unreadable_subtitles", "unknown_language", "not_an_option", "no_such_bare_input",
            "unknown_implementation", "bad_value",
            "unknown_top_level_key", "unknown_stage_key", "missing_subtitle_file",
            "no_subtitles_beside_input",
            "no_voice_for_language", "english_model_other_source", "same_language_needed",
            "audio_track_out_of_range", "audio_track_language_missing", "damaged_video_track", "garbled_moov", "empty_input", "url_input", "unreachable_url",
            "run_dir_under_a_file", "cache_dir_under_a_file"]
# Cases refused as a usage error (exit 2) rather than a failed job.
USAGE_ERRORS = ["unknown_language", "not_an_option", "no_such_bare_input", "unknown_implementation",
                "bad_value", "unknown_top_level_key", "unknown_stage_key", "empty_input",
                "run_dir_under_a_file", "cache_dir_under_a_file"]


@pytest.fixture(scope="module")
def failed_runs(run_cli, bad, short_talk):
    """Every case run once (lazily), shared by the tests that look at different aspects."""
    runs = {}

    def get(case: str):
        if case not in runs:
            overrides, _ = cases(bad, short_talk.path)[case]
            runs[case] = run_cli(*overrides, "profile=speed", run_dir=run_dirs(bad).get(case),
                                 cache_dir=cache_dirs(bad).get(case))
        return runs[case]

    return get


@pytest.mark.parametrize("case", CASE_IDS)
def test_fails_with_one_error_line(case, failed_runs, bad, short_talk):
    run = failed_runs(case)
    _, expected = cases(bad, short_talk.path)[case]
    assert run.returncode != 0, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    line = run.error_lines[0]
    assert_message(case, line)
    for word in expected:
        assert word in line, f"{word!r} not in {line!r}"
    assert "Traceback" not in run.stderr + run.stdout, run.describe()
    assert not run.stdout.strip().endswith(".mp4"), "a failed run must not print an output path"
    if case in USAGE_ERRORS:
        assert run.returncode == 2, run.describe()


@pytest.mark.parametrize("case", CASE_IDS)
def test_leaves_no_media(case, failed_runs):
    run = failed_runs(case)
    assert run.returncode != 0
    assert run.media_files() == [], run.media_files()
    assert not (run.run_dir / "work").exists(), sorted(run.run_dir.rglob("*"))


def test_runtime_failure_is_reported(failed_runs):
    """A job that started and failed says so in its report.json."""
    report = failed_runs("silence_only").report()
    assert report["status"] == "failed"
    assert "no speech" in report["error"]
    assert report["stages"]["ingest"]["items"] == 1


@pytest.mark.parametrize("case", ["missing_file", "unknown_implementation"])
def test_verbose_shows_the_traceback(case, run_cli, bad, short_talk):
    overrides, expected = cases(bad, short_talk.path)[case]
    run = run_cli(*overrides, "profile=speed", "verbose=true")
    assert run.returncode != 0
    assert "Traceback" in run.stderr, run.describe()
    assert "VideodubError" in run.stderr
    assert all(word in run.stderr for word in expected), run.describe()
    assert run.media_files() == []
    assert not (run.run_dir / "work").exists()


@pytest.mark.parametrize("case", BEFORE_ANY_WORK)
def test_fails_before_any_media_work(case, failed_runs):
    run = failed_runs(case)
    report = run.report()
    assert report["status"] == "failed"
    assert all(stage["items"] == 0 for stage in report["stages"].values()), report["stages"]
    assert report["job"]["media_duration_s"] is None  # ingest never ran


def test_full_validation_stops_a_corrupt_file_before_other_work(run_cli, short_talk, tmp_path):
    """`ingest.validation=full` (the quality profile's) decodes the whole input first: a file
    damaged in the middle of its media data fails in one line, before transcription."""
    data = bytearray(short_talk.path.read_bytes())
    middle = data.find(b"mdat") + (len(data) - data.find(b"mdat")) // 2
    data[middle:middle + 4096] = bytes((i * 197 + 91) % 256 for i in range(4096))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(data))

    run = run_cli(f"input={corrupt}", "target_lang=en", "profile=speed",
                  "ingest.validation=full")

    assert run.returncode != 0, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    assert run.error_lines[0].startswith("error: decoding corrupt.mp4 failed: "), run.describe()
    assert_message("corrupt_media_full_validation", run.error_lines[0])
    assert "Traceback" not in run.stderr
    stages = run.report()["stages"]
    assert all(stages[name]["items"] == 0 for name in stages), stages
    assert run.media_files() == [] and not list(run.run_dir.glob("*.srt"))


@pytest.mark.slow
@pytest.mark.parametrize("profile, case", [("balanced", "damaged_video_track"),
                                           ("quality", "corrupt_media_full_validation")])
def test_a_damaged_video_track_never_gives_a_dub_without_picture(run_cli, bad, profile, case):
    """Every profile: caught after mux (speed, balanced), or by the full decode before any
    work (quality)."""
    run = run_cli(f"input={bad.no_video_frames}", "target_lang=en", f"profile={profile}",
                  "transcribe.model=bundled")

    assert run.returncode != 0, run.describe()
    assert len(run.error_lines) == 1 and "Traceback" not in run.stderr, run.describe()
    assert_message(case, run.error_lines[0])
    assert "no_video_frames.mp4" in run.error_lines[0]
    assert run.media_files() == []
