"""One job per run folder.

Two jobs writing into one folder would overwrite each other's intermediate files, and one of
them could build its video from the other's audio. A job therefore holds an exclusive
``flock`` on the run folder itself while it runs (no lock file is left behind, and the kernel
drops the lock when the process dies, even by kill -9); a second job that finds it taken is
refused with one line. The default run folder has the process id in its name, so concurrent
jobs never meet there unless the user points them at the same folder.

The command line takes the lock before Hydra writes ``.hydra/`` and the log into the folder
(:func:`hold_for_process`); the runner then finds it held by its own process and goes on.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from videodub.errors import VideodubError

_lock = threading.Lock()
_process_held: dict[str, int] = {}  # run folder -> descriptor, held until the process ends


class RunFolderBusy(VideodubError):
    """Another job is running in this run folder."""


def _key(run_dir: Path) -> str:
    return str(Path(run_dir).resolve())


def _flock(path: str) -> int:
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunFolderBusy(
            f"the run folder {path} is in use by another job; wait for it to finish or set "
            f"hydra.run.dir to another folder") from None
    return fd


def hold_for_process(run_dir: Path) -> None:
    """Create ``run_dir`` and own it until this process ends (the command line's one job)."""
    key = _key(run_dir)
    with _lock:
        if key not in _process_held:
            try:
                Path(key).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise VideodubError(f"cannot create the run folder {key}: "
                                    f"{exc.strerror or exc}; set hydra.run.dir elsewhere") from exc
            _process_held[key] = _flock(key)


@contextlib.contextmanager
def own_run_folder(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` (which must exist) for one job; refused while another job holds it,
    in this process or another."""
    key = _key(run_dir)
    with _lock:
        if key in _process_held:
            fd = None  # the command line took it for this very job
        else:
            fd = _flock(key)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)
