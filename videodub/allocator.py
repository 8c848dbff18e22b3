"""The C allocator set for a long job: large buffers go back to the system when freed.

glibc's malloc serves a request above its mmap threshold with a mapping of its own, unmapped
when freed. The threshold is dynamic, though: each such block freed raises it to that block's
size (up to 32 MiB), and from then on buffers of that size come from the heap and the
per-thread arenas, where freed memory mostly stays with the process. A job frees buffers of
tens of MiB all the time, from several threads (each recognition window's VAD batch and
spectrogram), so it held much more than it used. Measured: ten minutes recognised alone
(120 s windows) peaked 264 MiB above the loaded model with the dynamic threshold, 165 MiB
with it fixed at 8 MiB; a 30-minute job peaked at 552 MiB instead of 659-718, in the same
CPU time. A lower threshold saves a little more but costs CPU, every block mapped and faulted
in afresh: at 1 MiB recognition spent twice the system time.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 8 << 20
# mallopt's parameter number for it (glibc's malloc.h).
_M_MMAP_THRESHOLD = -3


def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold at ``MMAP_THRESHOLD`` for this process, unless one was
    chosen with ``MALLOC_MMAP_THRESHOLD_``; True if it was set. Another C library or system
    is left as it is."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
