"""The cache's size and pruning: age limit, size cap (least recently used first), and the
leases that keep what a running job uses."""

from __future__ import annotations

import os
import time

from videodub.run.cache import Cache
from videodub.run.prune import JobLease, entries, oldest_live_job, prune, usage

DAY = 86400.0


def entry(root, kind, name, size, age_days, now):
    path = root / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (now - age_days * DAY, now - age_days * DAY))
    return path


def test_usage_counts_entries_per_kind_and_skips_temporaries(tmp_path):
    now = time.time()
    entry(tmp_path, "clips", "a.wav", 100, 1, now)
    entry(tmp_path, "clips", "b.wav", 50, 2, now)
    entry(tmp_path, "clips", ".b.part.wav", 999, 0, now)
    dl = tmp_path / "downloads" / "abc"
    dl.mkdir(parents=True)
    (dl / "media.mp4").write_bytes(b"y" * 300)
    rows = usage(tmp_path)
    assert rows["clips"]["entries"] == 2 and rows["clips"]["bytes"] == 150
    assert rows["downloads"] == {"entries": 1, "bytes": 300, "oldest_use": rows["downloads"]["oldest_use"]}
    assert [e.path.name for e in entries(tmp_path)][:2] == ["b.wav", "a.wav"]


def test_entries_past_the_age_limit_go(tmp_path):
    now = time.time()
    old = entry(tmp_path, "transcripts", "old.json", 10, 40, now)
    new = entry(tmp_path, "transcripts", "new.json", 10, 1, now)
    result = prune(tmp_path, None, 30 * DAY, now=now)
    assert [e.path for e in result.removed] == [old]
    assert not old.exists() and new.exists()


def test_over_the_cap_the_least_recently_used_go_first(tmp_path):
    now = time.time()
    paths = [entry(tmp_path, "clips", f"{i}.wav", 100, age, now)
             for i, age in enumerate([5, 1, 3, 2])]
    result = prune(tmp_path, 250, None, now=now)
    assert sorted(e.path for e in result.removed) == sorted([paths[0], paths[2]])
    assert result.size_after == 200 and result.freed == 200
    assert paths[1].exists() and paths[3].exists()


def test_what_a_running_job_uses_is_kept_until_it_ends(tmp_path):
    now = time.time()
    clip = entry(tmp_path, "clips", "k.wav", 100, 90, now)
    other = entry(tmp_path, "clips", "other.wav", 100, 90, now)
    cache = Cache(tmp_path)
    with JobLease(tmp_path):
        assert oldest_live_job(tmp_path) is not None
        assert cache.get_file("clips", "k") == clip  # reused: marked as used now
        result = prune(tmp_path, 0, 30 * DAY)
        assert clip.exists(), "pruned a clip a running job is using"
        assert not other.exists()
        assert result.kept_in_use == 100
    assert oldest_live_job(tmp_path) is None
    prune(tmp_path, 0, None)
    assert not clip.exists()


def test_a_lease_is_never_seen_before_it_is_locked(tmp_path):
    """A lease created while pruning decides would look like a dead job's (unlocked) and be
    removed, leaving the job unprotected: a job waits for pruning before taking its lease."""
    import threading

    from videodub.cachefiles import locked

    taken = threading.Event()

    def job() -> None:
        with JobLease(tmp_path):
            taken.set()
            time.sleep(0.2)

    with locked(tmp_path, exclusive=True):  # as prune holds it
        thread = threading.Thread(target=job)
        thread.start()
        assert not taken.wait(0.3), "a job took its lease while the cache was being pruned"
        leases = tmp_path / ".jobs"
        assert not leases.exists() or list(leases.iterdir()) == []
    assert taken.wait(5)
    assert oldest_live_job(tmp_path) is not None
    thread.join()
    assert oldest_live_job(tmp_path) is None


def test_the_lease_of_a_job_that_died_protects_nothing(tmp_path):
    now = time.time()
    clip = entry(tmp_path, "clips", "k.wav", 100, 0, now)
    dead = tmp_path / ".jobs" / "12345-deadbeef"
    dead.parent.mkdir()
    dead.write_text('{"started": 0}')  # nobody holds its lock
    assert oldest_live_job(tmp_path) is None
    assert not dead.exists()
    prune(tmp_path, 0, None)
    assert not clip.exists()


def test_a_missing_entry_is_a_miss_not_an_error(tmp_path):
    cache = Cache(tmp_path)
    assert cache.get_json("transcripts", "nope") is None
    assert cache.get_file("clips", "nope") is None
    assert cache.get_file("clips", "nope", ".wav") is None


def test_prune_removes_what_a_killed_writer_left_and_keeps_a_live_ones(tmp_path):
    import os
    import subprocess
    import sys

    from videodub.media import _host_tag
    from videodub.run.prune import prune

    root = tmp_path / "cache"
    (root / "clips").mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = _host_tag()
    stale = root / "clips" / f".abc.{gone.pid}-{host}-x1.part.json"
    live = root / "clips" / f".abc.{os.getpid()}-{host}-x2.part.json"
    for path in (stale, live):
        path.write_text("{}")
    result = prune(root, None, None)
    assert result.stale_temporaries == [stale]
    assert not stale.exists() and live.exists()
