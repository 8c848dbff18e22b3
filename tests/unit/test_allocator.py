"""videodub.allocator: buffers of a few MiB freed by a job go back to the system."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from videodub.allocator import return_large_buffers

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# Ten blocks of 12 MiB, each followed by a 1 MiB block that stays, freed: what the process
# still holds of them, in MiB. A 24 MiB block freed first raises glibc's dynamic threshold
# above 12 MiB, as a job's first large buffers do.
HELD_AFTER_FREE = """
import ctypes, sys
import psutil
from videodub.allocator import return_large_buffers
if sys.argv[1] == "set":
    assert return_large_buffers()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def touched(size):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    return block
libc.free(touched(24 << 20))
before = psutil.Process().memory_info().rss
blocks, small = [], []
for _ in range(10):
    blocks.append(touched(12 << 20))
    small.append(touched(1 << 20))
for block in blocks:
    libc.free(block)
print((psutil.Process().memory_info().rss - before) >> 20)
"""


def held_after_free(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", HELD_AFTER_FREE, mode], capture_output=True,
                         text=True, check=True, env={"PATH": ""})
    return int(out.stdout)


@glibc
def test_freed_large_buffers_are_given_back():
    assert held_after_free("dynamic") > 100  # what a job held before
    assert held_after_free("set") < 30


@glibc
def test_a_threshold_the_user_chose_is_kept(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    assert not return_large_buffers()
