"""``perf dashboard --serve``: the page and its data on localhost, read afresh per request.

- ``/`` the dashboard;
- ``/api/performance``: this machine, the settings the runner would choose for the default
  job (``perf plan``), the last run's settings and health;
- ``/api/performance/optimization``: recommendations, regressions, health.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from videodub.perf import dashboard
from videodub.perf.data import gather, summary
from videodub.perf.history import HistoryError

log = logging.getLogger(__name__)


def make_server(history: Path, rules: dict[str, Any], plan: Callable[[], dict[str, Any]],
                port: int = 0, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (0 picks a free port); call ``serve_forever``."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, payload: Any, status: int = 200) -> None:
            self._send(status, json.dumps(payload, indent=1).encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            try:
                if path == "/":
                    page = dashboard.render(gather(history, rules)).encode()
                    self._send(200, page, "text/html; charset=utf-8")
                elif path == "/api/performance":
                    data = summary(gather(history, rules))
                    self._json({"optimal": plan(), "last_run": data["latest"],
                                "health": data["health"], "note": data["note"]})
                elif path == "/api/performance/optimization":
                    data = summary(gather(history, rules))
                    self._json({k: data[k] for k in ("recommendations", "regressions",
                                                     "health", "note")})
                else:
                    self._json({"error": f"no such page: {path}"}, 404)
            except HistoryError as exc:
                self._json({"error": str(exc)}, 500)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.info("%s %s", self.address_string(), format % args)

    return ThreadingHTTPServer((host, port), Handler)
