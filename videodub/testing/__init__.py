"""Tools for testing videodub and its plugins, kept apart from the product code they exercise.

- :class:`TTSSuite` (``suites.py``): the shared test suite a tts plugin subclasses.
- ``samples.py``: generated sample media (a talk with a known script, its translation).
- ``loopback/``: an OpenAI-compatible server on this machine, with rate limits and faults on
  demand (``python -m videodub.testing.loopback``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TTSSuite", "median_f0", "registry_with"]


def __getattr__(name: str) -> Any:
    # The suites need pytest, a test-only dependency: the loopback server's command line and
    # the demo's sample media must not.
    if name in __all__:
        from videodub.testing import suites

        return getattr(suites, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
