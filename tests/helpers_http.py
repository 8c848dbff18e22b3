"""A static HTTP server on 127.0.0.1 for the URL tests: serves a folder, counts requests per
path, and answers 404 for anything it does not have. Never the internet."""

from __future__ import annotations

import functools
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class MediaServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: Counter[str] = Counter()
        counts = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def send_head(self):  # noqa: N802 - http.server's name
                counts[self.path] += 1
                return super().send_head()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                         functools.partial(Handler, directory=str(folder)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"


@contextmanager
def serve(folder: Path) -> Iterator[MediaServer]:
    server = MediaServer(folder)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
