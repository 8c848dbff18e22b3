"""A small OpenAI-compatible HTTP server that runs on this machine, for tests, benchmarks and
trying provider configurations offline.

Code that talks to OpenAI-style providers has to cope with far more than the happy path: rate
limits, slow answers, 5xx errors, dropped connections, and models that return JSON with an item
missing or cut off. A hosted API produces those rarely and never on demand, costs money and
needs a network. This server answers the same routes with deterministic, cheap results, and
misbehaves exactly when told to, so client code can be exercised end to end through the real
``openai`` SDK::

    with LoopbackServer(rpm={"chat": 60}, latency={"speech": 0.05}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-anything")
        server.faults.push("chat", "429", "truncated")   # the next two chat requests misbehave
        ...
        server.stats()["chat"]["status"]                  # {"429": 1, "200": 1, ...}

or from a shell, until Ctrl-C: ``python -m videodub.loopback [--host H] [--port 8000]
[--latency ROUTE=S] [--rpm ROUTE=N] [--tpm ROUTE=N] [--api-key-env NAME]
[--transcriber regions|whisper]`` (the key is read from the environment variable named, so it
never shows in a process list).

Routes (all under ``/v1``):

- ``GET /models``, ``GET /models/{id}``: the configured model ids.
- ``POST /audio/transcriptions`` (multipart): the upload is decoded with PyAV; segments are
  the voiced regions found by frame energy, labelled with lines of a script (``~`` and ``%``
  at the start of a line make it doubtful: low log-probability, high compression ratio), or
  real ``tiny.en`` Whisper output with ``transcriber="whisper"``. Formats: json, text, srt,
  vtt, verbose_json.
- ``POST /chat/completions``: "translates" the ``lines`` of a JSON user message word by word
  into Spanish from a small dictionary, honouring ``max_chars``; answers structured JSON when
  ``response_format`` asks for it.
- ``POST /audio/speech``: a voiced tone whose length follows the text (15 characters per
  second, divided by ``speed``) as pcm, wav, flac, mp3, opus or aac.

Knobs: an API key (401 with a masked key otherwise), per-route latency, requests- and
tokens-per-minute limits with OpenAI's 429 body and ``x-ratelimit-*`` headers, an upload size
limit (413), and faults (scripted or random with a seed): HTTP errors, a stall, a non-JSON body,
a dropped connection, and for chat, translations with an id missing or repeated, cut off
(``finish_reason="length"``) or wrapped in prose. Every request is recorded (``requests``) and
counted per route (``stats()``: statuses, peak concurrency, bytes, tokens, characters, audio).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import os
import random
import re
import socket
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import numpy as np

ROUTES = ("models", "transcriptions", "chat", "speech")
DEFAULT_MODELS = ["whisper-1", "gpt-4o-mini", "gpt-4.1-mini", "tts-1", "tts-1-hd", "gpt-4o-mini-tts",
                  "gpt-4o-transcribe"]
DEFAULT_SCRIPT = [
    "Hello and welcome to this short talk.",
    "Today we look at how a video is dubbed.",
    "First the speech is transcribed, then it is translated.",
    "Thank you for watching.",
]
OPENAI_UPLOAD_LIMIT = 26_214_400

STATUS_FAULTS = frozenset({"400", "401", "429", "500", "503"})
TRANSPORT_FAULTS = frozenset({"timeout", "malformed", "disconnect"})
CHAT_FAULTS = frozenset({"missing_id", "dup_id", "truncated", "bad_json_content"})
# What a client honouring retry-after-ms waits after a scripted 429 (Retry-After says 1 s).
FAULT_RETRY_AFTER_S = 0.2
# How long stop() waits for requests still being answered (a Whisper decode, say).
STOP_GRACE_S = 5.0

TRANSCRIPTION_RATE = 16_000
TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
UPLOAD_FORMATS = "['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']"
FRAME_S = 0.02
REGION_THRESHOLD_DB = -30.0  # relative to the loudest frames
SILENCE_FLOOR_DB = -60.0  # nothing quieter is ever voiced
MERGE_GAP_S = 0.5  # Whisper's VAD keeps pauses under half a second inside a segment
MIN_REGION_S = 0.15
MAX_REGION_S = 30.0
SHORT_REGION_S = 0.4  # shorter regions look like noise to Whisper: high no_speech_prob

SPEECH_RATE = 24_000
SPEECH_FORMATS = {"pcm": "audio/pcm", "wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg",
                  "opus": "audio/opus", "aac": "audio/aac"}
CHARS_PER_SECOND = 15.0
MIN_SPEECH_S = 0.3
SPEECH_DBFS = -18.0
SYLLABLES_PER_S = 4.0
MAX_SPEECH_INPUT = 4096

FIXED_REPLY = "Hola desde el servidor local."

# Whisper's names for the languages it knows, by ISO 639-1 code.
WHISPER_LANGUAGES = dict(pair.split(" ", 1) for pair in (
    "en english, zh chinese, de german, es spanish, ru russian, ko korean, fr french, ja japanese, "
    "pt portuguese, tr turkish, pl polish, ca catalan, nl dutch, ar arabic, sv swedish, it italian, "
    "id indonesian, hi hindi, fi finnish, vi vietnamese, he hebrew, uk ukrainian, el greek, "
    "ms malay, cs czech, ro romanian, da danish, hu hungarian, ta tamil, no norwegian, th thai, "
    "ur urdu, hr croatian, bg bulgarian, lt lithuanian, la latin, mi maori, ml malayalam, "
    "cy welsh, sk slovak, te telugu, fa persian, lv latvian, bn bengali, sr serbian, "
    "az azerbaijani, sl slovenian, kn kannada, et estonian, mk macedonian, br breton, eu basque, "
    "is icelandic, hy armenian, ne nepali, mn mongolian, bs bosnian, kk kazakh, sq albanian, "
    "sw swahili, gl galician, mr marathi, pa punjabi, si sinhala, km khmer, sn shona, yo yoruba, "
    "so somali, af afrikaans, oc occitan, ka georgian, be belarusian, tg tajik, sd sindhi, "
    "gu gujarati, am amharic, yi yiddish, lo lao, uz uzbek, fo faroese, ht haitian creole, "
    "ps pashto, tk turkmen, nn nynorsk, mt maltese, sa sanskrit, lb luxembourgish, my myanmar, "
    "bo tibetan, tl tagalog, mg malagasy, as assamese, tt tatar, haw hawaiian, ln lingala, "
    "ha hausa, ba bashkir, jw javanese, su sundanese, yue cantonese").split(", "))

SPANISH = dict(pair.split(":") for pair in (
    "the:el a:un an:un is:es are:son was:fue were:eran be:ser and:y or:o but:pero of:de to:a "
    "in:en on:en at:en for:para with:con from:desde about:sobre this:este that:que these:estos "
    "we:nosotros you:tú it:eso he:él she:ella they:ellos i:yo my:mi your:tu our:nuestro "
    "video:vídeo talk:charla today:hoy hello:hola welcome:bienvenidos thanks:gracias "
    "thank:gracias good:bueno morning:mañana everyone:todos how:cómo what:qué when:cuando "
    "where:dónde here:aquí there:allí very:muy not:no yes:sí now:ahora first:primero "
    "then:luego next:siguiente time:tiempo world:mundo people:gente language:idioma "
    "speech:discurso voice:voz sound:sonido music:música short:corto long:largo new:nuevo "
    "look:mirar watching:mirando day:día test:prueba example:ejemplo can:puede will:va "
    "have:tener has:tiene dubbed:doblado translated:traducido transcribed:transcrito").split())


# --- records, errors, responses -------------------------------------------------------------


@dataclass
class RequestRecord:
    """One request as the server saw it. ``status`` 0: the connection closed without an answer."""

    route: str
    started: float  # time.monotonic()
    finished: float = 0.0
    status: int = 0
    bytes_in: int = 0
    model: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # the parsed JSON of chat and speech requests


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json_response(obj: Any, status: int = 200) -> _Response:
    return _Response(status, json.dumps(obj, ensure_ascii=False).encode())


class ApiError(Exception):
    """An error answered with OpenAI's body: ``{"error": {message, type, param, code}}``."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}

    def response(self) -> _Response:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}
        return _Response(self.status, json.dumps(body).encode(), headers=dict(self.headers))


