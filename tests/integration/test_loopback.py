"""The loopback OpenAI-compatible server, driven through the real ``openai`` SDK. (Its plain
functions, the fake translation, the key mask and the header durations, are tested in
``unit/testing/test_loopback.py``.)

Each test starts its own server (cheap: one listening socket and a thread) so limits, faults
and stats never leak between tests. Audio is synthesized here: tone bursts with numpy, an mp3
of them with the bundled ffmpeg, and one espeak sentence for the Whisper transcriber.
"""

from __future__ import annotations

import http.client
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import openai
import pytest
import soundfile
from conftest import PROJECT_ROOT
from helpers_loopback import Crowd

from videodub.testing.loopback import (
    DEFAULT_MODELS,
    FIXED_REPLY,
    SPEECH_RATE,
    LoopbackServer,
    decode_audio,
    mask_key,
    translate,
)

BURSTS = [(0.5, 1.3), (2.0, 2.3), (2.9, 4.1)]  # seconds; the middle one is short (< 0.4 s)
BURSTS_DURATION = 4.6
WAV_RATE = 22_050
KEY = "sk-test-secret-1234"

LINES = [{"id": 1, "text": "Hello and welcome to this talk."},
         {"id": "b", "text": "Today we look at how a video is dubbed, first the speech."},
         {"id": 3, "text": "Thank you for watching."}]
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "translations", "schema": {
    "type": "object",
    "properties": {"translations": {"type": "array", "items": {"type": "object"}}}}}}


def make_client(server: LoopbackServer, api_key: str = "sk-anything", **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0, **kwargs)


def chat_messages(lines: list[dict]) -> list[dict]:
    return [{"role": "system", "content": "Translate each line into Spanish; answer JSON."},
            {"role": "user", "content": json.dumps({"target": "es", "lines": lines})}]


@pytest.fixture(scope="module")
def bursts_wav(tmp_path_factory) -> Path:
    """Harmonic tone bursts at BURSTS separated by digital silence, 22.05 kHz mono wav."""
    t = np.arange(int(BURSTS_DURATION * WAV_RATE)) / WAV_RATE
    tone = 0.2 * np.sin(2 * np.pi * 180 * t) + 0.1 * np.sin(2 * np.pi * 360 * t)
    audio = np.zeros_like(t)
    for start, end in BURSTS:
        inside = (t >= start) & (t < end)
        audio[inside] = tone[inside]
    path = tmp_path_factory.mktemp("bursts") / "bursts.wav"
    soundfile.write(path, audio.astype(np.float32), WAV_RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def bursts_mp3(bursts_wav: Path) -> Path:
    import imageio_ffmpeg

    path = bursts_wav.with_suffix(".mp3")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-i", str(bursts_wav), "-c:a", "libmp3lame", "-b:a", "64k", str(path)],
                   check=True)
    return path


@pytest.fixture
def server():
    with LoopbackServer(script=["First line.", "Second line."]) as running:
        yield running


@pytest.fixture
def client(server: LoopbackServer) -> openai.OpenAI:
    return make_client(server)


# --- models -----------------------------------------------------------------------------------


def test_models_list_retrieve_and_unknown(client: openai.OpenAI, server: LoopbackServer) -> None:
    assert [m.id for m in client.models.list()] == DEFAULT_MODELS
    assert client.models.retrieve("tts-1").id == "tts-1"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-9")
    assert caught.value.code == "model_not_found"
    assert server.stats()["models"]["status"] == {"200": 2, "404": 1}


def test_models_can_be_configured() -> None:
    with LoopbackServer(models=["only-model"]) as server:
        assert [m.id for m in make_client(server).models.list()] == ["only-model"]


