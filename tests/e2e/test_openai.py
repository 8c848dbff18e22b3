"""The OpenAI stages through the command line, against the loopback server.

A paid provider must be checked before it is used, must say what a run will cost before it
spends anything, must never write its key anywhere (not even when a server repeats it in an
error message), and must stop spending the moment it is interrupted. Each of those is a promise to the user that a unit test of one function cannot
keep, so these tests run ``python -m videodub`` against a
:class:`~videodub.testing.loopback.LoopbackServer` on 127.0.0.1 and look at what the server saw
and what the run left behind. How the transcriber cuts long audio is in
``integration/test_transcribe_openai.py``; retries, rate limits and batch repair inside a job
are in ``integration/test_openai_translate_tts.py``.

Servers are started per test or per module (one listening thread each); runs that several
tests read are module-scoped. All media is synthesized: the talks from conftest.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import imageio_ffmpeg
import pytest
from conftest import TEST_KEY, TEST_KEY_ENV, Talk, openai_overrides, started_servers
from failure_corpus import assert_message
from helpers_loopback import Crowd

from videodub.testing.loopback import LoopbackServer

from .conftest import CliRun, RunCli, cli_env

KEY_ENV = {TEST_KEY_ENV: TEST_KEY}
# One key the loopback servers here never accept: a failing run must not leak it either.
WRONG_KEY = "sk-wrong-0d9c8b7a6f5e4d3c2b1a"
# Doubtful lines for the transcriber's script: "~" low log-probability, "%" repetitive.
DOUBTFUL_SCRIPT = ["Welcome to this short talk.", "~Today we look at ideas.",
                   "%First speak slowly.", "Second show one thing.",
                   "~%Third add subtitles.", "Thank you for watching."]
STAGE_MODELS = {"transcribe": "whisper-1", "translate": "gpt-4o-mini", "tts": "tts-1"}


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_server() -> Iterator[Callable[..., LoopbackServer]]:
    """Servers for module-scoped runs (those pass the key in the subprocess's env)."""
    with started_servers() as start:
        yield start


def routes(server: LoopbackServer) -> list[str]:
    return [r.route for r in server.requests]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_no_secret(run: CliRun, *secrets: str) -> None:
    """No secret in any file of the run dir or cache, nor in what the run printed."""
    texts = {"stdout": run.stdout, "stderr": run.stderr}
    for path in files_under(run.run_dir) + files_under(run.cache_dir):
        texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert any(".hydra" in name for name in texts), "the run wrote no .hydra folder to scan"
    for secret in secrets:
        leaks = [name for name, text in texts.items() if secret in text]
        assert not leaks, f"the key appears in {leaks}"


def assert_preflight_failure(run: CliRun, *phrases: str) -> str:
    """Exit 2 with one error line holding ``phrases``; the run left only its log and report."""
    assert run.returncode == 2, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    line = run.error_lines[0]
    for phrase in phrases:
        assert phrase in line, line
    assert "Traceback" not in run.stderr
    left = {p.relative_to(run.run_dir).as_posix() for p in files_under(run.run_dir)}
    assert {p for p in left if not p.startswith(".hydra/")} <= {"videodub.log", "report.json"}, left
    if "report.json" in left:
        report = run.report()
        assert report["status"] == "failed" and report["error"] == line.removeprefix("error: ")
    return line


def audio_streams(path: Path) -> list[str]:
    import av

    with av.open(str(path)) as container:
        return [s.metadata.get("language", "") for s in container.streams.audio]


# -- the whole pipeline ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_dub(run_cli: RunCli, talk: Talk, module_server) -> tuple[CliRun, LoopbackServer]:
    """``talk`` dubbed into Spanish with all three OpenAI stages on one loopback server."""
    server = module_server()
    run = run_cli(f"input={talk.path}", "target_lang=es", *openai_overrides(server), env=KEY_ENV)
    return run.check(), server


def test_openai_dub_writes_a_spanish_track_and_subtitled_segments(openai_dub, talk):
    run, _server = openai_dub
    assert run.video.is_file() and run.video.suffix == ".mp4"
    assert "spa" in audio_streams(run.video)
    segments = run.segments()
    # The loopback transcriber finds one region per spoken line, under the hum.
    assert len(segments) == len(talk.script)
    for seg, line in zip(segments, talk.script):
        assert seg["target_text"].strip(), seg
        # Region edges follow the energy (espeak trails off quietly), so: within the line.
        assert line.start - 0.1 <= seg["start"] < seg["end"] <= line.end + 0.1, (seg, line)


def test_openai_dub_reports_calls_cost_and_estimate(openai_dub):
    run, server = openai_dub
    report = run.report()
    for stage, model in STAGE_MODELS.items():
        provider = report["providers"][stage]
        assert provider["model"] == model and provider["calls"] > 0, provider
        assert provider["cost_usd"] > 0
        assert report["estimate"]["stages"][stage]["model"] == model
    assert report["cost_usd"] == pytest.approx(
        sum(p["cost_usd"] for p in report["providers"].values()), abs=1e-6)
    assert report["estimate"]["total_usd"] > 0
    # What the report counts is what the server answered.
    stats = server.stats()
    assert report["providers"]["tts"]["calls"] == stats["speech"]["requests"]
    assert report["providers"]["translate"]["calls"] == stats["chat"]["requests"]
    assert report["providers"]["transcribe"]["calls"] == stats["transcriptions"]["requests"]
    # The checks are recorded, and ran before the paid work they guard.
    assert 0 < report["preflight_s"] < report["wall_s"]
    first_paid = min(r.started for r in server.requests if r.route != "models")
    assert all(r.finished <= first_paid for r in server.requests if r.route == "models")


def test_openai_dub_prints_the_estimate_before_any_stage(openai_dub):
    run, _server = openai_dub
    lines = run.stderr.splitlines()
    estimate = [i for i, ln in enumerate(lines) if ln.startswith("estimated cost: $")]
    stage_lines = [i for i, ln in enumerate(lines) if re.match(r"\[\w+\] ", ln)]
    assert estimate and stage_lines, run.stderr
    assert estimate[0] < stage_lines[0]
    for stage, model in STAGE_MODELS.items():
        assert f"{stage} {model}: $" in lines[estimate[0]]


# -- secrets ---------------------------------------------------------------------------------


def test_successful_run_leaves_the_key_nowhere(openai_dub):
    run, _server = openai_dub
    assert (run.run_dir / ".hydra" / "overrides.yaml").is_file()
    assert (run.run_dir / "videodub.log").is_file()
    assert TEST_KEY_ENV in (run.run_dir / ".hydra" / "overrides.yaml").read_text()
    assert_no_secret(run, TEST_KEY)


def test_rejected_key_is_one_line_and_leaves_no_key(run_cli, short_talk, server_factory):
    server = server_factory()
    run = run_cli(f"input={short_talk.path}", "target_lang=es", *openai_overrides(server),
                  env={TEST_KEY_ENV: WRONG_KEY})
    line = assert_preflight_failure(run, "rejected the API key", f"${TEST_KEY_ENV}")
    assert "401" in line
    assert_message("key_rejected", line)
    assert set(routes(server)) == {"models"}
    assert_no_secret(run, WRONG_KEY, TEST_KEY)


def test_exhausted_retries_fail_in_one_line_and_leave_no_key(run_cli, short_talk, server_factory):
    server = server_factory()
    server.faults.rate("transcriptions", "500", 1.0)
    run = run_cli(f"input={short_talk.path}", "target_lang=es", *openai_overrides(server),
                  "transcribe.max_retries=2", env=KEY_ENV)
    assert run.returncode == 2, run.describe()
    assert len(run.error_lines) == 1 and "failed after 3 attempts" in run.error_lines[0]
    assert_message("server_errors_exhausted", run.error_lines[0])
    assert server.stats()["transcriptions"]["status"] == {"500": 3}
    report = run.report()
    assert report["status"] == "failed"
    assert report["providers"]["transcribe"]["server_errors"] == 3
    assert report["providers"]["transcribe"]["retries"] == 2
    assert not run.media_files()
    assert_no_secret(run, TEST_KEY)


@pytest.mark.parametrize("fault, retries", [("400_echo_key", 0), ("500_echo_key", 1)])
def test_a_key_the_server_echoes_is_masked_in_the_console_log_and_report(
        loopback, four_lines, run_cli, fault, retries):
    # A gateway that repeats the request's Authorization header in its error messages: the
    # key really is in the text the run shows, logs and reports (a 400 at once; a 500 is
    # logged as retried first), so only the masking keeps it out.
    loopback.faults.push("chat", *[fault] * (retries + 1))
    run = run_cli(f"input={four_lines.path}", "target_lang=es", *openai_overrides(loopback),
                  f"translate.max_retries={retries}")

    assert run.returncode == 2, run.describe()
    assert loopback.stats()["chat"]["status"] == {fault[:3]: retries + 1}
    echoed = "'Authorization: Bearer ***'"
    assert len(run.error_lines) == 1 and echoed in run.error_lines[0], run.describe()
    log = (run.run_dir / "videodub.log").read_text(encoding="utf-8")
    assert echoed in log
    if retries:
        assert any(echoed in ln and "retry 1/1" in ln for ln in log.splitlines()), log
    report = run.report()
    assert report["status"] == "failed" and echoed in report["error"], report["error"]
    assert TEST_KEY not in run.stdout + run.stderr + log + report["error"]
    assert_no_secret(run, TEST_KEY)
    leaks = [p for p in files_under(run.run_dir) if TEST_KEY.encode() in p.read_bytes()]
    assert leaks == []


def test_a_long_key_the_server_echoes_is_masked_whole(four_lines, run_cli, monkeypatch):
    # A token far longer than an OpenAI key (a JWT, say), echoed into an error message that
    # is cut short for display: no piece of it may show.
    long_key = "eyJ" + "".join(f"{i:04x}" for i in range(100))
    monkeypatch.setenv(TEST_KEY_ENV, long_key)
    with LoopbackServer(api_key=long_key) as server:
        server.faults.push("chat", "400_echo_key")
        run = run_cli(f"input={four_lines.path}", "target_lang=es", *openai_overrides(server))

    assert run.returncode == 2, run.describe()
    assert server.stats()["chat"]["status"] == {"400": 1}
    assert len(run.error_lines) == 1 and "'Authorization: Bearer ***" in run.error_lines[0]
    pieces = [long_key[i:i + 12] for i in range(0, len(long_key) - 12, 6)]
    texts = {"console": run.stdout + run.stderr, "report": run.report()["error"]}
    texts.update({str(p): p.read_text("utf-8", "replace") for p in files_under(run.run_dir)})
    shown = {name for name, text in texts.items() for piece in pieces if piece in text}
    assert not shown, f"part of the key shows in {sorted(shown)}"


# -- a failing translation, and keys, with the four-line talk ------------------------------


def test_exhausted_retries_fail_the_run_with_one_line(loopback, four_lines, run_cli):
    loopback.faults.push("chat", "500", "500", "500")
    run = run_cli(f"input={four_lines.path}", "target_lang=es", *openai_overrides(loopback),
                  "translate.max_retries=2")

    assert run.returncode == 2, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    message = run.error_lines[0]
    assert message.startswith("error: translate:") and "3 attempts" in message and "500" in message
    assert loopback.stats()["chat"]["status"] == {"500": 3}
    assert not list(run.run_dir.glob("*.es.mp4"))
    report = run.report()
    assert report["status"] == "failed"
    assert report["providers"]["translate"]["retries"] == 2


def test_wrong_key_fails_in_one_line_without_showing_it(loopback, four_lines, run_cli):
    run = run_cli(f"input={four_lines.path}", "target_lang=es", *openai_overrides(loopback),
                  env={TEST_KEY_ENV: WRONG_KEY})

    assert run.returncode == 2, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    assert f"${TEST_KEY_ENV}" in run.error_lines[0] and "401" in run.error_lines[0]
    assert loopback.stats()["speech"]["requests"] == 0  # stopped at the preflight
    for secret in (WRONG_KEY, TEST_KEY):
        assert secret not in run.stdout + run.stderr
        for path in run.run_dir.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_unset_key_for_openai_fails_before_any_work(four_lines, run_cli):
    variable = "VIDEODUB_TEST_ABSENT_KEY"
    assert variable not in os.environ
    run = run_cli(f"input={four_lines.path}", "target_lang=es", "translate=openai",
                  f"translate.api_key_env={variable}", "transcribe=openai",
                  f"transcribe.api_key_env={variable}", env={"OPENAI_BASE_URL": ""})

    assert run.returncode == 2, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    assert f"${variable} is not set" in run.error_lines[0]
    assert_message("key_unset", run.error_lines[0])
    assert run.media_files() == []
    stages = run.report()["stages"]
    assert all(stages[name]["done"] == 0 for name in ("ingest", "transcribe", "translate")), stages


# -- doubtful segments and server rate limits --------------------------------------------------


@pytest.fixture(scope="module")
def doubtful_dub(run_cli: RunCli, talk: Talk, module_server) -> CliRun:
    """``talk`` through a server whose transcripts include doubtful lines and whose chat
    route announces 600 requests per minute."""
    server = module_server(script=DOUBTFUL_SCRIPT, rpm={"chat": 600})
    return run_cli(f"input={talk.path}", "target_lang=es", *openai_overrides(server),
                   env=KEY_ENV).check()


def test_doubtful_transcripts_are_flagged_in_segments_json(doubtful_dub):
    segments = doubtful_dub.segments()
    assert [s["source_text"] for s in segments] == [ln.lstrip("~%") for ln in DOUBTFUL_SCRIPT]
    for seg, line in zip(segments, DOUBTFUL_SCRIPT):
        marks = line[:2]
        assert ("suspect_low_logprob" in seg["flags"]) == ("~" in marks), seg
        assert ("suspect_repetitive" in seg["flags"]) == ("%" in marks), seg


def test_server_rate_limit_headers_are_adopted(doubtful_dub):
    limits = doubtful_dub.report()["providers"]["translate"]["limits"]
    assert limits["from_headers"] is True
    assert limits["requests_per_minute"] == 600


# -- preflight -------------------------------------------------------------------------------


def test_unset_key_for_openai_names_the_variable_and_the_alternatives(run_cli, short_talk):
    run = run_cli(f"input={short_talk.path}", "target_lang=es", "transcribe=openai",
                  "transcribe.api_key_env=VIDEODUB_ABSENT_KEY", env={"OPENAI_BASE_URL": ""})
    assert "VIDEODUB_ABSENT_KEY" not in os.environ
    assert_preflight_failure(run, "$VIDEODUB_ABSENT_KEY is not set", "transcribe.api_key_env",
                             "transcribe.base_url=", "transcribe=faster_whisper")


@pytest.mark.parametrize("stage", ["transcribe", "translate", "tts"])
@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
def test_credentials_in_base_url_are_refused_without_showing_them(run_cli, short_talk, stage,
                                                                   verbose):
    """A `base_url` with `user:password@` is refused by the config check in one line (a
    traceback with `verbose=true`), and the password shows nowhere: not in the output, not
    on disk."""
    password = "pa55-in-the-url-7c1e"
    run = run_cli(f"input={short_talk.path}", "target_lang=es", f"{stage}=openai",
                  f"{stage}.base_url=http://someone:{password}@127.0.0.1:9/v1",
                  f"verbose={str(verbose).lower()}")

    refusal = f"{stage}: base_url must not contain credentials (user:password@)"
    if verbose:
        assert run.returncode != 0 and "Traceback" in run.stderr, run.describe()
        assert f"VideodubError: {refusal}" in run.stderr, run.describe()
    else:
        assert run.returncode == 2, run.describe()
        assert len(run.error_lines) == 1, run.describe()
        assert run.error_lines[0].startswith(f"error: {refusal}"), run.describe()
    assert password not in run.stdout + run.stderr
    assert files_under(run.run_dir) == []


def test_unreachable_base_url_is_named(run_cli, short_talk):
    run = run_cli(f"input={short_talk.path}", "target_lang=es", "transcribe=openai",
                  "transcribe.base_url=http://127.0.0.1:1/v1",
                  f"transcribe.api_key_env={TEST_KEY_ENV}", env=KEY_ENV)
    line = assert_preflight_failure(run, "cannot reach http://127.0.0.1:1/v1", "transcribe.base_url")
    assert_message("server_unreachable", line)


def test_unknown_model_lists_the_served_models(run_cli, short_talk, server_factory):
    server = server_factory(models=["whisper-1", "whisper-large-v3"])
    run = run_cli(f"input={short_talk.path}", "target_lang=es",
                  *openai_overrides(server, stages=("transcribe",)), "transcribe.model=whisper-9",
                  env=KEY_ENV)
    line = assert_preflight_failure(run, "no model 'whisper-9'",
                                    "it serves: whisper-1, whisper-large-v3", "transcribe.model")
    assert_message("model_unknown", line)
    assert set(routes(server)) == {"models"}


def test_a_model_without_timestamps_is_refused_for_openai(run_cli, short_talk):
    # A dummy key: the refusal comes before any request, so no network is needed.
    run = run_cli(f"input={short_talk.path}", "target_lang=es", "transcribe=openai",
                  "transcribe.model=gpt-4o-transcribe", f"transcribe.api_key_env={TEST_KEY_ENV}",
                  env={TEST_KEY_ENV: "sk-dummy", "OPENAI_BASE_URL": ""})
    assert_preflight_failure(run, "gpt-4o-transcribe", "transcribe.model=whisper-1")


def test_a_voice_openai_does_not_have_is_refused(run_cli, short_talk):
    run = run_cli(f"input={short_talk.path}", "target_lang=en", "tts=openai", "tts.voice=klingon",
                  f"tts.api_key_env={TEST_KEY_ENV}",
                  env={TEST_KEY_ENV: "sk-dummy", "OPENAI_BASE_URL": ""})
    assert_preflight_failure(run, "tts.voice=klingon", "alloy")


def test_input_without_audio_fails_before_any_request(run_cli, tmp_path, server_factory):
    silent_film = tmp_path / "silent.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=160x120:rate=10:duration=1", "-c:v", "libx264", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p", str(silent_film)], check=True)
    server = server_factory()
    run = run_cli(f"input={silent_film}", "target_lang=es", *openai_overrides(server), env=KEY_ENV)
    assert_preflight_failure(run, "audio")
    assert server.requests == []


def test_stalled_endpoint_fails_the_check_instead_of_waiting(run_cli, short_talk, server_factory):
    server = server_factory(latency={"models": 30.0})
    run = run_cli(f"input={short_talk.path}", "target_lang=es",
                  *openai_overrides(server, stages=("translate",)), env=KEY_ENV)
    line = assert_preflight_failure(run, "did not answer within", "translate.base_url")
    assert_message("server_stalls", line)
    assert not [r for r in server.requests if r.status == 200]  # gave up before the answer


# -- dry run ---------------------------------------------------------------------------------


def test_dry_run_prints_the_estimate_and_only_checks(run_cli, short_talk, server_factory):
    # The model checks are held until all three are in flight, which checks that waited for
    # each other never are (held at most 1.2 s: a check gives up after 1.5 s).
    server = server_factory()
    server.faults = Crowd("models", len(STAGE_MODELS), wait_s=1.2)
    run = run_cli(f"input={short_talk.path}", "target_lang=es", *openai_overrides(server),
                  "dry_run=true", env=KEY_ENV).check()
    summary = next(ln for ln in run.stdout.splitlines() if ln.startswith("estimated cost: $"))
    for stage, model in STAGE_MODELS.items():
        assert f"{stage} {model}: $" in summary
    assert not run.run_dir.exists() or not any(run.run_dir.iterdir())
    assert not list(Path(run.cache_dir).iterdir())
    assert set(routes(server)) == {"models"}
    assert server.stats()["models"]["max_in_flight"] == len(STAGE_MODELS)


# -- cancellation ----------------------------------------------------------------------------


def test_ctrl_c_while_speech_is_requested_stops_spending(talk, tmp_path, server_factory):
    server = server_factory(latency={"speech": 8.0})
    run_dir = tmp_path / "run"
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "videodub", f"input={talk.path}", "target_lang=es",
             # A set speaking rate: measuring the voice first would be a third speech
             # request, answered before the two this test stalls.
             *openai_overrides(server), "tts.max_in_flight=2", "align.chars_per_second=15",
             "runner.display=plain",
             f"hydra.run.dir={run_dir}", f"cache_dir={tmp_path / 'cache'}"],
            stdout=stdout, stderr=stderr, cwd=tmp_path, env=cli_env(), stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 90
            while server.stats()["speech"]["max_in_flight"] < 2:
                assert proc.poll() is None, err.read_text()
                assert time.monotonic() < deadline, "no speech request started"
                time.sleep(0.05)
            signalled = time.monotonic()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    # The process was gone while its requests were still stalled at the server.
    answered = [r for r in server.requests if r.route == "speech"]
    server.stop()
    stderr_text = err.read_text()
    assert proc.returncode == 130, stderr_text
    assert answered == [], "the run waited for its speech requests"
    speech = [r for r in server.requests if r.route == "speech"]
    assert speech and all(r.started < signalled for r in speech)
    assert len(speech) <= 2
    assert [ln for ln in stderr_text.splitlines() if ln.startswith("error:")][-1].startswith(
        "error: interrupted")
    assert not list(run_dir.rglob("*.mp4")) and not list(run_dir.rglob("*.part*"))
    assert not (run_dir / "work").exists()
    assert (run_dir / "report.json").read_text().count('"status": "cancelled"') == 1


