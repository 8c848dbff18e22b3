"""``python -m videodub cache``: the cache's size per kind, and ``prune`` to its limits."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def cache_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "videodub", "cache", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_cache_shows_its_size_and_prunes_to_the_age_limit(tmp_path):
    cache = tmp_path / "c"
    (cache / "clips").mkdir(parents=True)
    old, new = cache / "clips" / "old.wav", cache / "clips" / "new.wav"
    old.write_bytes(b"x" * 2**20)
    new.write_bytes(b"x" * 2**19)
    ten_days = time.time() - 10 * 86400
    os.utime(old, (ten_days, ten_days))
    shown = cache_cli(f"cache_dir={cache}", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "clips" in shown.stdout and "2 entries" in shown.stdout
    assert "1.5 MiB in 2 entries" in shown.stdout
    pruned = cache_cli("prune", f"cache_dir={cache}", "cache_max_age_days=7", cwd=tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.splitlines()[0] == "removed 1 entries (1.0 MiB)"
    assert not old.exists() and new.exists()


def test_cache_refuses_other_keys_in_one_line(tmp_path):
    proc = cache_cli("target_lang=es", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: cache takes prune, cache_dir=, cache_max_gb=, cache_max_age_days=; "
        "got target_lang=es"]
