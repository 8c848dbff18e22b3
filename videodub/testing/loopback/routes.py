"""The four routes of the loopback server: which request line is which route, and the answer to
a request that got past authentication, faults and rate limits."""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import numpy as np

from videodub.testing.loopback.audio import (
    SPEECH_FORMATS,
    SPEECH_RATE,
    TRANSCRIPTION_RATE,
    decode_audio,
    encode_speech,
    synthesize_speech,
    voiced_regions,
)
from videodub.testing.loopback.chat import chat_content, lines_of, prompt_tokens
from videodub.testing.loopback.faults import ApiError, Response, bad_request, json_response, missing
from videodub.testing.loopback.transcripts import (
    TRANSCRIPT_FORMATS,
    UPLOAD_FORMATS,
    Form,
    Segment,
    language_name,
    scripted_segment,
    transcript_response,
    whisper_segments,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from videodub.testing.loopback.server import LoopbackServer, RequestRecord

MAX_SPEECH_INPUT = 4096


@dataclass
class Request:
    """A request as a route sees it."""

    route: str
    path_arg: str | None  # the model id of GET /models/{id}
    content_type: str
    body: bytes
    fault: str | None


def route_of(method: str, path: str) -> tuple[str | None, str | None]:
    """(route, model id) for a request line; (None, None) for URLs this server does not serve."""
    if method == "GET" and path == "/v1/models":
        return "models", None
    if method == "GET" and path.startswith("/v1/models/"):
        return "models", unquote(path.removeprefix("/v1/models/"))
    posts = {"/v1/audio/transcriptions": "transcriptions", "/v1/chat/completions": "chat",
             "/v1/audio/speech": "speech"}
    if method == "POST" and path in posts:
        return posts[path], None
    return None, None


def estimated_tokens(route: str, body: bytes) -> int:
    """What a request charges against tokens per minute before it is answered."""
    if route != "chat":
        return 0
    try:
        payload = json.loads(body)
    except ValueError:
        return 0
    return prompt_tokens(payload.get("messages")) if isinstance(payload, dict) else 0


def _json_payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise bad_request("We could not parse the JSON body of your request. The OpenAI API "
                          "expects a JSON payload, but what was sent was not valid JSON.")
    return payload


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "loopback"}


def _speed(payload: dict[str, Any]) -> float:
    speed = payload.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise bad_request("Invalid type for 'speed': expected a decimal.", "speed", "invalid_type")
    if speed < 0.25:
        raise bad_request(f"Invalid 'speed': decimal below minimum value. Expected a value >= "
                          f"0.25, but got {speed} instead.", "speed", "decimal_below_min_value")
    if speed > 4.0:
        raise bad_request(f"Invalid 'speed': decimal above maximum value. Expected a value <= 4, "
                          f"but got {speed} instead.", "speed", "decimal_above_max_value")
    return float(speed)


def _voice(payload: dict[str, Any]) -> str:
    voice = payload.get("voice")
    if isinstance(voice, dict):
        voice = voice.get("id")
    if not isinstance(voice, str) or not voice:
        raise missing("voice")
    return voice


