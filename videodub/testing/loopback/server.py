"""The loopback server itself: its settings, its lifecycle on a background thread, and what it
observed (every request recorded, counters per route)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Self

from videodub.testing.loopback.faults import (
    FAULT_RETRY_AFTER_S,
    ROUTES,
    Faults,
    Response,
    unauthorized,
)
from videodub.testing.loopback.handler import HTTPServer
from videodub.testing.loopback.limits import Limits
from videodub.testing.loopback.routes import Request, Routes

DEFAULT_MODELS = ["whisper-1", "gpt-4o-mini", "gpt-4.1-mini", "tts-1", "tts-1-hd",
                  "gpt-4o-mini-tts", "gpt-4o-transcribe"]
DEFAULT_SCRIPT = [
    "Hello and welcome to this short talk.",
    "Today we look at how a video is dubbed.",
    "First the speech is transcribed, then it is translated.",
    "Thank you for watching.",
]
OPENAI_UPLOAD_LIMIT = 26_214_400
# How long stop() waits for requests still being answered (a Whisper decode, say).
STOP_GRACE_S = 5.0
USAGE_KEYS = ("tokens_in", "tokens_out", "chars", "audio_s")


@dataclass
class RequestRecord:
    """One request as the server saw it. ``status`` 0: the connection closed without an
    answer."""

    route: str
    started: float  # time.monotonic()
    finished: float = 0.0
    status: int = 0
    bytes_in: int = 0
    model: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # the parsed JSON of chat and speech requests
    # The Authorization header as it arrived (None: the request sent none).
    authorization: str | None = None


def _empty_stats() -> dict[str, Any]:
    return {"requests": 0, "status": {}, "max_in_flight": 0, "bytes_in": 0, "tokens_in": 0,
            "tokens_out": 0, "chars": 0, "audio_s": 0.0}


def _check_routes(name: str, values: dict[str, Any] | None) -> dict[str, Any]:
    values = dict(values or {})
    unknown = set(values) - set(ROUTES)
    if unknown:
        raise ValueError(f"{name}: unknown route(s) {sorted(unknown)} "
                         f"(routes: {', '.join(ROUTES)})")
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
    - ``retry_after_s``: how long a ``429`` fault asks the client to wait (``retry-after-ms``;
      ``Retry-After`` rounds it up to whole seconds);
    - ``host`` / ``port``: where to listen (port 0 picks a free one).

    Route names, for these knobs and for ``faults``: models, transcriptions, chat, speech.
    """

    def __init__(self, api_key: str | None = None, latency: dict[str, float] | None = None,
                 rpm: dict[str, int] | None = None, tpm: dict[str, int] | None = None,
                 rate_headers: bool = True, models: list[str] | None = None,
                 script: list[str] | None = None, transcriber: str = "regions",
                 max_upload_bytes: int = OPENAI_UPLOAD_LIMIT, hang_s: float = 30.0,
                 retry_after_s: float = FAULT_RETRY_AFTER_S,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if transcriber not in ("regions", "whisper"):
            raise ValueError(f"transcriber must be 'regions' or 'whisper', not {transcriber!r}")
        if script is not None and not script:
            raise ValueError("script needs at least one line")
        if retry_after_s < 0:
            raise ValueError(f"retry_after_s must be >= 0, not {retry_after_s}")
        self.api_key = api_key
        self.latency = _check_routes("latency", latency)
        self.rate_headers = rate_headers
        self.models = list(models if models is not None else DEFAULT_MODELS)
        self.script = list(script or DEFAULT_SCRIPT)
        self.transcriber = transcriber
        self.max_upload_bytes = max_upload_bytes
        self.hang_s = hang_s
        self.retry_after_s = retry_after_s
        self.host, self.port = host, port
        self.base_url = ""
        self.faults = Faults()
        self._limits = Limits(_check_routes("rpm", rpm), _check_routes("tpm", tpm))
        self._routes = Routes(self)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._in_flight = dict.fromkeys(ROUTES, 0)
        self._stats = {route: _empty_stats() for route in ROUTES}
        self._records: list[RequestRecord] = []

    # lifecycle

    def start(self) -> str:
        """Listen and serve from a background thread; returns ``base_url``."""
        if self._httpd is not None:
            raise RuntimeError("the loopback server is already running")
        self._stopping.clear()
        httpd = HTTPServer(self)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
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

    # bookkeeping for the request handler (handler.py)

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
            raise unauthorized(authorization)

    def _answer(self, request: Request, record: RequestRecord, tokens: int) -> Response:
        self._limits.admit(request.route, tokens)
        response = self._routes.answer(request, record)
        # A completion's length is known only now.
        completion = record.detail.get("tokens_out")
        if completion:
            self._limits.spend(request.route, completion)
        return response

    def _limit_headers(self, route: str) -> dict[str, str]:
        return self._limits.headers(route) if self.rate_headers else {}