# --- transcriptions ---------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["bursts_wav", "bursts_mp3"])
def test_transcription_segments_follow_the_bursts(fixture: str, request, client: openai.OpenAI,
                                                  server: LoopbackServer) -> None:
    path: Path = request.getfixturevalue(fixture)
    with path.open("rb") as upload:
        result = client.audio.transcriptions.create(file=upload, model="whisper-1",
                                                    response_format="verbose_json")
    assert len(result.segments) == len(BURSTS)
    for segment, (start, end) in zip(result.segments, BURSTS):
        assert segment.start == pytest.approx(start, abs=0.05)
        assert segment.end == pytest.approx(end, abs=0.05)
    # The script cycles: segment k gets line k % len(script).
    assert [s.text.strip() for s in result.segments] == [
        "First line.", "Second line.", "First line."]
    assert result.text == "First line. Second line. First line."
    assert result.language == "english"
    assert result.duration == pytest.approx(BURSTS_DURATION, abs=0.1)
    assert server.stats()["transcriptions"]["audio_s"] == pytest.approx(BURSTS_DURATION, abs=0.1)
    assert server.stats()["transcriptions"]["bytes_in"] > path.stat().st_size


def test_scripted_doubtful_lines_carry_whisper_suspect_signals(bursts_wav: Path) -> None:
    with LoopbackServer(script=["Plain line.", "~Doubtful line.", "%Repeated line."]) as server:
        result = make_client(server).audio.transcriptions.create(
            file=bursts_wav, model="whisper-1", response_format="verbose_json")
    plain, doubtful, repeated = result.segments
    assert [s.text.strip() for s in result.segments] == [
        "Plain line.", "Doubtful line.", "Repeated line."]
    # Normal segments sit well inside Whisper's thresholds (-1.0, 2.4, 0.6)...
    assert plain.avg_logprob > -1.0 and plain.compression_ratio < 2.4 and plain.no_speech_prob < 0.6
    # ... "~" marks a low log-probability, "%" a repetitive text, a short region looks like noise.
    assert doubtful.avg_logprob < -1.0 and doubtful.compression_ratio < 2.4
    assert doubtful.no_speech_prob > 0.6  # its burst lasts 0.3 s
    assert repeated.compression_ratio > 2.4 and repeated.avg_logprob > -1.0
    assert repeated.no_speech_prob < 0.6


def test_transcription_text_formats(bursts_wav: Path, client: openai.OpenAI) -> None:
    audio = bursts_wav.read_bytes()
    text = client.audio.transcriptions.create(file=("a.wav", audio), model="whisper-1",
                                              response_format="text")
    assert text.strip() == "First line. Second line. First line."
    srt = client.audio.transcriptions.create(file=("a.wav", audio), model="whisper-1",
                                             response_format="srt")
    cues = srt.strip().split("\n\n")
    assert len(cues) == 3 and cues[0].splitlines()[0] == "1"
    assert cues[1].splitlines()[1].startswith("00:00:02,0") and " --> 00:00:02,3" in cues[1]
    vtt = client.audio.transcriptions.create(file=("a.wav", audio), model="whisper-1",
                                             response_format="vtt")
    assert vtt.startswith("WEBVTT") and "00:00:02.9" in vtt
    assert client.audio.transcriptions.create(file=("a.wav", audio), model="gpt-4o-transcribe").text


def test_transcription_language_is_whispers_name(bursts_wav: Path, client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(file=bursts_wav, model="whisper-1", language="es",
                                                response_format="verbose_json")
    assert result.language == "spanish"
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=bursts_wav, model="whisper-1", language="xx")
    assert caught.value.param == "language"


