"""Loopback-server faults that make concurrency tests wait for events instead of timing.

A test that wants to see requests overlap used to give the server some latency and hope the
client sent the next request before the first was answered; on a busy machine it may not.
:class:`Crowd` holds the first requests on a route until enough of them are in flight at
once, so overlap is certain when the client really sends them together, and impossible
(the peak stays at one) when it does not.
"""

from __future__ import annotations

import threading

from videodub.testing.loopback import Faults


class Crowd(Faults):
    """Holds each of the first ``size`` requests on ``route`` until ``size`` of them have
    arrived (at most ``wait_s`` each, a deadlock breaker for a client that never sends them
    together); later requests, and other routes, pass at once. Scripted and random faults
    still apply after the hold. ``formed`` is set once ``size`` requests have arrived.
    """

    def __init__(self, route: str, size: int, wait_s: float = 10.0) -> None:
        super().__init__()
        self.route, self.size, self.wait_s = route, size, wait_s
        self.formed = threading.Event()
        self._arrived = 0
        self._count = threading.Lock()

    def take(self, route: str) -> str | None:
        if route == self.route and not self.formed.is_set():
            with self._count:
                self._arrived += 1
                if self._arrived >= self.size:
                    self.formed.set()
            self.formed.wait(self.wait_s)
        return super().take(route)
