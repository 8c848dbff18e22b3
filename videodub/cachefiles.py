"""The cache folder's one rule between jobs and pruning: an entry a job uses is touched under
a shared lock, pruning deletes under the exclusive one.

A job marks every entry it reuses as used now (its modification time), under a shared lock on
``<cache>/.lock``; pruning holds the exclusive lock while it decides and deletes, and never
deletes what was used since the oldest running job started (``videodub.run.prune``). So an
entry is either gone before a job looks for it (a miss: the job makes it again) or kept until
that job ends. Stages that keep their own files in the cache (downloads) use :func:`use`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"


@contextlib.contextmanager
def locked(root: Path, exclusive: bool) -> Iterator[None]:
    """Hold the cache folder's lock: shared for jobs, exclusive for pruning."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def use(root: Path | None, *paths: Path) -> bool:
    """Mark cache entries as used now; False (and nothing touched) when one is missing."""
    if root is None:
        return all(p.exists() for p in paths)
    with locked(root, exclusive=False):
        if not all(p.exists() for p in paths):
            return False
        for p in paths:
            try:
                os.utime(p)
            except FileNotFoundError:
                return False
            except PermissionError:
                pass  # a read-only cache is still readable
        return True