def test_word_timestamps_only_when_asked(bursts_wav: Path, client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(file=bursts_wav, model="whisper-1",
                                                response_format="verbose_json",
                                                timestamp_granularities=["word"])
    assert result.segments is None
    assert [w.word for w in result.words] == ["First", "line.", "Second", "line.", "First", "line."]
    assert result.words[0].start == pytest.approx(BURSTS[0][0], abs=0.05)
    assert result.words[-1].end == pytest.approx(BURSTS[-1][1], abs=0.05)


def test_upload_over_the_limit_is_413_and_the_connection_survives(bursts_wav: Path) -> None:
    size = bursts_wav.stat().st_size
    with LoopbackServer(max_upload_bytes=size // 2) as server:
        client = make_client(server)
        with pytest.raises(openai.APIStatusError) as caught:
            client.audio.transcriptions.create(file=bursts_wav, model="whisper-1")
        assert caught.value.status_code == 413
        assert f"Maximum content size limit ({size // 2}) exceeded" in caught.value.message
        assert client.models.retrieve("whisper-1").id == "whisper-1"
        assert server.stats()["transcriptions"]["status"] == {"413": 1}


def test_transcription_rejections(bursts_wav: Path, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=bursts_wav, model="gpt-4o-transcribe",
                                           response_format="verbose_json")
    assert "not compatible with model 'gpt-4o-transcribe'" in caught.value.message
    assert caught.value.param == "response_format"
    with pytest.raises(openai.NotFoundError):
        client.audio.transcriptions.create(file=bursts_wav, model="whisper-9")
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=("notes.wav", b"not audio at all"),
                                           model="whisper-1")
    assert "Invalid file format" in caught.value.message


def test_chunked_upload_is_read(bursts_wav: Path, server: LoopbackServer) -> None:
    boundary = "loopbackboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + bursts_wav.read_bytes() + \
        f"\r\n--{boundary}--\r\n".encode()
    address = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    pieces = (body[i:i + 4096] for i in range(0, len(body), 4096))
    connection.request("POST", "/v1/audio/transcriptions", body=pieces, encode_chunked=True,
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["text"] == "First line. Second line. First line."
    connection.close()


# espeak-ng keeps state from one synthesis to the next in a process: the same text sounds a
# little different after other speech, and Whisper may then mishear it. A fresh process
# speaks it the same way whichever tests ran before.
SPEAK_IN_A_FRESH_PROCESS = (
    "import sys, soundfile; from videodub.builtin.tts_espeak import engine; "
    "soundfile.write(sys.argv[1], engine().synth('Hello world, this is a test.', 'en-us', 175, "
    "50), engine().sample_rate, subtype='PCM_16')")


def test_whisper_transcriber_hears_espeak(tmp_path) -> None:
    wav = tmp_path / "hello.wav"
    subprocess.run([sys.executable, "-c", SPEAK_IN_A_FRESH_PROCESS, str(wav)], check=True,
                   timeout=60)
    with LoopbackServer(transcriber="whisper") as server:
        result = make_client(server).audio.transcriptions.create(
            file=("hello.wav", wav.read_bytes()), model="whisper-1",
            response_format="verbose_json")
    words = result.text.lower()
    assert "hello" in words and "test" in words
    duration = soundfile.info(str(wav)).duration
    assert all(0 <= s.start < s.end <= duration + 0.1 for s in result.segments)


# --- chat -------------------------------------------------------------------------------------


def test_chat_structured_output_translates_lines_in_order(client: openai.OpenAI,
                                                           server: LoopbackServer) -> None:
    limited = [*LINES[:1], {**LINES[1], "max_chars": 20}, *LINES[2:]]
    messages = chat_messages(limited)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages,
                                                response_format=SCHEMA_FORMAT)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    items = json.loads(choice.message.content)["translations"]
    assert [item["id"] for item in items] == [1, "b", 3]
    assert items[0]["text"] == "Hola y bienvenidos a este charla."
    assert items[2]["text"] == "Gracias tú para mirando."
    # max_chars drops trailing words of the full translation until the text fits.
    full = translate(LINES[1]["text"])
    assert len(items[1]["text"]) <= 20 and full.startswith(items[1]["text"])
    assert len(items[1]["text"].split()) >= 2
    content_chars = sum(len(m["content"]) for m in messages)
    assert completion.usage.prompt_tokens == math.ceil(content_chars / 4)
    assert completion.usage.completion_tokens == math.ceil(len(choice.message.content) / 4)
    chat = server.stats()["chat"]
    assert (chat["tokens_in"], chat["tokens_out"]) == (completion.usage.prompt_tokens,
                                                       completion.usage.completion_tokens)


def test_chat_schema_names_the_array_and_json_object_uses_translations(
        client: openai.OpenAI) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "out", "schema": {
        "type": "object", "properties": {"note": {"type": "string"}, "items": {"type": "array"}}}}}
    content = client.chat.completions.create(model="gpt-4.1-mini", messages=chat_messages(LINES),
                                             response_format=schema).choices[0].message.content
    assert list(json.loads(content)) == ["items"]
    completion = client.chat.completions.create(model="gpt-4.1-mini",
                                                messages=chat_messages(LINES),
                                                response_format={"type": "json_object"})
    content = completion.choices[0].message.content
    assert [item["id"] for item in json.loads(content)["translations"]] == [1, "b", 3]


