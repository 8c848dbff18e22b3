"""What the performance suite (``perf check``) runs against the loopback server: every stage
that can call a server pointed at it."""

from __future__ import annotations

from typing import Any

SERVER_STAGES = ("transcribe", "translate", "tts")


def loopback_overrides(server: Any, key_env: str) -> list[str]:
    """Select the server-calling implementation of each stage, aimed at ``server``."""
    out: list[str] = []
    for stage in SERVER_STAGES:
        out += [f"{stage}=openai", f"{stage}.base_url={server.base_url}",
                f"{stage}.api_key_env={key_env}"]
    return out
