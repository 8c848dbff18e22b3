"""ffmpeg and file helpers: atomic writes (a failed write leaves the old file and no temporary
one), ``run_ffmpeg`` (one-line errors, cancellation), ``probe`` and ``decode_check`` on media
generated here with the bundled ffmpeg."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from videodub.errors import Cancelled, VideodubError
from videodub.media import (
    NAME_MAX,
    STALE_AFTER_S,
    atomic_path,
    decode_check,
    ffmpeg_exe,
    fit_bytes,
    probe,
    remove_stale_temporaries,
    run_ffmpeg,
    write_json_atomic,
    write_text_atomic,
)
from videodub.model import JobContext

DEADLOCK_BREAKER = 30.0  # seconds; only reached when the behaviour under test is broken


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2 s of a 160x120 test pattern (H.264) with a 440 Hz tone (AAC, 44.1 kHz mono)."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=160x120:rate=10:duration=2", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=44100:duration=2", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1",
                    "-shortest", str(path)], check=True, capture_output=True, timeout=120)
    return path


# -- atomic writes ---------------------------------------------------------------------

def test_atomic_path_puts_the_file_in_place_only_at_the_end(tmp_path):
    final = tmp_path / "new" / "folder" / "report.json"
    with atomic_path(final) as tmp:
        assert tmp.parent == final.parent and tmp != final
        tmp.write_text("whole")
        assert not final.exists()  # nothing under the final name until it is complete
    assert final.read_text() == "whole"
    assert listing(final.parent) == ["report.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(final.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.parametrize("name, limit, fitted", [
    ("talk", 10, "talk"), ("abcdef", 3, "abc"), ("日本語", 9, "日本語"), ("日本語", 8, "日本"),
    ("日本語", 7, "日本"), ("ñandú", 2, "ñ"), ("ñandú", 1, ""),
])
def test_fit_bytes_cuts_utf8_between_characters(name, limit, fitted):
    assert fit_bytes(name, limit) == fitted


def test_atomic_path_takes_a_final_name_of_the_longest_length(tmp_path):
    """A name of 255 bytes (the most a name may have) still gets a temporary name beside it:
    the temporary one holds what fits of it."""
    final = tmp_path / ("長" * 80 + "x" * 8 + ".en.mp4")
    assert len(final.name.encode()) == NAME_MAX
    with atomic_path(final) as tmp:
        assert len(tmp.name.encode()) <= NAME_MAX and tmp.name.startswith(".長長")
        tmp.write_text("whole")
    assert final.read_text() == "whole" and listing(tmp_path) == [final.name]


def test_a_write_that_fails_midway_keeps_the_old_file_and_no_temporary_one(tmp_path):
    final = tmp_path / "segments.json"
    final.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(final) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("disk full")
    assert final.read_text() == "old"
    assert listing(tmp_path) == ["segments.json"]


def test_write_text_and_json_atomic(tmp_path):
    text = write_text_atomic(tmp_path / "out.es.srt", "1\nHola, ¿qué tal?\n")
    assert text.read_text(encoding="utf-8") == "1\nHola, ¿qué tal?\n"
    data = {"text": "Adiós", "n": [1, 2]}
    path = write_json_atomic(tmp_path / "report.json", data)
    raw = path.read_text(encoding="utf-8")
    assert json.loads(raw) == data
    assert "Adiós" in raw and raw.endswith("}\n")  # readable, not \u-escaped
    assert listing(tmp_path) == ["out.es.srt", "report.json"]


def test_text_that_cannot_be_written_keeps_the_old_file(tmp_path):
    final = tmp_path / "talk.es.srt"
    final.write_text("old cues")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(final, "starts fine, then a lone surrogate \udcff")
    with pytest.raises(TypeError):
        write_json_atomic(final, {"not json": object()})
    assert final.read_text() == "old cues"
    assert listing(tmp_path) == ["talk.es.srt"]


# -- ffmpeg ----------------------------------------------------------------------------

def test_run_ffmpeg_returns_its_log_and_fails_in_one_line(tmp_path):
    out = tmp_path / "tone.wav"
    log = run_ffmpeg(["-v", "info", "-f", "lavfi", "-i", "sine=duration=0.2", str(out)])
    assert out.is_file() and "Output #0" in log
    missing = tmp_path / "missing.wav"
    with pytest.raises(VideodubError) as caught:
        run_ffmpeg(["-i", str(missing), "-f", "null", "-"], what="reading missing.wav")
    message = str(caught.value)
    assert message.startswith("reading missing.wav failed: ")
    assert "No such file or directory" in message and "\n" not in message


def test_cancelling_a_job_stops_its_ffmpeg_at_once(tmp_path):
    ctx = JobContext(tmp_path, "es", "en")
    outcome: list[BaseException] = []

    def long_run() -> None:
        try:
            # An hour of silence, read in real time: it ends only when killed.
            run_ffmpeg(["-re", "-f", "lavfi", "-i", "anullsrc", "-t", "3600", "-f", "null",
                        "-"], ctx)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    worker = threading.Thread(target=long_run, daemon=True)
    worker.start()
    deadline = time.monotonic() + DEADLOCK_BREAKER
    while not ctx._procs:
        assert time.monotonic() < deadline, "ffmpeg was never tracked by the job"
        time.sleep(0.01)
    (proc,) = ctx._procs
    ctx.cancel_event.set()
    ctx.kill_processes()  # what the runner does when a job is cancelled
    worker.join(DEADLOCK_BREAKER)
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)
    assert proc.poll() is not None and not ctx._procs


# -- probing ---------------------------------------------------------------------------

def test_probe_reports_streams_and_duration(clip):
    info = probe(clip)
    assert "mp4" in info["format"]
    assert info["duration"] == pytest.approx(2.0, abs=0.1)
    video, audio = sorted(info["streams"], key=lambda s: s["type"], reverse=True)
    assert (video["type"], video["codec"], video["width"], video["height"]) == (
        "video", "h264", 160, 120)
    assert (audio["type"], audio["codec"], audio["sample_rate"], audio["channels"]) == (
        "audio", "aac", 44100, 1)
    assert audio["duration"] == pytest.approx(2.0, abs=0.1)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True, capture_output=True,
                   timeout=120)


def test_probe_names_codecs_not_decoders_and_tells_cover_art_from_video(tmp_path, clip):
    """AV1 is ``av1`` (its decoder is libdav1d) and MP3 ``mp3`` (decoded by mp3float): what
    mux compares with the codecs MP4 carries. A music file's picture is cover art."""
    av1, song = tmp_path / "av1.mp4", tmp_path / "song.mp3"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:rate=5:duration=1", "-c:v", "libaom-av1",
           "-cpu-used", "8", str(av1))
    ffmpeg("-i", str(clip), "-map", "0:a", "-map", "0:v", "-frames:v", "1", "-c:a", "libmp3lame",
           "-c:v", "mjpeg", "-disposition:v", "attached_pic", str(song))
    assert [s["codec"] for s in probe(av1)["streams"]] == ["av1"]
    audio, picture = probe(song)["streams"]
    assert (audio["codec"], picture["codec"], picture["attached_pic"]) == ("mp3", "mjpeg", True)
    assert probe(clip)["streams"][0]["attached_pic"] is False