def test_chat_without_lines_answers_plain_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello."}])
    assert completion.choices[0].message.content == FIXED_REPLY


def test_chat_unknown_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-2", messages=chat_messages(LINES))
    assert caught.value.code == "model_not_found"


def _faulty_content(server: LoopbackServer, fault: str):
    server.faults.push("chat", fault)
    completion = make_client(server).chat.completions.create(
        model="gpt-4o-mini", messages=chat_messages(LINES), response_format=SCHEMA_FORMAT)
    return completion.choices[0]


def test_chat_missing_and_duplicated_ids(server: LoopbackServer) -> None:
    missing = json.loads(_faulty_content(server, "missing_id").message.content)["translations"]
    assert len(missing) == len(LINES) - 1
    assert {item["id"] for item in missing} < {line["id"] for line in LINES}
    doubled = json.loads(_faulty_content(server, "dup_id").message.content)["translations"]
    ids = [item["id"] for item in doubled]
    assert len(ids) == len(LINES) + 1 and set(ids) == {line["id"] for line in LINES}
    assert [r.detail.get("fault") for r in server.requests] == ["missing_id", "dup_id"]


def test_chat_truncated_and_prose_content(server: LoopbackServer) -> None:
    truncated = _faulty_content(server, "truncated")
    assert truncated.finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.message.content)
    prose = _faulty_content(server, "bad_json_content")
    assert prose.finish_reason == "stop"
    with pytest.raises(json.JSONDecodeError):
        json.loads(prose.message.content)
    # The fault only touched one request each: the next answer is whole again.
    whole = make_client(server).chat.completions.create(
        model="gpt-4o-mini", messages=chat_messages(LINES), response_format=SCHEMA_FORMAT)
    assert len(json.loads(whole.choices[0].message.content)["translations"]) == len(LINES)


# --- speech -----------------------------------------------------------------------------------


def _speech(client: openai.OpenAI, text: str, fmt: str = "pcm", **kwargs) -> bytes:
    return client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format=fmt,
                                      **kwargs).content


@pytest.mark.parametrize("text,speed", [("Hi.", 1.0),
                                        ("Hello there, and welcome to the talk.", 1.0),
                                        ("Hello there, and welcome to the talk.", 2.0),
                                        ("Hello there, and welcome to the talk.", 0.5)])
def test_speech_length_follows_text_and_speed(client: openai.OpenAI, text: str,
                                              speed: float) -> None:
    pcm = np.frombuffer(_speech(client, text, speed=speed), dtype="<i2")
    expected = max(0.3, len(text) / 15) / speed
    assert len(pcm) / SPEECH_RATE == pytest.approx(expected, abs=2 / SPEECH_RATE)
    wav, rate = soundfile.read(io.BytesIO(_speech(client, text, "wav", speed=speed)), dtype="int16")
    assert rate == SPEECH_RATE and wav.ndim == 1
    assert np.array_equal(wav, pcm)


def test_speech_sounds_like_speech(client: openai.OpenAI) -> None:
    text = "Hello there, and welcome to the talk. Today we look at dubbing."
    pcm = np.frombuffer(_speech(client, text), dtype="<i2") / 32768.0
    frames = pcm[: len(pcm) // 480 * 480].reshape(-1, 480)  # 20 ms
    rms_db = 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1)) + 1e-12)
    voiced = rms_db > -40
    assert -22 < 20 * np.log10(np.sqrt(np.mean(frames[voiced] ** 2))) < -14
    assert (~voiced).sum() >= text.count(" ")  # gaps between words
    spectrum = np.abs(np.fft.rfft(pcm))
    assert 100 < np.fft.rfftfreq(len(pcm), 1 / SPEECH_RATE)[spectrum.argmax()] < 160
    assert _speech(client, text) == _speech(client, text)  # deterministic


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac"])
def test_speech_compressed_formats_decode_to_the_same_length(client: openai.OpenAI,
                                                             fmt: str) -> None:
    text = "Hello there, and welcome to the talk."
    audio = decode_audio(_speech(client, text, fmt))
    assert len(audio) / 16_000 == pytest.approx(len(text) / 15, abs=0.1)