def _bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _missing(param: str) -> ApiError:
    return _bad_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def mask_key(key: str) -> str:
    """The key as OpenAI prints it in errors: ``sk-te****1234``, or only stars when short."""
    return f"{key[:5]}****{key[-4:]}" if len(key) >= 12 else "****"


def _unauthorized(authorization: str | None) -> ApiError:
    sent = (authorization or "").removeprefix("Bearer").strip()
    if not sent:
        return ApiError(401, "You didn't provide an API key. You need to provide your API key in an "
                             "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    return ApiError(401, f"Incorrect API key provided: {mask_key(sent)}. You can find your API key "
                         "at https://platform.openai.com/account/api-keys.", code="invalid_api_key")


def _retry_headers(wait_s: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait_s))), "retry-after-ms": str(math.ceil(wait_s * 1000))}


def _fault_error(kind: str, route: str, authorization: str | None) -> ApiError:
    if kind == "401":
        return _unauthorized(authorization)
    if kind == "429":
        return ApiError(429, f"Rate limit reached for requests per min (RPM) on {route}. Please try "
                             f"again in {format_duration(FAULT_RETRY_AFTER_S)}.", "requests",
                        code="rate_limit_exceeded", headers=_retry_headers(FAULT_RETRY_AFTER_S))
    if kind == "400":
        return _bad_request("The request was rejected (scripted 400 fault).")
    if kind == "503":
        return ApiError(503, "The engine is currently overloaded, please try again later.", "server_error")
    return ApiError(500, "The server had an error while processing your request. Sorry about that!",
                    "server_error")


def format_duration(seconds: float) -> str:
    """OpenAI's style for ``x-ratelimit-reset-*``: ``120ms``, ``1s``, ``8.64s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms" if seconds > 0 else "0s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    secs_text = f"{secs:.3f}".rstrip("0").rstrip(".")
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{secs_text}s"


# --- faults -----------------------------------------------------------------------------------


class Faults:
    """Misbehaviour to apply to the next requests, per route: scripted first, then random."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripted: dict[str, deque[str]] = {route: deque() for route in ROUTES}
        self._random: dict[str, dict[str, tuple[float, random.Random]]] = {route: {} for route in ROUTES}

    @staticmethod
    def _check(route: str, kind: str) -> None:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r} (one of {', '.join(ROUTES)})")
        if kind in CHAT_FAULTS and route != "chat":
            raise ValueError(f"fault {kind!r} applies to the chat route only")
        if kind not in STATUS_FAULTS | TRANSPORT_FAULTS | CHAT_FAULTS:
            raise ValueError(f"unknown fault {kind!r}")

    def push(self, route: str, *kinds: str) -> None:
        """The next ``len(kinds)`` requests on ``route`` get these faults, in order."""
        for kind in kinds:
            self._check(route, kind)
        with self._lock:
            self._scripted[route].extend(kinds)

    def rate(self, route: str, kind: str, probability: float, seed: int = 0) -> None:
        """Each request on ``route`` gets ``kind`` with ``probability`` (0 removes it)."""
        self._check(route, kind)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be within 0..1, not {probability}")
        with self._lock:
            if probability:
                self._random[route][kind] = (probability, random.Random(seed))
            else:
                self._random[route].pop(kind, None)

    def clear(self) -> None:
        with self._lock:
            for route in ROUTES:
                self._scripted[route].clear()
                self._random[route].clear()

    def take(self, route: str) -> str | None:
        """The fault for the request arriving now on ``route``, if any."""
        with self._lock:
            if self._scripted[route]:
                return self._scripted[route].popleft()
            for kind, (probability, rng) in self._random[route].items():
                if rng.random() < probability:
                    return kind
        return None


