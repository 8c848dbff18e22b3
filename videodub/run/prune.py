"""How big the cache is, and pruning it to a size cap and an age limit without breaking a
job that is using it.

- Every running job holds a lease (:class:`JobLease`): a file under ``<cache>/.jobs/`` with its
  start time, locked for as long as the job lives (a killed job's lock goes with it).
- An entry is one file under a kind's folder (``transcripts/``, ``translations/``, ``clips/``)
  or one download folder (``downloads/<hash>/``); its last use is its modification time, which
  a job refreshes on every reuse (``videodub.cachefiles.use``).
- :func:`prune` removes entries older than the age limit, then the least recently used until
  the cache fits its cap, but never one used since the oldest live job started, and all of it
  under the cache's exclusive lock.
- Names starting with a dot (temporaries being written, the lock, the leases) are not entries;
  the temporaries of writers killed mid-write are removed by :func:`prune` as well
  (``videodub.media.remove_stale_temporaries``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from videodub.cachefiles import locked
from videodub.media import remove_stale_temporaries

LEASES = ".jobs"


@dataclass
class Entry:
    path: Path
    kind: str
    size: int
    used: float  # last use, seconds since the epoch


@dataclass
class PruneResult:
    removed: list[Entry] = field(default_factory=list)
    kept_in_use: int = 0  # bytes over the cap kept because a running job may use them
    size_after: int = 0
    stale_temporaries: list[Path] = field(default_factory=list)  # left by killed writers

    @property
    def freed(self) -> int:
        return sum(e.size for e in self.removed)


def _tree_size(path: Path) -> tuple[int, float]:
    size, used = 0, 0.0
    for p in path.rglob("*"):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if p.is_file():
            size += st.st_size
        used = max(used, st.st_mtime)
    return size, used or path.stat().st_mtime


def entries(root: Path) -> list[Entry]:
    """Every entry of the cache, oldest use first."""
    found: list[Entry] = []
    if not root.is_dir():
        return found
    for kind_dir in root.iterdir():
        if kind_dir.name.startswith(".") or not kind_dir.is_dir():
            continue
        for item in kind_dir.iterdir():
            if item.name.startswith("."):
                continue
            try:
                if item.is_dir():
                    size, used = _tree_size(item)
                else:
                    st = item.stat()
                    size, used = st.st_size, st.st_mtime
            except FileNotFoundError:
                continue
            found.append(Entry(item, kind_dir.name, size, used))
    return sorted(found, key=lambda e: e.used)


def usage(root: Path) -> dict[str, dict[str, float]]:
    """Entries and bytes per kind, and the total."""
    out: dict[str, dict[str, float]] = {}
    for e in entries(root):
        row = out.setdefault(e.kind, {"entries": 0, "bytes": 0, "oldest_use": e.used})
        row["entries"] += 1
        row["bytes"] += e.size
    return out


class JobLease:
    """A running job's claim on the cache: while it is held, pruning keeps every entry used
    since the job started."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.path: Path | None = None
        self._fd: int | None = None

    def __enter__(self) -> JobLease:
        if self.root is not None:
            folder = self.root / LEASES
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            # Under the cache's shared lock: pruning (exclusive) never sees the lease between
            # its creation and its lock, when it would look like a dead job's and be removed.
            with locked(self.root, exclusive=False):
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                # A second of slack: file times and this clock may round differently.
                os.write(self._fd, json.dumps({"started": time.time() - 1.0}).encode())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            assert self.path is not None
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


def oldest_live_job(root: Path) -> float | None:
    """When the oldest job still holding a lease started; leases of dead jobs are removed."""
    oldest: float | None = None
    folder = root / LEASES
    if not folder.is_dir():
        return None
    for lease in folder.iterdir():
        try:
            fd = os.open(lease, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held: the job is alive
                try:
                    started = float(json.loads(lease.read_text() or "{}").get("started", 0))
                except (OSError, ValueError):
                    started = 0.0  # being written: protect everything
                oldest = started if oldest is None else min(oldest, started)
            else:
                lease.unlink(missing_ok=True)  # its job is gone
        finally:
            os.close(fd)
    return oldest


def prune(root: Path, max_bytes: int | None, max_age_s: float | None,
          now: float | None = None) -> PruneResult:
    """Remove entries past ``max_age_s``, then the least recently used until the cache holds
    at most ``max_bytes``; never an entry used since the oldest running job started."""
    result = PruneResult()
    if not root.is_dir():
        return result
    now = time.time() if now is None else now
    with locked(root, exclusive=True):
        # Half-written files of jobs killed mid-write; a live writer's are left alone.
        result.stale_temporaries = remove_stale_temporaries(root, recursive=True)
        protect_from = oldest_live_job(root)
        items = entries(root)
        total = sum(e.size for e in items)
        for e in items:
            expired = max_age_s is not None and now - e.used > max_age_s
            over = max_bytes is not None and total > max_bytes
            if not (expired or over):
                continue
            if protect_from is not None and e.used >= protect_from:
                if over:
                    result.kept_in_use += e.size
                continue
            if e.path.is_dir():
                shutil.rmtree(e.path, ignore_errors=True)
            else:
                e.path.unlink(missing_ok=True)
            total -= e.size
            result.removed.append(e)
        result.size_after = total
    return result


def limits(max_gb: float, max_age_days: float) -> tuple[int | None, float | None]:
    """The config's limits (0: none) in bytes and seconds."""
    return (int(max_gb * 1e9) if max_gb > 0 else None,
            max_age_days * 86400 if max_age_days > 0 else None)


def prune_after_job(root: Path | None, max_gb: float, max_age_days: float) -> PruneResult | None:
    """The cache kept to the job's limits once the job is done (a failure to prune is logged,
    never the job's)."""
    import logging

    if root is None:
        return None
    max_bytes, max_age = limits(max_gb, max_age_days)
    if max_bytes is None and max_age is None:
        return None
    try:
        result = prune(root, max_bytes, max_age)
    except OSError as exc:
        logging.getLogger(__name__).warning("pruning the cache %s failed: %s", root, exc)
        return None
    if result.removed:
        logging.getLogger(__name__).info("cache: removed %d entries (%.1f MiB)",
                                         len(result.removed), result.freed / 2**20)
    return result
