"""What one job gives its stages beyond their options (:class:`JobScope`)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from videodub.plugins import Registry


class JobScope:
    """What one job gives its stages beyond their options.

    - ``registry``: the implementations the job was composed from, for an implementation
      that wraps another (create it with ``registry.get(stage, name).create(options, scope)``).
    - :meth:`shared`: one object per key for every stage of the job (an HTTP client, the
      rate limiter of an endpoint), closed by :meth:`close` when the job ends, so nothing
      carries over into the next job of the same process.
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry
        self._objects: dict[Any, Any] = {}
        self._closers: list[Any] = []
        # Re-entrant: creating one shared object may ask for another.
        self._lock = threading.RLock()

    def shared(self, key: Any, create: Any, close: Any = None) -> Any:
        """The object under ``key``, made with ``create()`` on first use; ``close(obj)`` is
        called when the job ends."""
        with self._lock:
            if key not in self._objects:
                obj = self._objects[key] = create()
                if close is not None:
                    self._closers.append(lambda: close(obj))
            return self._objects[key]

    def close(self) -> None:
        """Close every shared object, last created first. A closer that fails is logged and
        the others still run: closing never replaces the job's own outcome."""
        with self._lock:
            closers, self._closers = self._closers, []
            self._objects.clear()
        for closer in reversed(closers):
            try:
                closer()
            except Exception:  # noqa: BLE001 - see the docstring
                logging.getLogger(__name__).warning("closing a shared object failed",
                                                    exc_info=True)
