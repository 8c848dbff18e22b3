"""Pruning the cache as hard as it goes while a job reuses it: the job finishes whole."""

from __future__ import annotations

import threading

import pytest

from videodub.api import dub
from videodub.run.prune import entries, prune


@pytest.mark.slow
def test_pruning_without_pause_while_a_job_reuses_the_cache_never_breaks_it(short_talk, tmp_path):
    cache = tmp_path / "cache"
    overrides = [f"input={short_talk.path}", "target_lang=en", "profile=speed",
                 f"cache_dir={cache}"]
    first = dub(overrides, tmp_path / "one")
    assert first.report["status"] == "ok" and entries(cache)
    stop, rounds = threading.Event(), [0]

    def pruner() -> None:
        while not stop.is_set():
            prune(cache, 0, 0.0)  # cap 0 bytes, age limit 0 s: everything not in use goes
            rounds[0] += 1

    thread = threading.Thread(target=pruner, daemon=True)
    thread.start()
    try:
        second = dub(overrides, tmp_path / "two")
    finally:
        stop.set()
        thread.join()
    assert rounds[0] > 0
    assert second.report["status"] == "ok"
    assert second.video.stat().st_size > 0
    assert len(second.segments) == len(first.segments)
    # Nothing protects the entries once the job is over.
    prune(cache, 0, 0.0)
    assert entries(cache) == []