def test_speech_rejections(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _speech(client, "Hello.", speed=5.0)
    assert caught.value.param == "speed"
    with pytest.raises(openai.BadRequestError) as caught:
        _speech(client, "a" * 4097)
    assert caught.value.param == "input" and "string too long" in caught.value.message
    assert len(_speech(client, "a" * 4096)) > 0
    with pytest.raises(openai.BadRequestError) as caught:
        _speech(client, "Hello.", instructions="Speak cheerfully.")
    assert caught.value.param == "instructions"
    assert _speech(client, "Hello.", fmt="wav") != b""
    cheerful = client.audio.speech.create(model="gpt-4o-mini-tts", voice="coral", input="Hello.",
                                          instructions="Speak cheerfully.", response_format="wav")
    assert soundfile.info(io.BytesIO(cheerful.content)).samplerate == SPEECH_RATE
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.",
                                   extra_body={"voice": None})
    assert caught.value.param == "voice"
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="tts-9", voice="alloy", input="Hello.")


# --- auth, limits ----------------------------------------------------------------------------


def test_wrong_key_is_401_with_the_key_masked() -> None:
    wrong = "sk-wrong-key-98765"
    with LoopbackServer(api_key=KEY) as server:
        with pytest.raises(openai.AuthenticationError) as caught:
            make_client(server, wrong).models.list()
        assert wrong not in str(caught.value) and wrong not in json.dumps(caught.value.body)
        assert mask_key(wrong) in caught.value.message
        assert caught.value.code == "invalid_api_key"
        assert [m.id for m in make_client(server, KEY).models.list()] == DEFAULT_MODELS


def test_requests_per_minute_limit_answers_429_with_retry_after() -> None:
    with LoopbackServer(rpm={"chat": 2}) as server:
        client = make_client(server)
        remaining = []
        for _ in range(2):
            raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                                   messages=chat_messages(LINES))
            assert raw.headers["x-ratelimit-limit-requests"] == "2"
            assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
            remaining.append(raw.headers["x-ratelimit-remaining-requests"])
        assert remaining == ["1", "0"]
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o-mini", messages=chat_messages(LINES))
        headers = caught.value.response.headers
        # A request comes back every 30 s at 2 per minute.
        assert 1 <= int(headers["retry-after"]) <= 30
        assert 0 < float(headers["retry-after-ms"]) <= 30_000
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert caught.value.code == "rate_limit_exceeded"
        assert caught.value.body["message"].startswith("Rate limit reached for requests")
        assert caught.value.type == "requests"
        # Other routes are not limited and carry no limit headers.
        raw_models = client.models.with_raw_response.list()
        assert "x-ratelimit-limit-requests" not in raw_models.headers
        server.reset()
        assert client.chat.completions.create(model="gpt-4o-mini", messages=chat_messages(LINES))


def test_tokens_per_minute_counts_the_prompt() -> None:
    messages = chat_messages(LINES)
    prompt = math.ceil(sum(len(m["content"]) for m in messages) / 4)
    with LoopbackServer(tpm={"chat": prompt + 10}, rate_headers=True) as server:
        client = make_client(server)
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                               messages=messages)
        assert raw.headers["x-ratelimit-limit-tokens"] == str(prompt + 10)
        assert int(raw.headers["x-ratelimit-remaining-tokens"]) < 10
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        assert caught.value.type == "tokens"


def test_rate_headers_can_be_turned_off() -> None:
    with LoopbackServer(rpm={"models": 100}, rate_headers=False) as server:
        raw = make_client(server).models.with_raw_response.list()
        assert not [name for name in raw.headers if name.startswith("x-ratelimit")]


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,error", [("500", openai.InternalServerError),
                                        ("503", openai.InternalServerError),
                                        ("429", openai.RateLimitError),
                                        ("400", openai.BadRequestError),
                                        ("401", openai.AuthenticationError)])