# --- rate limits ------------------------------------------------------------------------------


class _Bucket:
    """Up to ``per_minute`` units, refilled continuously, starting full; may go below zero."""

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.rate = per_minute / 60.0
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        return max(0.0, (amount - self.level) / self.rate)

    def until_full(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


class _Limits:
    """Requests- and tokens-per-minute buckets per route, and the headers that describe them."""

    def __init__(self, rpm: dict[str, int], tpm: dict[str, int]) -> None:
        self._per_minute = {"requests": rpm, "tokens": tpm}
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._buckets = {(route, kind): _Bucket(limits[route], now)
                             for kind, limits in self._per_minute.items()
                             for route in ROUTES if limits.get(route)}

    def _refilled(self, route: str) -> list[tuple[str, _Bucket]]:
        now = time.monotonic()
        found = [(kind, self._buckets[(route, kind)]) for kind in ("requests", "tokens")
                 if (route, kind) in self._buckets]
        for _, bucket in found:
            bucket.refill(now)
        return found

    def admit(self, route: str, tokens: int) -> None:
        """Take one request and ``tokens`` from the route's buckets, or raise a 429."""
        with self._lock:
            buckets = self._refilled(route)
            for kind, bucket in buckets:
                amount = 1 if kind == "requests" else tokens
                if bucket.level < amount:
                    raise self._limited(route, kind, bucket, amount)
            for kind, bucket in buckets:
                bucket.level -= 1 if kind == "requests" else tokens

    @staticmethod
    def _limited(route: str, kind: str, bucket: _Bucket, amount: int) -> ApiError:
        wait = bucket.wait_for(amount)
        unit = "RPM" if kind == "requests" else "TPM"
        used = math.ceil(bucket.capacity - bucket.level)
        return ApiError(429, f"Rate limit reached for {kind} per min ({unit}) on {route}: Limit "
                             f"{int(bucket.capacity)}, Used {used}, Requested {amount}. Please try "
                             f"again in {format_duration(wait)}.", kind, code="rate_limit_exceeded",
                        headers=_retry_headers(wait))

    def spend(self, route: str, tokens: int) -> None:
        """Charge tokens known only after answering (a completion's)."""
        with self._lock:
            bucket = self._buckets.get((route, "tokens"))
            if bucket:
                bucket.refill(time.monotonic())
                bucket.level -= tokens

    def headers(self, route: str) -> dict[str, str]:
        with self._lock:
            headers = {}
            for kind, bucket in self._refilled(route):
                headers[f"x-ratelimit-limit-{kind}"] = str(int(bucket.capacity))
                headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(bucket.level)))
                headers[f"x-ratelimit-reset-{kind}"] = format_duration(bucket.until_full())
            return headers


# --- transcription ----------------------------------------------------------------------------


@dataclass
class _Segment:
    start: float
    end: float
    text: str
    avg_logprob: float = -0.25
    compression_ratio: float = 1.4
    no_speech_prob: float = 0.01


