"""ingest=url against a server on 127.0.0.1: a generated mp4 fetched through yt-dlp's generic
extractor, cached by URL, and the one-line errors for a page without media, a 404 and a port
that does not answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers_http import closed_port, serve
from yt_dlp.utils import sanitize_filename

from videodub.errors import VideodubError
from videodub.model import JobContext, JobScope
from videodub.plugins import installed_registry
from videodub.testing.samples import ENGLISH_TALK, make_talk


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    make_talk(folder / "short.mp4", ENGLISH_TALK[:2], pause=0.8)
    (folder / "page.html").write_text("<html><body><p>No video here.</p></body></html>")
    (folder / "talk.html").write_text("<html><head><title>A Short Talk: Part 1/2</title></head>"
                                      "<body><video src=\"short.mp4\" controls></video></body>"
                                      "</html>")
    with serve(folder) as server:
        yield server


def ingester(**options):
    registry = installed_registry()
    impl = registry.get("ingest", "url")
    return impl.create(impl.config(**options), JobScope(registry))


def context(tmp_path, url, cache=True):
    ctx = JobContext(tmp_path / "run", "en", None,
                     cache_dir=tmp_path / "cache" if cache else None)
    ctx.input = url
    return ctx


def test_a_url_is_downloaded_once_then_read_from_the_cache(site, tmp_path):
    url = site.url("short.mp4")
    stage = ingester()
    ctx = context(tmp_path, url)
    shown: list[str] = []
    ctx.progress = shown.append
    stage.check(ctx)
    media = stage.ingest(tmp_path / "ignored", ctx)
    assert shown and shown[-1].startswith(f"[ingest] downloaded {url} (0.")
    assert media.extra["url"] == url and media.extra["title"] == "short"
    assert media.duration == pytest.approx(make_talk_duration(media.path), abs=0.05)
    assert media.speech_audio.stat().st_size > 0 and media.full_audio.stat().st_size > 0
    fetched = site.requests["/short.mp4"]
    assert fetched >= 1
    # A second job (fresh context, same cache): no request at all, check included.
    ctx2 = context(tmp_path / "again", url)
    ctx2.cache_dir = ctx.cache_dir
    stage.check(ctx2)
    again = stage.ingest(tmp_path / "ignored", ctx2)
    assert site.requests["/short.mp4"] == fetched
    assert again.path == media.path
    assert any("reused from the cache" in n for n in ctx2.notes)
    record = json.loads((media.path.parent / "download.json").read_text())
    assert record["url"] == url and record["file"] == media.path.name
    assert not list(media.path.parent.glob("*.part*")), "a finished download left a temporary"


def test_a_download_counts_as_used_when_fetched_not_when_the_server_last_changed_it(site, tmp_path):
    import os
    import time

    from videodub.run.prune import entries, prune

    old = site.folder / "old.mp4"
    old.write_bytes((site.folder / "short.mp4").read_bytes())
    year_ago = time.time() - 400 * 86400
    os.utime(old, (year_ago, year_ago))  # the server sends it as Last-Modified
    ctx = context(tmp_path, site.url("old.mp4"))
    media = ingester().ingest(tmp_path / "ignored", ctx)
    assert media.path.stat().st_mtime > time.time() - 600
    # So pruning by age (30 days) keeps the fresh download.
    prune(ctx.cache_dir, None, 30 * 86400.0)
    assert media.path.is_file()
    assert [e.kind for e in entries(ctx.cache_dir)] == ["downloads"]


def make_talk_duration(path):
    import av

    with av.open(str(path)) as c:
        return c.duration / 1_000_000


def test_without_a_cache_the_download_goes_to_the_work_folder(site, tmp_path):
    ctx = context(tmp_path, site.url("short.mp4"), cache=False)
    media = ingester().ingest(tmp_path / "ignored", ctx)
    assert media.path.is_relative_to(ctx.work_dir)


@pytest.mark.parametrize("name, message", [
    ("page.html", "no video or audio found at http://127.0.0.1:"),
    ("missing.mp4", "was not found (HTTP 404)"),
])
def test_a_url_without_media_is_one_line_before_any_download(site, tmp_path, name, message):
    ctx = context(tmp_path, site.url(name))
    with pytest.raises(VideodubError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        ingester().check(ctx)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache" / "downloads").exists()


def test_a_port_that_does_not_answer_is_one_line(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/x.mp4"
    with pytest.raises(VideodubError, match=r"cannot reach http://127\.0\.0\.1:\d+/x\.mp4") as err:
        ingester(timeout_s=5).check(context(tmp_path, url))
    assert "\n" not in str(err.value)


def test_a_local_path_goes_to_the_local_ingester(tmp_path):
    ctx = context(tmp_path, str(tmp_path / "nope.mp4"))
    ctx.input_path = tmp_path / "nope.mp4"
    with pytest.raises(VideodubError, match="input not found"):
        ingester().check(ctx)


@pytest.mark.slow
def test_a_localhost_url_dubs_end_to_end_from_the_command_line(site, tmp_path):
    """A page that embeds the video, linked as people share links (a query with ``?`` and
    ``&``, typed unquoted): the dub is named after the page's title, not the URL's ``talk``."""
    url = site.url("talk.html") + "?v=short&t=0"
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "videodub", f"input={url}", "target_lang=en", "profile=speed",
         f"hydra.run.dir={run}", f"cache_dir={tmp_path / 'cache'}", "runner.display=plain"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "ok"
    assert report["job"]["implementations"]["ingest"] == "url"
    assert report["job"]["url"] == url and report["job"]["title"].startswith("A Short Talk: ")
    assert report["job"]["segments"]["target"] == 2
    video = run / f"{sanitize_filename(report['job']['title'])}.en.mp4"
    assert video.name.startswith("A Short Talk") and "/" not in video.name
    assert proc.stdout.strip().splitlines()[-1] == str(video)
    assert f"[ingest] downloaded {url}" in proc.stdout + proc.stderr  # progress is shown
    assert video.stat().st_size > 0
    assert sorted(p.name for p in run.glob("*.srt")) == [f"{video.stem}.srt"]


@pytest.mark.slow
def test_a_404_on_the_command_line_is_one_error_line(site, tmp_path):
    url = site.url("gone.mp4")
    proc = subprocess.run(
        [sys.executable, "-m", "videodub", f"input={url}", "target_lang=en",
         f"hydra.run.dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert errors == [f"error: {url} was not found (HTTP 404)"], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_the_audio_track_choice_reaches_the_ingester_that_reads_the_download(multitrack_talk,
                                                                             tmp_path):
    """``ingest.audio_track`` is passed on to ``ingest.local_ingest``: a film fetched by URL
    is dubbed from the track asked for."""
    import shutil

    folder = tmp_path / "site"
    folder.mkdir()
    shutil.copyfile(multitrack_talk, folder / "film.mkv")
    with serve(folder) as server:
        stage = ingester(audio_track="eng")
        ctx = context(tmp_path, server.url("film.mkv"))
        stage.check(ctx)
        media = stage.ingest(tmp_path / "ignored", ctx)
    assert (media.audio_stream, media.audio_streams) == (1, 2)


def test_a_links_password_and_signature_are_written_nowhere(site, tmp_path):
    """A presigned link (cloud storage) or one with ``user:password@``, in a list of inputs:
    the dub is made, and neither the password nor the signature nor the token is in any file
    the run leaves (Hydra's records, reports, logs, summaries, history, the cache) or in what
    it prints."""
    secrets = ("pw-7f3a9c1e", "sig-5b8d2e4f0a", "AKIAEXAMPLE/20261203", "tok-19c0ffee")
    url = (site.url("short.mp4").replace("http://", f"http://dana:{secrets[0]}@")
           + f"?X-Amz-Signature={secrets[1]}&X-Amz-Credential={secrets[2].replace('/', '%2F')}"
           + f"&token={secrets[3]}&v=short")
    (tmp_path / "todo.txt").write_text(url + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "videodub", "input=todo.txt", "target_lang=en", "profile=speed",
         "hydra.sweep.dir=sweep", "cache_dir=cache", "runner.display=plain"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "VIDEODUB_HISTORY": str(tmp_path / "history.sqlite")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    [report] = [json.loads(p.read_text()) for p in (tmp_path / "sweep").rglob("report.json")]
    assert report["status"] == "ok" and report["job"]["input"].startswith("http://dana:***@")
    texts = {"stdout": proc.stdout, "stderr": proc.stderr}
    files = [p for p in tmp_path.rglob("*")
             if p.is_file() and p.suffix not in (".mp4", ".wav") and p.name != "todo.txt"]
    assert {"multirun.yaml", "overrides.yaml", "videodub.log", "summary.json", "download.json",
            "history.sqlite"} <= {p.name for p in files}
    texts.update({str(p): p.read_bytes().decode("utf-8", "replace") for p in files})
    for secret in secrets:
        leaks = [name for name, text in texts.items() if secret in text]
        assert not leaks, f"{secret} appears in {leaks}"