def test_status_faults_answer_openai_errors_once(server: LoopbackServer, client: openai.OpenAI,
                                                kind: str, error: type) -> None:
    server.faults.push("speech", kind)
    with pytest.raises(error) as caught:
        _speech(client, "Hello.")
    assert caught.value.status_code == int(kind)
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    if kind == "429":
        assert int(caught.value.response.headers["retry-after"]) >= 1
        assert "retry-after-ms" in caught.value.response.headers
    assert _speech(client, "Hello.")
    assert server.stats()["speech"]["status"] == {kind: 1, "200": 1}


@pytest.mark.parametrize("kind,error", [("400_echo_key", openai.BadRequestError),
                                        ("500_echo_key", openai.InternalServerError)])
def test_key_echo_faults_repeat_the_authorization_header(kind: str, error: type) -> None:
    with LoopbackServer(api_key=KEY) as server:
        server.faults.push("chat", kind)
        with pytest.raises(error) as caught:
            make_client(server, KEY).chat.completions.create(model="gpt-4o-mini",
                                                             messages=chat_messages(LINES))
        assert caught.value.status_code == int(kind[:3])
        assert f"'Authorization: Bearer {KEY}'" in caught.value.body["message"]
        assert server.stats()["chat"]["status"] == {kind[:3]: 1}


def test_a_429_fault_asks_for_the_servers_retry_after() -> None:
    with LoopbackServer(retry_after_s=1.25) as server:
        server.faults.push("speech", "429")
        with pytest.raises(openai.RateLimitError) as caught:
            _speech(make_client(server), "Hello.")
        headers = caught.value.response.headers
        assert headers["retry-after-ms"] == "1250" and headers["retry-after"] == "2"
        assert "try again in 1.25s" in caught.value.body["message"]
    with pytest.raises(ValueError, match="retry_after_s"):
        LoopbackServer(retry_after_s=-1)


def test_timeout_fault_stalls_until_stop(bursts_wav: Path) -> None:
    server = LoopbackServer(hang_s=600)
    server.start()
    try:
        server.faults.push("transcriptions", "timeout")
        with pytest.raises(openai.APITimeoutError):
            make_client(server, timeout=0.5).audio.transcriptions.create(file=bursts_wav,
                                                                         model="whisper-1")
        assert server.requests == []  # still stalling
    finally:
        server.stop()
    # stop() ended the stall: the request is recorded as closed without an answer.
    [record] = server.requests
    assert (record.route, record.status, record.detail["fault"]) == ("transcriptions", 0, "timeout")


def test_timeout_fault_answers_normally_after_the_stall(server: LoopbackServer) -> None:
    server.hang_s = 0.3
    server.faults.push("models", "timeout")
    assert [m.id for m in make_client(server).models.list()] == DEFAULT_MODELS
    assert server.requests[0].status == 200


def test_malformed_and_disconnect_faults(server: LoopbackServer, client: openai.OpenAI) -> None:
    server.faults.push("chat", "malformed", "disconnect")
    with pytest.raises((ValueError, openai.APIError)):
        client.chat.completions.create(model="gpt-4o-mini", messages=chat_messages(LINES))
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=chat_messages(LINES))
    assert [r.status for r in server.requests] == [200, 0]
    assert client.chat.completions.create(model="gpt-4o-mini", messages=chat_messages(LINES))


def test_random_faults_repeat_with_the_same_seed(server: LoopbackServer,
                                                 client: openai.OpenAI) -> None:
    def pattern() -> list[int]:
        server.reset()
        server.faults.rate("models", "500", 0.5, seed=7)
        for _ in range(16):
            try:
                client.models.retrieve("tts-1")
            except openai.InternalServerError:
                pass
        return [r.status for r in server.requests]

    first = pattern()
    assert first == pattern()
    assert {200, 500} == set(first)
    server.faults.rate("models", "500", 0.0)
    assert client.models.retrieve("tts-1")


