"""Checks on the launcher a sweep asks for, before Hydra hands it any job.

A Ray address that does not answer would otherwise surface from inside ``ray.init`` after its
own retries, as a traceback; here it is one line, at once.
"""

from __future__ import annotations

import socket

from videodub.errors import VideodubError

RAY_ADDRESS_KEY = "hydra.launcher.ray.init.address"
# Ray's default port for the head node's GCS, when an address names only the host.
RAY_DEFAULT_PORT = 6379


def _value(argv: list[str], key: str) -> str | None:
    for a in argv:
        name, sep, value = a.partition("=")
        if sep and name.lstrip("+~") == key:
            return value.strip("'\"")
    return None


def check_ray_address(argv: list[str], timeout_s: float = 3.0) -> None:
    """With ``hydra/launcher=ray`` and an explicit address, that something listens there."""
    address = _value(argv, RAY_ADDRESS_KEY)
    if not address or address.lower() in ("null", "none", "auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host:
        host, port = hostport, str(RAY_DEFAULT_PORT)
    try:
        port_number = int(port)
    except ValueError as exc:
        raise VideodubError(f"{RAY_ADDRESS_KEY}={address}: not host:port") from exc
    try:
        with socket.create_connection((host.strip("[]"), port_number), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise VideodubError(
            f"the Ray cluster at {address} does not answer ({reason}); start one with "
            f"`ray start --head` or fix {RAY_ADDRESS_KEY}") from exc
