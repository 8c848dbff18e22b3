"""Ctrl-C held off while a job cleans up.

A job's clean-up (the work folder removed, the report written) takes well under a second, but
a second Ctrl-C, or the copy of the first that a wrapper such as ``timeout`` or a process
manager forwards, would stop it half-way: the work folder left behind and no report. While
:func:`held_interrupts` is active one Ctrl-C is noted and ignored (the job is ending anyway); a
second one in the same clean-up is obeyed, so a clean-up that hangs can still be stopped.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def held_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; a job run elsewhere is not held
        return
    presses = 0

    def press(signum: int, frame: Any) -> None:
        nonlocal presses
        presses += 1
        if presses > 1:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, press)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