def test_decode_check_reads_subtitle_data_and_attachment_streams_without_decoding(tmp_path,
                                                                                   clip):
    """ffmpeg's null output has no encoder for subtitles, data or attachments: mapping them
    failed the check on any file that had one (a film's subtitles, a camera's timecode)."""
    srt = tmp_path / "a.srt"
    srt.write_text("1\n00:00:00,500 --> 00:00:01,500\nHi\n\n", encoding="utf-8")
    font = tmp_path / "font.ttf"
    font.write_bytes(b"not really a font")
    film, camera = tmp_path / "film.mkv", tmp_path / "camera.mov"
    ffmpeg("-i", str(clip), "-i", str(srt), "-map", "0", "-map", "1", "-c:v", "copy", "-c:a",
           "copy", "-c:s", "srt", "-attach", str(font), "-metadata:s:t",
           "mimetype=application/x-truetype-font", str(film))
    ffmpeg("-i", str(clip), "-map", "0", "-c", "copy", "-timecode", "01:00:00:00", str(camera))
    assert {s["type"] for s in probe(film)["streams"]} == {"video", "audio", "subtitle",
                                                           "attachment"}
    assert "data" in {s["type"] for s in probe(camera)["streams"]}
    decode_check(film)
    decode_check(camera)
    decode_check(film, streams=("0", "-0:a:0"))


