"""HTTP for the loopback server: reading a request (plain or chunked body, with an upload size
limit), applying the faults that replace an answer, and sending the answer, all on the standard
library's threading server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from videodub.testing.loopback.faults import STATUS_FAULTS, ApiError, Response, fault_error
from videodub.testing.loopback.routes import Request, estimated_tokens, route_of

if TYPE_CHECKING:
    from videodub.testing.loopback.server import LoopbackServer, RequestRecord


@dataclass
class _Body:
    data: bytes | None  # None: over the size limit (drained, not kept)
    size: int


class _Dropped(Exception):
    """Close the connection without answering."""


class HTTPServer(ThreadingHTTPServer):
    """Listens where ``loopback`` says and hands every request to :class:`Handler`."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, loopback: LoopbackServer) -> None:
        self.loopback = loopback
        super().__init__((loopback.host, loopback.port), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up are normal here; only report real failures."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: HTTPServer

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
        route, path_arg = route_of(method, path)
        if route is None:
            self._read_body(None)
            self._send(ApiError(404, f"Invalid URL ({method} {path})").response())
            return
        record = loopback._begin(route)
        response: Response | None = None
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
                  record: RequestRecord) -> Response:
        limit = loopback.max_upload_bytes if route == "transcriptions" else None
        body = self._read_body(limit)
        record.bytes_in = body.size
        record.authorization = self.headers.get("Authorization")
        if loopback._pause(loopback.latency.get(route, 0.0)):
            raise _Dropped
        try:
            loopback._authorize(self.headers.get("Authorization"))
            if body.data is None:
                raise ApiError(413, f"Maximum content size limit ({loopback.max_upload_bytes}) "
                                    f"exceeded ({body.size} bytes read)", "server_error")
            fault = loopback.faults.take(route)
            if fault:
                record.detail["fault"] = fault
            early = self._early_fault(loopback, route, fault)
            if early is not None:
                return early
            request = Request(route, path_arg, self.headers.get("Content-Type", ""), body.data,
                              fault)
            return loopback._answer(request, record, estimated_tokens(route, body.data))
        except ApiError as err:
            return err.response()

    def _early_fault(self, loopback: LoopbackServer, route: str,
                     fault: str | None) -> Response | None:
        """Apply a fault that replaces the answer; None lets the request go on."""
        if fault in STATUS_FAULTS:
            raise fault_error(fault, route, self.headers.get("Authorization"),
                              loopback.retry_after_s)
        if fault == "disconnect" or (fault == "timeout" and loopback._pause(loopback.hang_s)):
            raise _Dropped
        if fault == "malformed":
            return Response(200, b'<html><body>502 Bad Gateway</body></html>\n{"id": "')
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
        """The request body, or only its size once it passes ``limit`` (read to the end either
        way)."""
        kept: list[bytes] | None = []
        size = 0
        for chunk in self._body_chunks():
            size += len(chunk)
            if kept is not None and limit is not None and size > limit:
                kept = None
            if kept is not None:
                kept.append(chunk)
        return _Body(b"".join(kept) if kept is not None else None, size)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)
