"""videodub/perf/history.py: records round-trip, the schema migrates, bad databases are one
line, and concurrent writers lose nothing."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pytest

from videodub.perf.history import (ENV_VAR, MIGRATIONS, RECENT_VALUES, RUN_PROVIDERS, RUN_STAGES,
                                   SCHEMA_VERSION, History, HistoryError, history_path)

from .records import make_record


def test_a_record_round_trips(tmp_path):
    with History(tmp_path / "h.sqlite") as hist:
        hist.append(make_record(1), [{"metric": "stage.tts.wall_per_min"}], 88.0)
        [back] = hist.runs()
    assert back.run_id == "run-1" and back.status == "ok"
    assert {s.stage: s.wall_s for s in back.stages} == {"transcribe": 4.0, "tts": 2.0, "mix": 1.0}
    assert back.regressions == [{"metric": "stage.tts.wall_per_min"}] and back.health == 88.0
    assert back.timeline == [[0.0, 50.0, 200.0], [0.5, 90.0, 300.0]]


def test_normalised_figures_are_stored(tmp_path):
    with History(tmp_path / "h.sqlite") as hist:
        hist.append(make_record(1, media_s=120.0))
        row = hist.db.execute("SELECT wall_per_min, wall_per_segment FROM stage_runs"
                              " WHERE stage = 'tts'").fetchone()
        metric = hist.db.execute("SELECT value FROM metrics WHERE metric ="
                                 " 'stage.tts.wall_per_min'").fetchone()
    assert tuple(row) == (1.0, 2.0 / 6)  # 2 s over 2 minutes; over 6 segments
    assert metric[0] == 1.0


def test_wal_and_busy_timeout(tmp_path):
    with History(tmp_path / "h.sqlite") as hist:
        assert hist.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert hist.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_an_old_schema_is_migrated(tmp_path):
    path = tmp_path / "h.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO runs (run_id, status) VALUES ('old', 'ok')")
    db.commit()
    db.close()
    with History(path) as hist:
        assert hist.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert hist.db.execute("SELECT run_id FROM runs").fetchone()[0] == "old"
        hist.append(make_record(2))  # the tables of the later migration are there
        assert hist.count() == 2


def test_a_metrics_latest_values_are_those_of_the_latest_runs_of_its_kind(tmp_path):
    with History(tmp_path / "h.sqlite") as hist:
        for n in range(1, 31):
            kind = {0: {}, 1: {"profile": "speed"}, 2: {"status": "failed"}}[n % 3]
            hist.append(make_record(n, {"transcribe": float(n), "tts": 2.0, "mix": 1.0},
                                    **kind))
        values = hist.metric_values("stage.transcribe.wall_per_min", "faster_whisper",
                                    "balanced", "2cpu-8g-nogpu-x86_64", 4)
    # Balanced and ok: runs 30, 27, 24, 21 (newest first), a minute of media each.
    assert values == [30.0, 27.0, 24.0, 21.0]


def test_what_a_job_reads_from_the_history_is_found_by_index_not_by_a_scan(tmp_path):
    # Every job's end reads each metric's latest values and the latest runs: sorting a
    # metric's whole history, or scanning every run's stages for one run's, grows with the
    # history (the writer took 793 ms a job at 5000 runs).
    def plan(hist, sql, args):
        return " | ".join(row[-1] for row in hist.db.execute("EXPLAIN QUERY PLAN " + sql, args))

    with History(tmp_path / "h.sqlite") as hist:
        values = plan(hist, RECENT_VALUES, ("m", "i", "p", "c", 20))
        stages, providers = plan(hist, RUN_STAGES, (1,)), plan(hist, RUN_PROVIDERS, (1,))
    assert "metrics_recent" in values and "TEMP B-TREE" not in values, values
    assert "USING INDEX stage_runs_run" in stages, stages
    assert "USING INDEX provider_runs_run" in providers, providers


def test_a_runs_stages_come_back_in_the_order_they_were_written(tmp_path):
    walls = {"mix": 1.0, "transcribe": 4.0, "tts": 2.0}
    with History(tmp_path / "h.sqlite") as hist:
        for n in range(3):
            hist.append(make_record(n, walls))
        assert [[s.stage for s in r.stages] for r in hist.runs()] == [list(walls)] * 3


def test_a_future_schema_is_refused_in_one_line(tmp_path):
    path = tmp_path / "h.sqlite"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(HistoryError, match="newer than this videodub") as err:
        History(path)
    assert "\n" not in str(err.value)


def test_a_corrupt_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(HistoryError, match="not a readable SQLite database"):
        History(path)


def test_a_locked_database_is_an_error_not_a_hang(tmp_path, monkeypatch):
    import videodub.perf.history as history

    path = tmp_path / "h.sqlite"
    History(path).close()
    monkeypatch.setattr(history, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError, match="locked"):
            with History(path) as hist:
                hist.append(make_record(1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_missing_history_for_reading(tmp_path):
    with pytest.raises(HistoryError, match="no run history at"):
        History(tmp_path / "none.sqlite", create=False)


def test_env_var_moves_or_disables_it(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert history_path("outputs/history.sqlite").name == "history.sqlite"
    assert history_path(None) is None and history_path("") is None
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "x.sqlite"))
    assert history_path("outputs/history.sqlite") == tmp_path / "x.sqlite"
    monkeypatch.setenv(ENV_VAR, "off")
    assert history_path("outputs/history.sqlite") is None


def _write_many(path: str, worker: int, count: int) -> None:
    for i in range(count):
        with History(path) as hist:
            hist.append(make_record(worker * 1000 + i))


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "h.sqlite"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(path), w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    with History(path) as hist:
        assert hist.count() == 60
        assert hist.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runs = hist.runs(limit=100)
        assert len({r.run_id for r in runs}) == 60
        assert all(len(r.stages) == 3 for r in runs)


def test_opening_waits_for_a_writer_instead_of_failing(tmp_path):
    """Switching a database to WAL while another connection writes to it in rollback mode
    fails at once in SQLite (it does not wait where waiting could deadlock): the opening
    retries, so the history opens once the writer commits."""
    path = tmp_path / "h.sqlite"
    holding, committed = threading.Event(), threading.Event()

    def writer() -> None:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("CREATE TABLE other (a)")
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO other VALUES (1)")
        holding.set()
        threading.Event().wait(0.5)
        committed.set()
        db.execute("COMMIT")
        db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(30)
        with History(path) as hist:
            assert committed.is_set()  # it waited for the writer, and then opened
            assert hist.count() == 0
            assert hist.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        thread.join()