def test_probe_and_decode_check_refuse_what_is_not_media(tmp_path, clip):
    notes = tmp_path / "notes.mp4"
    notes.write_text("These are notes, not a video.\n" * 20)
    with pytest.raises(VideodubError, match="not a readable media file") as caught:
        probe(notes)
    assert str(caught.value).startswith(str(notes)) and "\n" not in str(caught.value)
    decode_check(clip)  # a whole file decodes
    with pytest.raises(VideodubError) as caught:
        decode_check(notes)
    assert str(caught.value).startswith("decoding notes.mp4 failed: ")
    assert "\n" not in str(caught.value)


class TrackingContext(JobContext):
    """A job context that remembers every process handed to it for cancellation."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tracked: list[subprocess.Popen] = []

    def track_process(self, proc: subprocess.Popen) -> None:
        self.tracked.append(proc)
        super().track_process(proc)


def test_decode_check_runs_its_ffmpeg_under_the_job(tmp_path, clip):
    ctx = TrackingContext(tmp_path, "es", "en")
    decode_check(clip, ctx)
    assert len(ctx.tracked) == 1 and not ctx._procs  # tracked while it ran, then let go


def test_json_is_written_indented_and_readable(tmp_path):
    data = {"segments": [{"text": "¿Qué?", "start": 1.5}]}
    raw = write_json_atomic(tmp_path / "segments.json", data).read_text(encoding="utf-8")
    assert raw == json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# -- temporary files a killed job leaves ---------------------------------------------------

HOLDER = """import sys
from pathlib import Path
from videodub.media import atomic_path
with atomic_path(Path(sys.argv[1])) as tmp:
    tmp.write_text("half")
    print(tmp, flush=True)
    sys.stdin.read()
"""


def holder(final: Path) -> tuple[subprocess.Popen, Path]:
    """A process writing ``final`` through atomic_path, stopped half-way (until its stdin
    closes); returns it and its temporary file."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(final)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, Path(proc.stdout.readline().strip())


def test_stale_temporaries_of_killed_jobs_go_and_live_ones_stay(tmp_path):
    killed, killed_tmp = holder(tmp_path / "run" / "talk.es.mp4")
    live, live_tmp = holder(tmp_path / "cache" / "clips" / "0123abcd.wav")
    killed_json, killed_json_tmp = holder(tmp_path / "cache" / "translations" / "beef.json")
    # Older temporary names carry no owner: they go only once they are old.
    old = tmp_path / "run" / ".talk.es.abcd1234.part.mp4"
    recent = tmp_path / "run" / ".talk.en.efgh5678.part.mp4"
    for path in (old, recent):
        path.write_text("half")
    os.utime(old, (time.time() - STALE_AFTER_S - 60,) * 2)
    kept = tmp_path / "run" / ".hidden_but_mine.txt"
    kept.write_text("not a temporary of ours")
    try:
        for proc in (killed, killed_json):
            proc.kill()  # SIGKILL: no clean-up runs
            proc.wait()
        assert killed_tmp.exists() and killed_json_tmp.exists()

        run_removed = remove_stale_temporaries(tmp_path / "run")
        cache_removed = remove_stale_temporaries(tmp_path / "cache", recursive=True)

        assert sorted(run_removed) == sorted([killed_tmp, old])
        assert cache_removed == [killed_json_tmp]
        assert live_tmp.exists() and recent.exists() and kept.exists()
        assert remove_stale_temporaries(tmp_path / "run") == []
    finally:
        live.stdin.close()
        live.wait()
    # The live job finished undisturbed.
    assert (tmp_path / "cache" / "clips" / "0123abcd.wav").read_text() == "half"
    assert not live_tmp.exists()


def test_temporary_names_say_whose_they_are(tmp_path):
    with atomic_path(tmp_path / "talk.es.mp4") as tmp:
        assert tmp.name.startswith(f".talk.es.{os.getpid()}-")
        assert tmp.name.endswith(".part.mp4")
        assert remove_stale_temporaries(tmp_path) == []  # this process's own: in use
    assert remove_stale_temporaries(tmp_path, older_than_s=0) == []
