"""How the loopback server goes wrong: OpenAI's error bodies, and the faults a caller schedules
per route (scripted in order, or at random with a seed)."""

from __future__ import annotations

import json
import math
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

ROUTES = ("models", "transcriptions", "chat", "speech")

# Errors whose message repeats the request's Authorization header, key and all, as a
# misbehaving proxy or gateway might: a client must mask the key wherever it shows the message.
KEY_ECHO_FAULTS = frozenset({"400_echo_key", "500_echo_key"})
STATUS_FAULTS = frozenset({"400", "401", "429", "500", "503"}) | KEY_ECHO_FAULTS
TRANSPORT_FAULTS = frozenset({"timeout", "malformed", "disconnect"})
CHAT_FAULTS = frozenset({"missing_id", "dup_id", "truncated", "bad_json_content"})
TRANSCRIPTION_FAULTS = frozenset({"bad_segments"})
# What a client honouring retry-after-ms waits after a scripted 429 by default (the server's
# ``retry_after_s``); Retry-After says the same rounded up to whole seconds, at least 1.
FAULT_RETRY_AFTER_S = 0.2


@dataclass
class Response:
    """An answer ready to send."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False).encode())


class ApiError(Exception):
    """An error answered with OpenAI's body: ``{"error": {message, type, param, code}}``."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type_
        self.param, self.code = param, code
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}
        return Response(self.status, json.dumps(body).encode(), headers=dict(self.headers))


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def missing(param: str) -> ApiError:
    return bad_request(f"Missing required parameter: '{param}'.", param,
                       "missing_required_parameter")


def mask_key(key: str) -> str:
    """The key as OpenAI prints it in errors: ``sk-te****1234``, or only stars when short."""
    return f"{key[:5]}****{key[-4:]}" if len(key) >= 12 else "****"


def unauthorized(authorization: str | None) -> ApiError:
    sent = (authorization or "").removeprefix("Bearer").strip()
    if not sent:
        return ApiError(401, "You didn't provide an API key. You need to provide your API key in "
                             "an Authorization header using Bearer auth (i.e. Authorization: "
                             "Bearer YOUR_KEY).")
    return ApiError(401, f"Incorrect API key provided: {mask_key(sent)}. You can find your API "
                         "key at https://platform.openai.com/account/api-keys.",
                    code="invalid_api_key")


def retry_headers(wait_s: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait_s))),
            "retry-after-ms": str(math.ceil(wait_s * 1000))}


def format_duration(seconds: float) -> str:
    """OpenAI's style for ``x-ratelimit-reset-*``: ``120ms``, ``1s``, ``8.64s``, ``6m0s``,
    ``1h2m3s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms" if seconds > 0 else "0s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    secs_text = f"{secs:.3f}".rstrip("0").rstrip(".")
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") \
        + f"{secs_text}s"


def fault_error(kind: str, route: str, authorization: str | None,
                retry_after_s: float = FAULT_RETRY_AFTER_S) -> ApiError:
    """The error a status fault answers with, worded as OpenAI words it (a ``429`` asks the
    client to wait ``retry_after_s``)."""
    if kind == "401":
        return unauthorized(authorization)
    if kind == "429":
        return ApiError(429, f"Rate limit reached for requests per min (RPM) on {route}. Please "
                             f"try again in {format_duration(retry_after_s)}.", "requests",
                        code="rate_limit_exceeded", headers=retry_headers(retry_after_s))
    if kind in KEY_ECHO_FAULTS:
        sent = f"'Authorization: {authorization}'" if authorization else "no Authorization"
        if kind == "400_echo_key":
            return bad_request(f"The gateway could not forward a request with {sent} "
                               "(scripted 400_echo_key fault).")
        return ApiError(500, f"The gateway lost the upstream connection for a request with "
                             f"{sent} (scripted 500_echo_key fault).", "server_error")
    if kind == "400":
        return bad_request("The request was rejected (scripted 400 fault).")
    if kind == "503":
        return ApiError(503, "The engine is currently overloaded, please try again later.",
                        "server_error")
    return ApiError(500, "The server had an error while processing your request. Sorry about "
                         "that!", "server_error")


class Faults:
    """Misbehaviour to apply to the next requests, per route: scripted first, then random.

    Status faults (``400``, ``401``, ``429``, ``500``, ``503``) answer OpenAI's error
    (``429`` with the server's ``retry_after_s``); ``400_echo_key`` and ``500_echo_key`` answer
    a 400 or a 500 whose message repeats the request's ``Authorization`` header, key and all;
    ``timeout`` stalls for the server's ``hang_s``, ``malformed`` answers a non-JSON body,
    ``disconnect`` closes the connection unanswered; chat only: ``missing_id`` and ``dup_id``
    drop or repeat a translation, ``truncated`` cuts the content off
    (``finish_reason="length"``), ``bad_json_content`` wraps it in prose; transcriptions only:
    ``bad_segments`` answers JSON whose segments have no times.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripted: dict[str, deque[str]] = {route: deque() for route in ROUTES}
        self._random: dict[str, dict[str, tuple[float, random.Random]]] = {
            route: {} for route in ROUTES}

    @staticmethod
    def _check(route: str, kind: str) -> None:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r} (one of {', '.join(ROUTES)})")
        if kind in CHAT_FAULTS and route != "chat":
            raise ValueError(f"fault {kind!r} applies to the chat route only")
        if kind in TRANSCRIPTION_FAULTS and route != "transcriptions":
            raise ValueError(f"fault {kind!r} applies to the transcriptions route only")
        if kind not in STATUS_FAULTS | TRANSPORT_FAULTS | CHAT_FAULTS | TRANSCRIPTION_FAULTS:
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