class Routes:
    """The answers of one server, reading its settings (models, script, transcriber) afresh
    for every request."""

    def __init__(self, server: LoopbackServer) -> None:
        self._server = server
        self._completion_ids = itertools.count(1)
        self._answers: dict[str, Callable[[Request, RequestRecord], Response]] = {
            "models": self.models, "transcriptions": self.transcriptions, "chat": self.chat,
            "speech": self.speech}

    def answer(self, request: Request, record: RequestRecord) -> Response:
        """The answer to ``request``; what it was about goes into ``record``."""
        return self._answers[request.route](request, record)

    def _check_model(self, model: Any) -> str:
        if not isinstance(model, str) or not model:
            raise missing("model")
        if model not in self._server.models:
            raise ApiError(404, f"The model `{model}` does not exist or you do not have access "
                                "to it.", code="model_not_found")
        return model

    def models(self, request: Request, record: RequestRecord) -> Response:
        if request.path_arg is None:
            return json_response({"object": "list",
                                  "data": [_model_object(m) for m in self._server.models]})
        record.model = request.path_arg
        return json_response(_model_object(self._check_model(request.path_arg)))

    def transcriptions(self, request: Request, record: RequestRecord) -> Response:
        form = Form(request.body, request.content_type)
        record.model = form.text("model")
        model = self._check_model(record.model)
        upload = form.file("file")
        if upload is None:
            raise missing("file")
        fmt = form.text("response_format") or "json"
        if fmt not in TRANSCRIPT_FORMATS:
            raise bad_request(f"Invalid value for 'response_format': '{fmt}'. Supported values "
                              f"are: {', '.join(TRANSCRIPT_FORMATS)}.", "response_format",
                              "invalid_value")
        if model.startswith("gpt-4o") and fmt not in ("json", "text"):
            raise bad_request(f"response_format '{fmt}' is not compatible with model '{model}'. "
                              "Use 'json' or 'text' instead.", "response_format",
                              "unsupported_value")
        language = language_name(form.text("language"))
        if request.fault == "bad_segments":  # parses, but is not a transcript
            return json_response({"text": "...", "segments": [{"text": "no times"}]})
        audio = self._decode(upload)
        segments = self._transcribe(audio)
        duration = len(audio) / TRANSCRIPTION_RATE
        record.detail.update(response_format=fmt, language=language, prompt=form.text("prompt"),
                             segments=len(segments), audio_s=duration)
        return transcript_response(fmt, segments, duration, language,
                                   form.texts("timestamp_granularities[]"))

    @staticmethod
    def _decode(upload: bytes) -> np.ndarray:
        import av

        try:
            return decode_audio(upload)
        except (av.FFmpegError, ValueError) as exc:
            raise bad_request(f"Invalid file format. Supported formats: {UPLOAD_FORMATS}",
                              "file", "invalid_value") from exc

    def _transcribe(self, audio: np.ndarray) -> list[Segment]:
        if self._server.transcriber == "whisper":
            return whisper_segments(audio)
        script = self._server.script
        return [scripted_segment(script[k % len(script)], start, end)
                for k, (start, end) in enumerate(voiced_regions(audio, TRANSCRIPTION_RATE))]

    def chat(self, request: Request, record: RequestRecord) -> Response:
        """A completion; its tokens go into ``record.detail`` (``tokens_out`` is charged to the
        tokens-per-minute limit after answering)."""
        payload = _json_payload(request.body)
        record.model, record.body = payload.get("model"), payload
        model = self._check_model(record.model)
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise missing("messages")
        if payload.get("stream"):
            raise bad_request("Streaming is not supported by this server.", "stream",
                              "unsupported_value")
        lines = lines_of(messages)
        content = chat_content(lines, payload.get("response_format"), request.fault)
        usage = {"prompt_tokens": prompt_tokens(messages),
                 "completion_tokens": math.ceil(len(content) / 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        record.detail.update(lines=None if lines is None else len(lines),
                             tokens_in=usage["prompt_tokens"],
                             tokens_out=usage["completion_tokens"])
        finish_reason = "length" if request.fault == "truncated" else "stop"
        message = {"role": "assistant", "content": content, "refusal": None}
        return json_response({
            "id": f"chatcmpl-loopback{next(self._completion_ids)}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish_reason}],
            "usage": usage})

    def speech(self, request: Request, record: RequestRecord) -> Response:
        payload = _json_payload(request.body)
        record.model, record.body = payload.get("model"), payload
        model = self._check_model(record.model)
        text = payload.get("input")
        if not isinstance(text, str) or not text:
            raise missing("input")
        if len(text) > MAX_SPEECH_INPUT:
            raise bad_request(f"Invalid 'input': string too long. Expected a string with maximum "
                              f"length {MAX_SPEECH_INPUT}, but got a string with length "
                              f"{len(text)} instead.", "input", "string_above_max_length")
        voice, speed = _voice(payload), _speed(payload)
        if payload.get("instructions") and model.startswith("tts-1"):
            raise bad_request(f"Instructions are not supported with model '{model}'; use "
                              "gpt-4o-mini-tts.", "instructions", "unsupported_parameter")
        fmt = payload.get("response_format", "mp3")
        if fmt not in SPEECH_FORMATS:
            raise bad_request(f"Invalid value for 'response_format': '{fmt}'. Supported values "
                              f"are: {', '.join(SPEECH_FORMATS)}.", "response_format",
                              "invalid_value")
        pcm = synthesize_speech(text, speed, voice)
        record.detail.update(voice=voice, speed=speed, response_format=fmt, chars=len(text),
                             audio_s=len(pcm) / SPEECH_RATE)
        return Response(200, encode_speech(pcm, fmt), SPEECH_FORMATS[fmt])