def decode_audio(data: bytes, rate: int = TRANSCRIPTION_RATE) -> np.ndarray:
    """An uploaded file (any format FFmpeg reads) as float32 mono samples at ``rate``."""
    import av

    chunks: list[np.ndarray] = []
    with av.open(io.BytesIO(data)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(audio=0):
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def voiced_regions(audio: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """(start, end) seconds of the loud stretches of ``audio``, the way a VAD would cut speech.

    20 ms frames are voiced when their RMS is within 30 dB of the loudest frames, above
    -60 dBFS and 12 dB above the quietest tenth of the frames (a steady background); gaps
    under 0.5 s are bridged, regions under 0.15 s dropped, and regions over 30 s split
    evenly, as Whisper never emits longer segments.
    """
    frame = int(rate * FRAME_S)
    count = len(audio) // frame
    if count == 0:
        return []
    frames = np.asarray(audio[:count * frame], dtype=np.float64).reshape(count, frame)
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    ordered = np.sort(rms)
    loudest = ordered[-max(1, count // 50):].mean()
    # Steady background (room tone, hum) is not speech: stay 12 dB above the quietest tenth,
    # but never within 6 dB of the loudest frames (audio that is speech throughout).
    floor = ordered[count // 10]
    threshold = max(loudest * 10 ** (REGION_THRESHOLD_DB / 20), 10 ** (SILENCE_FLOOR_DB / 20),
                    min(floor * 4.0, loudest * 0.5))
    voiced = np.concatenate(([0], (rms > threshold).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(voiced))
    runs = [(start * FRAME_S, end * FRAME_S) for start, end in zip(edges[::2], edges[1::2])]
    merged: list[tuple[float, float]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] < MERGE_GAP_S:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [piece for start, end in merged if end - start >= MIN_REGION_S
            for piece in _split_region(start, end)]


def _split_region(start: float, end: float) -> list[tuple[float, float]]:
    pieces = math.ceil((end - start) / MAX_REGION_S)
    step = (end - start) / pieces
    return [(start + i * step, start + (i + 1) * step) for i in range(pieces)]


def _scripted_segment(line: str, start: float, end: float) -> _Segment:
    """A region labelled with a script line; a leading ``~`` or ``%`` makes it doubtful."""
    segment = _Segment(start, end, "")
    while line[:1] in ("~", "%"):
        if line[0] == "~":
            segment.avg_logprob = -1.4
        else:
            segment.compression_ratio = 2.8
        line = line[1:]
    segment.text = line.strip()
    if end - start < SHORT_REGION_S:
        segment.no_speech_prob = 0.8
    return segment


def _whisper_segments(audio: np.ndarray) -> list[_Segment]:
    """Segments from the bundled tiny.en model (loaded on first use, once per process).

    Whisper's timestamps come in 20 ms steps and the last one may overshoot the audio, so
    times are clamped to the upload's duration.
    """
    from videodub.builtin.transcribe_faster_whisper import BUNDLED, load_model

    model = load_model(BUNDLED, "int8", 2)
    segments, _info = model.transcribe(audio, language="en", vad_filter=True)
    duration = len(audio) / TRANSCRIPTION_RATE
    return [_Segment(min(s.start, duration), min(s.end, duration), s.text.strip(), s.avg_logprob,
                     s.compression_ratio, s.no_speech_prob)
            for s in segments if s.text.strip()]


def _language_name(value: str | None) -> str:
    """Whisper's name for the requested language ("es" -> "spanish"); English by default."""
    if not value:
        return "english"
    wanted = value.strip().lower()
    if wanted in WHISPER_LANGUAGES.values():
        return wanted
    code = wanted.replace("_", "-").split("-", 1)[0]
    if code not in WHISPER_LANGUAGES:
        raise _bad_request(f"Invalid language '{value}'. Language parameter must be specified in "
                           "ISO-639-1 format.", "language", "invalid_language_format")
    return WHISPER_LANGUAGES[code]


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _subtitles(segments: list[_Segment], vtt: bool) -> str:
    separator = "." if vtt else ","
    cues = [f"{_timestamp(s.start, separator)} --> {_timestamp(s.end, separator)}\n{s.text}\n"
            for s in segments]
    if vtt:
        return "WEBVTT\n\n" + "\n".join(cues)
    return "\n".join(f"{i}\n{cue}" for i, cue in enumerate(cues, 1))


def _verbose_segment(index: int, segment: _Segment) -> dict[str, Any]:
    return {"id": index, "seek": int(segment.start // 30) * 3000, "start": round(segment.start, 2),
            "end": round(segment.end, 2), "text": " " + segment.text, "tokens": [],
            "temperature": 0.0, "avg_logprob": segment.avg_logprob,
            "compression_ratio": segment.compression_ratio, "no_speech_prob": segment.no_speech_prob}


def _words(segment: _Segment) -> list[dict[str, Any]]:
    """Word timings spread evenly over the segment (regions carry no finer timing)."""
    words = segment.text.split()
    step = (segment.end - segment.start) / max(1, len(words))
    return [{"word": word, "start": round(segment.start + i * step, 2),
             "end": round(segment.start + (i + 1) * step, 2)} for i, word in enumerate(words)]


def _transcript_response(fmt: str, segments: list[_Segment], duration: float, language: str,
                         granularities: list[str]) -> _Response:
    text = " ".join(s.text for s in segments)
    if fmt == "json":
        return _json_response({"text": text})
    if fmt in ("srt", "vtt"):
        return _Response(200, _subtitles(segments, fmt == "vtt").encode(), "text/plain; charset=utf-8")
    if fmt == "text":
        return _Response(200, (text + "\n").encode(), "text/plain; charset=utf-8")
    body: dict[str, Any] = {"task": "transcribe", "language": language, "duration": round(duration, 2),
                            "text": text}
    if not granularities or "segment" in granularities:
        body["segments"] = [_verbose_segment(i, s) for i, s in enumerate(segments)]
    if "word" in granularities:
        body["words"] = [word for s in segments for word in _words(s)]
    return _json_response(body)


# --- multipart --------------------------------------------------------------------------------


@dataclass
class _Part:
    data: bytes
    filename: str | None


class _Form:
    """The fields of a multipart/form-data body, by name (a name may repeat)."""

    def __init__(self, body: bytes, content_type: str) -> None:
        header = Message()
        header["content-type"] = content_type
        boundary = header.get_param("boundary")
        if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
            raise _bad_request(f"Invalid Content-Type header ({content_type}), expected multipart/form-data.")
        self.fields: dict[str, list[_Part]] = {}
        for chunk in body.split(b"--" + boundary.encode())[1:]:
            if chunk.startswith(b"--"):
                break
            head, found, data = chunk.partition(b"\r\n\r\n")
            if found:
                self._add(head, data.removesuffix(b"\r\n"))

    def _add(self, head: bytes, data: bytes) -> None:
        headers = BytesHeaderParser().parsebytes(head.strip() + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        if isinstance(name, str):
            self.fields.setdefault(name, []).append(_Part(data, headers.get_filename()))

    def text(self, name: str) -> str | None:
        parts = self.fields.get(name)
        return parts[0].data.decode("utf-8", "replace") if parts else None

    def texts(self, name: str) -> list[str]:
        return [part.data.decode("utf-8", "replace") for part in self.fields.get(name, [])]

    def file(self, name: str) -> bytes | None:
        parts = self.fields.get(name)
        return parts[0].data if parts else None


# --- chat -------------------------------------------------------------------------------------


def _translate_word(match: re.Match[str]) -> str:
    word = match.group(0)
    spanish = SPANISH.get(word.lower())
    if spanish is None:
        return word
    if word.isupper() and len(word) > 1:
        return spanish.upper()
    return spanish[0].upper() + spanish[1:] if word[0].isupper() else spanish


def translate(text: str, max_chars: int | None = None) -> str:
    """English -> "Spanish", word by word from a small dictionary, keeping punctuation and case.

    With ``max_chars``, trailing words are dropped until the result fits (one word always stays).
    """
    result = re.sub(r"[^\W\d_]+(?:'[^\W\d_]+)*", _translate_word, text)
    if max_chars is None or len(result) <= max_chars:
        return result
    words = result.split()
    while len(words) > 1 and len(" ".join(words)) > max_chars:
        words.pop()
    return " ".join(words)


def _message_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def prompt_tokens(messages: Any) -> int:
    """The estimate used for usage and tokens-per-minute: a token per 4 characters of content."""
    if not isinstance(messages, list):
        return 0
    return math.ceil(sum(len(_message_text(m)) for m in messages) / 4)


def _lines(messages: list[Any]) -> list[dict[str, Any]] | None:
    """The ``lines`` of the last user message when its content is JSON that has them."""
    user = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not user:
        return None
    try:
        parsed = json.loads(_message_text(user[-1]))
    except ValueError:
        return None
    lines = parsed.get("lines") if isinstance(parsed, dict) else None
    if not isinstance(lines, list):
        return None
    return [line for line in lines
            if isinstance(line, dict) and "id" in line and isinstance(line.get("text"), str)]


def _array_key(response_format: Any) -> str | None:
    """The key structured content goes under: the schema's first array property, or None."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return "translations"
    if response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema") or {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        if kind == "array" or (isinstance(kind, list) and "array" in kind):
            return name
    return "translations"


def _translations(lines: list[dict[str, Any]], fault: str | None) -> list[dict[str, Any]]:
    items = []
    for line in lines:
        max_chars = line.get("max_chars")
        limit = max_chars if isinstance(max_chars, int) and max_chars > 0 else None
        items.append({"id": line["id"], "text": translate(line["text"], limit)})
    middle = len(items) // 2
    if fault == "missing_id" and items:
        del items[middle]
    elif fault == "dup_id" and items:
        items.insert(middle, dict(items[middle]))
    return items


def _chat_content(lines: list[dict[str, Any]] | None, response_format: Any, fault: str | None) -> str:
    key = _array_key(response_format)
    if lines is None and key is None:
        content = FIXED_REPLY
    else:
        content = json.dumps({key or "translations": _translations(lines or [], fault)}, ensure_ascii=False)
    if fault == "truncated":
        return content[:len(content) // 2]
    if fault == "bad_json_content":
        return f"Sure! Here is the JSON you asked for:\n{content}"
    return content


# --- speech -----------------------------------------------------------------------------------


def _voice_pitch(voice: str) -> float:
    """A fixed pitch per voice name, 110-150 Hz."""
    return 110.0 + zlib.crc32(voice.encode()) % 41


def _smooth(signal: np.ndarray, width: int) -> np.ndarray:
    """A centred moving average (linear in the length, unlike a convolution)."""
    sums = np.cumsum(np.concatenate((np.zeros(width // 2 + 1), signal, np.zeros(width - width // 2))))
    return (sums[width:] - sums[:-width])[:len(signal)] / width


def synthesize_speech(text: str, speed: float = 1.0, voice: str = "alloy") -> np.ndarray:
    """A speech-like int16 signal at 24 kHz lasting ``max(0.3, len(text) / 15) / speed`` seconds.

    A harmonic tone with a slow vibrato, gated off at spaces and punctuation and shaped by a
    syllable-rate envelope, at about -18 dBFS RMS where voiced. The same input gives the same
    samples.
    """
    duration = max(MIN_SPEECH_S, len(text) / CHARS_PER_SECOND) / speed
    t = np.arange(round(duration * SPEECH_RATE)) / SPEECH_RATE
    frequency = _voice_pitch(voice) * (1 + 0.04 * np.sin(2 * np.pi * 0.8 * t))
    phase = 2 * np.pi * np.cumsum(frequency) / SPEECH_RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 6))
    voiced_chars = np.array([ch.isalnum() for ch in text] or [True])
    if not voiced_chars.any():
        voiced_chars[:] = True
    index = np.minimum((t / duration * len(voiced_chars)).astype(int), len(voiced_chars) - 1)
    gate = _smooth(voiced_chars[index].astype(np.float64), int(0.01 * SPEECH_RATE))
    syllables = 0.55 + 0.45 * np.sin(np.pi * SYLLABLES_PER_S * speed * t) ** 2
    signal = tone * gate * syllables
    loud = signal[gate > 0.5]
    rms = np.sqrt(np.mean(loud ** 2)) if loud.size else 1.0
    signal *= 10 ** (SPEECH_DBFS / 20) / max(rms, 1e-9)
    return (np.clip(signal, -1.0, 1.0) * 32767).astype(np.int16)


def _encode_compressed(pcm: np.ndarray, fmt: str) -> bytes:
    import av

    container_format, codec = {"mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus"),
                               "aac": ("adts", "aac")}[fmt]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=SPEECH_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SPEECH_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


def encode_speech(pcm: np.ndarray, fmt: str) -> bytes:
    """24 kHz mono int16 samples as a ``response_format`` of the speech route."""
    if fmt == "pcm":
        return pcm.astype("<i2").tobytes()
    if fmt in ("wav", "flac"):
        import soundfile

        buffer = io.BytesIO()
        soundfile.write(buffer, pcm, SPEECH_RATE, format=fmt.upper(), subtype="PCM_16")
        return buffer.getvalue()
    return _encode_compressed(pcm, fmt)


def _speed(payload: dict[str, Any]) -> float:
    speed = payload.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise _bad_request("Invalid type for 'speed': expected a decimal.", "speed", "invalid_type")
    if speed < 0.25:
        raise _bad_request(f"Invalid 'speed': decimal below minimum value. Expected a value >= 0.25, "
                           f"but got {speed} instead.", "speed", "decimal_below_min_value")
    if speed > 4.0:
        raise _bad_request(f"Invalid 'speed': decimal above maximum value. Expected a value <= 4, "
                           f"but got {speed} instead.", "speed", "decimal_above_max_value")
    return float(speed)


def _voice(payload: dict[str, Any]) -> str:
    voice = payload.get("voice")
    if isinstance(voice, dict):
        voice = voice.get("id")
    if not isinstance(voice, str) or not voice:
        raise _missing("voice")
    return voice


# --- the server -------------------------------------------------------------------------------


@dataclass
class _Request:
    route: str
    path_arg: str | None  # the model id of GET /models/{id}
    content_type: str
    body: bytes
    fault: str | None


def _empty_stats() -> dict[str, Any]:
    return {"requests": 0, "status": {}, "max_in_flight": 0, "bytes_in": 0, "tokens_in": 0,
            "tokens_out": 0, "chars": 0, "audio_s": 0.0}


USAGE_KEYS = ("tokens_in", "tokens_out", "chars", "audio_s")


def _check_routes(name: str, values: dict[str, Any] | None) -> dict[str, Any]:
    values = dict(values or {})
    unknown = set(values) - set(ROUTES)
    if unknown:
        raise ValueError(f"{name}: unknown route(s) {sorted(unknown)} (routes: {', '.join(ROUTES)})")
    negative = sorted(route for route, value in values.items() if value < 0)
    if negative:
        raise ValueError(f"{name}: negative value for {', '.join(negative)}")
    return values


class LoopbackServer:
    """The server; ``start()`` it (or use ``with``) and point a client at ``base_url``.

    - ``api_key``: when set, requests must send ``Authorization: Bearer <key>`` (else 401);
    - ``latency``: seconds added to every request, by route;
    - ``rpm`` / ``tpm``: requests and tokens per minute, by route (absent or 0: unlimited);
      chat charges its estimated prompt tokens up front and its completion after answering;
    - ``rate_headers``: send ``x-ratelimit-*`` headers on limited routes;
    - ``models``: the ids served (others answer 404 ``model_not_found``);
    - ``script``: the text of transcription segments, cycled; ``~`` / ``%`` mark doubtful lines;
    - ``transcriber``: ``regions`` (energy-based, instant) or ``whisper`` (bundled tiny.en);
    - ``max_upload_bytes``: larger transcription uploads answer 413;
    - ``hang_s``: how long a ``timeout`` fault stalls before answering;
    - ``host`` / ``port``: where to listen (port 0 picks a free one).

    Route names, for these knobs and for ``faults``: models, transcriptions, chat, speech.
    """

    def __init__(self, api_key: str | None = None, latency: dict[str, float] | None = None,
                 rpm: dict[str, int] | None = None, tpm: dict[str, int] | None = None,
                 rate_headers: bool = True, models: list[str] | None = None,
                 script: list[str] | None = None, transcriber: str = "regions",
                 max_upload_bytes: int = OPENAI_UPLOAD_LIMIT, hang_s: float = 30.0,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if transcriber not in ("regions", "whisper"):
            raise ValueError(f"transcriber must be 'regions' or 'whisper', not {transcriber!r}")
        if script is not None and not script:
            raise ValueError("script needs at least one line")
        self.api_key = api_key
        self.latency = _check_routes("latency", latency)
        self.rate_headers = rate_headers
        self.models = list(models if models is not None else DEFAULT_MODELS)
        self.script = list(script or DEFAULT_SCRIPT)
        self.transcriber = transcriber
        self.max_upload_bytes = max_upload_bytes
        self.hang_s = hang_s
        self.host, self.port = host, port
        self.base_url = ""
        self.faults = Faults()
        self._limits = _Limits(_check_routes("rpm", rpm), _check_routes("tpm", tpm))
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._in_flight = dict.fromkeys(ROUTES, 0)
        self._stats = {route: _empty_stats() for route in ROUTES}
        self._records: list[RequestRecord] = []
        self._completion_ids = itertools.count(1)
        self._handlers: dict[str, Callable[[_Request, RequestRecord], _Response]] = {
            "models": self._models, "transcriptions": self._transcriptions, "chat": self._chat,
            "speech": self._speech}

    # lifecycle

    def start(self) -> str:
        """Listen and serve from a background thread; returns ``base_url``."""
        if self._httpd is not None:
            raise RuntimeError("the loopback server is already running")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.loopback = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="loopback-server", daemon=True)
        self._thread.start()
        host, port = httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}/v1"
        return self.base_url

    def stop(self) -> None:
        """Stop listening, drop open connections and end stalled requests; idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._idle:
            self._idle.wait_for(lambda: not any(self._in_flight.values()), timeout=STOP_GRACE_S)
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # observations

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters per route.

        ``requests``; ``status``: counts by status code (``"0"``: closed without answering);
        ``max_in_flight``: peak concurrent requests; ``bytes_in``: request bodies;
        ``tokens_in`` / ``tokens_out``: chat usage; ``chars``: speech input; ``audio_s``:
        seconds decoded (transcriptions) or produced (speech).
        """
        with self._lock:
            return {route: {**s, "status": dict(s["status"])} for route, s in self._stats.items()}

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def reset(self) -> None:
        """Forget stats, records, faults and rate-limit usage."""
        with self._lock:
            self._stats = {route: _empty_stats() for route in ROUTES}
            self._records = []
        self.faults.clear()
        self._limits.reset()

    # bookkeeping used by the handler

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _begin(self, route: str) -> RequestRecord:
        with self._lock:
            self._in_flight[route] += 1
            stats = self._stats[route]
            stats["max_in_flight"] = max(stats["max_in_flight"], self._in_flight[route])
        return RequestRecord(route=route, started=time.monotonic())

    def _finish(self, record: RequestRecord) -> None:
        record.finished = time.monotonic()
        with self._idle:
            self._in_flight[record.route] -= 1
            stats = self._stats[record.route]
            stats["requests"] += 1
            stats["status"][str(record.status)] = stats["status"].get(str(record.status), 0) + 1
            stats["bytes_in"] += record.bytes_in
            for key in USAGE_KEYS:
                stats[key] += record.detail.get(key, 0)
            self._records.append(record)
            self._idle.notify_all()

    def _pause(self, seconds: float) -> bool:
        """Sleep unless stopped; True when the server is stopping."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()

    def _authorize(self, authorization: str | None) -> None:
        if self.api_key and authorization != f"Bearer {self.api_key}":
            raise _unauthorized(authorization)

    def _answer(self, request: _Request, record: RequestRecord, tokens: int) -> _Response:
        self._limits.admit(request.route, tokens)
        return self._handlers[request.route](request, record)

    def _limit_headers(self, route: str) -> dict[str, str]:
        return self._limits.headers(route) if self.rate_headers else {}

    def _check_model(self, model: Any) -> str:
        if not isinstance(model, str) or not model:
            raise _missing("model")
        if model not in self.models:
            raise ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                           code="model_not_found")
        return model

    # routes

    def _models(self, request: _Request, record: RequestRecord) -> _Response:
        if request.path_arg is None:
            return _json_response({"object": "list", "data": [_model_object(m) for m in self.models]})
        record.model = request.path_arg
        return _json_response(_model_object(self._check_model(request.path_arg)))

    def _transcriptions(self, request: _Request, record: RequestRecord) -> _Response:
        form = _Form(request.body, request.content_type)
        record.model = form.text("model")
        model = self._check_model(record.model)
        upload = form.file("file")
        if upload is None:
            raise _missing("file")
        fmt = form.text("response_format") or "json"
        if fmt not in TRANSCRIPT_FORMATS:
            raise _bad_request(f"Invalid value for 'response_format': '{fmt}'. Supported values are: "
                               f"{', '.join(TRANSCRIPT_FORMATS)}.", "response_format", "invalid_value")
        if model.startswith("gpt-4o") and fmt not in ("json", "text"):
            raise _bad_request(f"response_format '{fmt}' is not compatible with model '{model}'. Use "
                               "'json' or 'text' instead.", "response_format", "unsupported_value")
        language = _language_name(form.text("language"))
        audio = self._decode(upload)
        segments = self._transcribe(audio)
        duration = len(audio) / TRANSCRIPTION_RATE
        record.detail.update(response_format=fmt, language=language, prompt=form.text("prompt"),
                             segments=len(segments), audio_s=duration)
        return _transcript_response(fmt, segments, duration, language,
                                    form.texts("timestamp_granularities[]"))

    @staticmethod
    def _decode(upload: bytes) -> np.ndarray:
        import av

        try:
            return decode_audio(upload)
        except (av.FFmpegError, ValueError) as exc:
            raise _bad_request(f"Invalid file format. Supported formats: {UPLOAD_FORMATS}",
                               "file", "invalid_value") from exc

    def _transcribe(self, audio: np.ndarray) -> list[_Segment]:
        if self.transcriber == "whisper":
            return _whisper_segments(audio)
        return [_scripted_segment(self.script[k % len(self.script)], start, end)
                for k, (start, end) in enumerate(voiced_regions(audio, TRANSCRIPTION_RATE))]

    def _chat(self, request: _Request, record: RequestRecord) -> _Response:
        payload = _json_payload(request.body)
        record.model, record.body = payload.get("model"), payload
        model = self._check_model(record.model)
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _missing("messages")
        if payload.get("stream"):
            raise _bad_request("Streaming is not supported by this server.", "stream", "unsupported_value")
        lines = _lines(messages)
        content = _chat_content(lines, payload.get("response_format"), request.fault)
        usage = {"prompt_tokens": prompt_tokens(messages), "completion_tokens": math.ceil(len(content) / 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        self._limits.spend("chat", usage["completion_tokens"])
        record.detail.update(lines=None if lines is None else len(lines),
                             tokens_in=usage["prompt_tokens"], tokens_out=usage["completion_tokens"])
        finish_reason = "length" if request.fault == "truncated" else "stop"
        return _json_response({
            "id": f"chatcmpl-loopback{next(self._completion_ids)}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                         "logprobs": None, "finish_reason": finish_reason}],
            "usage": usage})

    def _speech(self, request: _Request, record: RequestRecord) -> _Response:
        payload = _json_payload(request.body)
        record.model, record.body = payload.get("model"), payload
        model = self._check_model(record.model)
        text = payload.get("input")
        if not isinstance(text, str) or not text:
            raise _missing("input")
        if len(text) > MAX_SPEECH_INPUT:
            raise _bad_request(f"Invalid 'input': string too long. Expected a string with maximum length "
                               f"{MAX_SPEECH_INPUT}, but got a string with length {len(text)} instead.",
                               "input", "string_above_max_length")
        voice, speed = _voice(payload), _speed(payload)
        if payload.get("instructions") and model.startswith("tts-1"):
            raise _bad_request(f"Instructions are not supported with model '{model}'; use gpt-4o-mini-tts.",
                               "instructions", "unsupported_parameter")
        fmt = payload.get("response_format", "mp3")
        if fmt not in SPEECH_FORMATS:
            raise _bad_request(f"Invalid value for 'response_format': '{fmt}'. Supported values are: "
                               f"{', '.join(SPEECH_FORMATS)}.", "response_format", "invalid_value")
        pcm = synthesize_speech(text, speed, voice)
        record.detail.update(voice=voice, speed=speed, response_format=fmt, chars=len(text),
                             audio_s=len(pcm) / SPEECH_RATE)
        return _Response(200, encode_speech(pcm, fmt), SPEECH_FORMATS[fmt])


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "loopback"}


def _json_payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise _bad_request("We could not parse the JSON body of your request. The OpenAI API expects "
                           "a JSON payload, but what was sent was not valid JSON.")
    return payload


def _estimated_tokens(route: str, body: bytes) -> int:
    """What a request charges against tokens per minute before it is answered."""
    if route != "chat":
        return 0
    try:
        payload = json.loads(body)
    except ValueError:
        return 0
    return prompt_tokens(payload.get("messages")) if isinstance(payload, dict) else 0


def _route_of(method: str, path: str) -> tuple[str | None, str | None]:
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


@dataclass
class _Body:
    data: bytes | None  # None: over the size limit (drained, not kept)
    size: int


class _Dropped(Exception):
    """Close the connection without answering."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    loopback: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up are normal here; only report real failures."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _HTTPServer

    def version_string(self) -> str:
        return "videodub-loopback"

    def setup(self) -> None:
        super().setup()
        self.server.loopback._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.loopback._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and benchmarks read stats() instead of a log."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        loopback = self.server.loopback
        path = urlsplit(self.path).path.rstrip("/")
        route, path_arg = _route_of(method, path)
        if route is None:
            self._read_body(None)
            self._send(ApiError(404, f"Invalid URL ({method} {path})").response())
            return
        record = loopback._begin(route)
        response: _Response | None = None
        try:
            response = self._exchange(loopback, route, path_arg, record)
        except (_Dropped, OSError):  # told to drop it, or the client went away
            pass
        except Exception as exc:  # noqa: BLE001 - a bug must answer 500, not hang the client
            # The body may be half read: answer, then close ("Connection: close" does both).
            response = ApiError(500, f"The server had an error while processing your request "
                                     f"({type(exc).__name__}: {exc}).", "server_error",
                                headers={"Connection": "close"}).response()
        if response is None:
            self.close_connection = True
        else:
            response.headers.update(loopback._limit_headers(route))
            record.status = response.status
        # Counted before the answer leaves, so a client that reads stats() next sees this request.
        loopback._finish(record)
        if response is not None:
            self._send(response)

    def _exchange(self, loopback: LoopbackServer, route: str, path_arg: str | None,
                  record: RequestRecord) -> _Response:
        body = self._read_body(loopback.max_upload_bytes if route == "transcriptions" else None)
        record.bytes_in = body.size
        if loopback._pause(loopback.latency.get(route, 0.0)):
            raise _Dropped
        try:
            loopback._authorize(self.headers.get("Authorization"))
            if body.data is None:
                raise ApiError(413, f"Maximum content size limit ({loopback.max_upload_bytes}) exceeded "
                                    f"({body.size} bytes read)", "server_error")
            fault = loopback.faults.take(route)
            if fault:
                record.detail["fault"] = fault
            early = self._early_fault(loopback, route, fault)
            if early is not None:
                return early
            request = _Request(route, path_arg, self.headers.get("Content-Type", ""), body.data, fault)
            return loopback._answer(request, record, _estimated_tokens(route, body.data))
        except ApiError as err:
            return err.response()

    def _early_fault(self, loopback: LoopbackServer, route: str, fault: str | None) -> _Response | None:
        """Apply a fault that replaces the answer; None lets the request go on."""
        if fault in STATUS_FAULTS:
            raise _fault_error(fault, route, self.headers.get("Authorization"))
        if fault == "disconnect" or (fault == "timeout" and loopback._pause(loopback.hang_s)):
            raise _Dropped
        if fault == "malformed":
            return _Response(200, b'<html><body>502 Bad Gateway</body></html>\n{"id": "')
        return None

    def _body_chunks(self) -> Iterator[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while size := int(self.rfile.readline().split(b";")[0], 16):
                yield self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                raise ConnectionResetError("the client closed the connection mid-body")
            remaining -= len(chunk)
            yield chunk

    def _read_body(self, limit: int | None) -> _Body:
        """The request body, or only its size once it passes ``limit`` (read to the end either way)."""
        kept: list[bytes] | None = []
        size = 0
        for chunk in self._body_chunks():
            size += len(chunk)
            if kept is not None and limit is not None and size > limit:
                kept = None
            if kept is not None:
                kept.append(chunk)
        return _Body(b"".join(kept) if kept is not None else None, size)

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)


# --- command line -----------------------------------------------------------------------------


def _route_value(cast: Callable[[str], Any]) -> Callable[[str], tuple[str, Any]]:
    def parse(text: str) -> tuple[str, Any]:
        route, found, value = text.partition("=")
        if not found or route not in ROUTES:
            raise argparse.ArgumentTypeError(f"expected ROUTE=VALUE with ROUTE one of {', '.join(ROUTES)}")
        try:
            return route, cast(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{value!r} is not a valid {cast.__name__}") from exc
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m videodub.loopback",
        description="Serve an OpenAI-compatible API on this machine (models, transcriptions, chat, "
                    "speech) with deterministic answers. Prints the base URL; Ctrl-C stops it.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--latency", action="append", type=_route_value(float), default=[],
                        metavar="ROUTE=SECONDS", help="added to every request on ROUTE (repeatable)")
    parser.add_argument("--rpm", action="append", type=_route_value(int), default=[],
                        metavar="ROUTE=N", help="requests per minute on ROUTE (repeatable)")
    parser.add_argument("--tpm", action="append", type=_route_value(int), default=[],
                        metavar="ROUTE=N", help="tokens per minute on ROUTE (repeatable)")
    parser.add_argument("--api-key-env", metavar="NAME",
                        help="require the API key held in environment variable NAME")
    parser.add_argument("--transcriber", choices=("regions", "whisper"), default="regions")
    args = parser.parse_args(argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            parser.error(f"environment variable {args.api_key_env} is not set")
    server = LoopbackServer(api_key=api_key, latency=dict(args.latency), rpm=dict(args.rpm),
                            tpm=dict(args.tpm), transcriber=args.transcriber, host=args.host,
                            port=args.port)
    try:
        print(server.start(), flush=True)
    except OSError as exc:
        parser.exit(1, f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
