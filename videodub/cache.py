"""A content-addressed cache for work worth keeping between runs: transcripts and speech clips.

Keys hash everything the result depends on, so a changed option or input never reuses a
stale entry. Entries are written under a temporary name and renamed, so an interrupted run
leaves either a whole entry or none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from enum import Enum
from pathlib import Path
from typing import Any

from videodub.media import atomic_path, write_json_atomic


def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(repr(obj))


def key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=_default).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def file_fingerprint(path: Path) -> str:
    """A fast fingerprint: size plus hashes of the first and last MiB."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read(1 << 20))
    return h.hexdigest()[:32]


class Cache:
    def __init__(self, root: Path | None) -> None:
        self.root = root

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def _path(self, kind: str, k: str, suffix: str) -> Path:
        assert self.root is not None
        return self.root / kind / f"{k}{suffix}"

    def get_json(self, kind: str, k: str) -> Any | None:
        if not self.enabled:
            return None
        path = self._path(kind, k, ".json")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put_json(self, kind: str, k: str, data: Any) -> None:
        if self.enabled:
            write_json_atomic(self._path(kind, k, ".json"), data)

    def get_file(self, kind: str, k: str, suffix: str) -> Path | None:
        if not self.enabled:
            return None
        path = self._path(kind, k, suffix)
        return path if path.exists() else None

    def put_file(self, kind: str, k: str, src: Path) -> None:
        if not self.enabled:
            return
        with atomic_path(self._path(kind, k, src.suffix)) as tmp:
            shutil.copyfile(src, tmp)
