"""The loopback server from a shell: ``python -m videodub.testing.loopback [--port 8000] ...``
serves until Ctrl-C, after printing its base URL."""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable
from typing import Any

from videodub.testing.loopback.faults import ROUTES
from videodub.testing.loopback.server import LoopbackServer


def _route_value(cast: Callable[[str], Any]) -> Callable[[str], tuple[str, Any]]:
    def parse(text: str) -> tuple[str, Any]:
        route, found, value = text.partition("=")
        if not found or route not in ROUTES:
            raise argparse.ArgumentTypeError(
                f"expected ROUTE=VALUE with ROUTE one of {', '.join(ROUTES)}")
        try:
            return route, cast(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{value!r} is not a valid {cast.__name__}") from exc
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m videodub.testing.loopback",
        description="Serve an OpenAI-compatible API on this machine (models, transcriptions, "
                    "chat, speech) with deterministic answers. Prints the base URL; Ctrl-C "
                    "stops it.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--latency", action="append", type=_route_value(float), default=[],
                        metavar="ROUTE=SECONDS",
                        help="added to every request on ROUTE (repeatable)")
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
        parser.exit(1, f"error: cannot listen on {args.host}:{args.port}: "
                       f"{exc.strerror or exc}\n")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