def test_fault_names_are_checked(server: LoopbackServer) -> None:
    with pytest.raises(ValueError):
        server.faults.push("chat", "explode")
    with pytest.raises(ValueError):
        server.faults.push("speech", "truncated")
    with pytest.raises(ValueError):
        server.faults.push("embeddings", "500")


# --- concurrency, lifecycle, bookkeeping -----------------------------------------------------


def test_concurrent_requests_are_served_in_parallel() -> None:
    with LoopbackServer() as server:
        # Each request is held until all eight are in flight: a server that answered one at a
        # time would never hold more than one.
        server.faults = Crowd("models", 8, wait_s=5.0)
        client = make_client(server)
        threads = [threading.Thread(target=client.models.list) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = server.stats()["models"]
    assert stats["requests"] == 8 and stats["status"] == {"200": 8}
    assert stats["max_in_flight"] == 8


def test_records_and_reset(server: LoopbackServer, client: openai.OpenAI, bursts_wav: Path) -> None:
    client.audio.transcriptions.create(file=bursts_wav, model="whisper-1", prompt="A talk.")
    _speech(client, "Hello there.")
    transcription, speech = server.requests
    assert (transcription.model, transcription.status) == ("whisper-1", 200)
    assert transcription.detail["prompt"] == "A talk." and transcription.detail["segments"] == 3
    assert transcription.bytes_in > bursts_wav.stat().st_size
    assert transcription.started <= transcription.finished <= speech.started
    assert server.stats()["speech"]["chars"] == len("Hello there.")
    assert server.stats()["speech"]["audio_s"] == pytest.approx(len("Hello there.") / 15, abs=0.01)
    server.reset()
    assert server.requests == [] and server.stats()["speech"]["requests"] == 0


def test_records_the_authorization_header_as_sent() -> None:
    with LoopbackServer() as server:  # no key required
        make_client(server, "sk-sent-by-the-client").models.list()
        address = urlsplit(server.base_url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        connection.request("GET", "/v1/models")
        assert connection.getresponse().status == 200
        connection.close()
    with_key, without = server.requests
    assert with_key.authorization == "Bearer sk-sent-by-the-client"
    assert without.authorization is None


def test_unknown_url_is_an_openai_404(server: LoopbackServer) -> None:
    address = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    connection.request("POST", "/v1/embeddings", body=b"{}")
    response = connection.getresponse()
    assert response.status == 404
    assert "Invalid URL (POST /v1/embeddings)" in json.loads(response.read())["error"]["message"]
    connection.close()


def test_stop_closes_kept_alive_connections() -> None:
    server = LoopbackServer()
    server.start()
    client = make_client(server, timeout=5)
    assert client.models.list()
    server.stop()
    with pytest.raises(openai.APIConnectionError):
        client.models.list()
    server.stop()  # idempotent


# ``python -m videodub.testing.loopback ARGS``, with Ctrl-C restored first: shells start background
# jobs (and so, sometimes, the test run) with SIGINT ignored, which children inherit.
RUN_AS_MAIN = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
               "runpy.run_module('videodub.testing.loopback', run_name='__main__', alter_sys=True)")


def test_command_line_serves_until_interrupted() -> None:
    env = {**os.environ, "LOOPBACK_TEST_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-c", RUN_AS_MAIN, "--port", "0", "--rpm", "chat=5",
                             "--api-key-env", "LOOPBACK_TEST_KEY"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = proc.stdout.readline().strip()
        client = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini",
                                                               messages=chat_messages(LINES))
        assert raw.headers["x-ratelimit-limit-requests"] == "5"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base_url, api_key="sk-other-key-0000",
                          max_retries=0).models.list()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 0
    assert err == "" and out == ""


def test_a_request_the_server_cannot_read_answers_500_and_closes(server: LoopbackServer) -> None:
    address = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    connection.putrequest("POST", "/v1/chat/completions")
    connection.putheader("Content-Length", "lots")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 500 and response.getheader("Connection") == "close"
    assert json.loads(response.read())["error"]["type"] == "server_error"
    connection.close()
    assert server.stats()["chat"]["status"] == {"500": 1}
