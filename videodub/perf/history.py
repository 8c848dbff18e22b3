"""The run history: one SQLite database that every run appends a record to.

WAL and a busy timeout let the jobs of a sweep (processes of a joblib launcher, tasks of a
Ray or SLURM one on the same disk) append at once: each record is one ``BEGIN IMMEDIATE``
transaction, so a record is all there or not at all. The schema carries its version in
``PRAGMA user_version`` and is migrated forward on open; a database from a newer videodub is
left alone. Whatever goes wrong (locked, corrupt, unwritable, too new) is a
:class:`HistoryError` with one line: the run that wanted to record itself warns once and
goes on (``observer.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from videodub.errors import VideodubError
from videodub.perf.record import ProviderFigures, RunRecord, StageFigures

ENV_VAR = "VIDEODUB_HISTORY"
OFF = ("", "off", "none", "false", "0")
BUSY_TIMEOUT_S = 30.0

# Migration N brings a database from version N to N + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, started_at TEXT,
        recorded_at TEXT, status TEXT, error TEXT, input TEXT, input_hash TEXT, media_s REAL,
        segments INTEGER, profile TEXT, implementations TEXT, versions TEXT,
        config_hash TEXT, machine_class TEXT, machine TEXT, wall_s REAL, cpu_s REAL,
        peak_rss_mb REAL, cost_usd REAL, quality TEXT, timeline TEXT, run_dir TEXT,
        regressions TEXT, health REAL);
    CREATE INDEX runs_started ON runs(started_at);
    CREATE TABLE stage_runs (
        run INTEGER REFERENCES runs(id), stage TEXT, impl TEXT, wall_s REAL, cpu_s REAL,
        items INTEGER, workers INTEGER, worker_reason TEXT, peak_rss_mb REAL, cached INTEGER,
        wall_per_min REAL, wall_per_segment REAL);
    CREATE TABLE provider_runs (
        run INTEGER REFERENCES runs(id), stage TEXT, model TEXT, calls INTEGER, p50_ms REAL,
        p95_ms REAL, retries INTEGER, rate_limited INTEGER, timeouts INTEGER, errors INTEGER,
        tokens INTEGER, cost_usd REAL, span_s REAL);
    """,
    """
    CREATE TABLE metrics (
        run INTEGER REFERENCES runs(id), metric TEXT, impl TEXT, value REAL);
    CREATE INDEX metrics_key ON metrics(metric, impl);
    CREATE TABLE baselines (
        metric TEXT, impl TEXT, profile TEXT, machine_class TEXT, n INTEGER, p50 REAL,
        p95 REAL, spread REAL, updated_at TEXT,
        PRIMARY KEY (metric, impl, profile, machine_class));
    """,
    """
    ALTER TABLE stage_runs ADD COLUMN wait_s REAL DEFAULT 0;
    """,
    # Reading the history at each job's end must not grow with it: a metric's latest values
    # read backwards along an index, stopping after the window, instead of all of them
    # sorted (metrics_key is the new index's prefix); a run's stages and providers found by
    # index, not by a scan of every run's. At 5000 runs the writer took 793 ms, now 10 ms.
    """
    CREATE INDEX metrics_recent ON metrics(metric, impl, run);
    DROP INDEX metrics_key;
    CREATE INDEX stage_runs_run ON stage_runs(run);
    CREATE INDEX provider_runs_run ON provider_runs(run);
    """,
]
# The values of one metric in the latest successful runs of one kind, newest first.
RECENT_VALUES = (
    "SELECT m.value FROM metrics m JOIN runs r ON r.id = m.run WHERE m.metric = ?"
    " AND m.impl = ? AND r.profile = ? AND r.machine_class = ? AND r.status = 'ok'"
    " ORDER BY m.run DESC LIMIT ?")
# The same, from runs whose media length is within the given range.
RECENT_VALUES_OF_LENGTH = RECENT_VALUES.replace(
    " ORDER BY", " AND r.media_s BETWEEN ? AND ? ORDER BY")
# The same, from runs of one input (its hash).
RECENT_VALUES_OF_INPUT = RECENT_VALUES.replace(" ORDER BY", " AND r.input_hash = ? ORDER BY")
# One run's stages and providers, in the order they were written.
RUN_STAGES = "SELECT * FROM stage_runs WHERE run = ?"
RUN_PROVIDERS = "SELECT * FROM provider_runs WHERE run = ?"
SCHEMA_VERSION = len(MIGRATIONS)


class HistoryError(VideodubError):
    """The history cannot be read or written (locked, corrupt, from a newer videodub)."""


def history_path(configured: str | None) -> Path | None:
    """Where the history is: ``VIDEODUB_HISTORY`` wins over the config; off is None."""
    value = os.environ.get(ENV_VAR, configured if configured is not None else "")
    if value is None or value.strip().lower() in OFF:
        return None
    return Path(value).expanduser()


class History:
    """One open history database."""

    def __init__(self, path: Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise HistoryError(f"no run history at {self.path} (runs record themselves there; "
                               f"set perf.history or {ENV_VAR} to look elsewhere)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        except sqlite3.Error as exc:
            raise HistoryError(self._explain(exc)) from None
        except OSError as exc:
            raise HistoryError(f"run history {self.path}: {exc.strerror or exc}") from None

    def _open(self) -> None:
        """Connect, in WAL mode, at the current schema. Switching a database's journal mode
        while another process writes to it fails at once instead of waiting for the busy
        timeout (SQLite does not wait where waiting could deadlock), as can the first
        connections to a new file: the opening is retried until ``BUSY_TIMEOUT_S``."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                 check_same_thread=False)
            try:
                db.row_factory = sqlite3.Row
                db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    db.execute("PRAGMA journal_mode = WAL")
                self.db = db
                self._migrate()
                return
            except sqlite3.OperationalError as exc:
                db.close()
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.01, 0.05))
            except BaseException:
                db.close()
                raise

    def _explain(self, exc: sqlite3.Error) -> str:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return (f"run history {self.path} is not a readable SQLite database ({text}); "
                    f"move it away to start a new one")
        if "locked" in text or "busy" in text:
            return f"run history {self.path} is locked by another process ({text})"
        return f"run history {self.path}: {text}"

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"run history {self.path} has schema version {version}, newer than this "
                f"videodub's {SCHEMA_VERSION}; upgrade videodub or set {ENV_VAR} elsewhere")
        while version < SCHEMA_VERSION:
            with self.transaction():
                # Another process may have migrated it meanwhile.
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                if version >= SCHEMA_VERSION:
                    break
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                version += 1
                self.db.execute(f"PRAGMA user_version = {version}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------
    def append(self, rec: RunRecord, regressions: list[dict[str, Any]] | None = None,
               health: float | None = None) -> int:
        """Add one run, its stages, providers and metrics, in one transaction."""
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        try:
            with self.transaction() as db:
                cur = db.execute(
                    "INSERT INTO runs (run_id, started_at, recorded_at, status, error, input,"
                    " input_hash, media_s, segments, profile, implementations, versions,"
                    " config_hash, machine_class, machine, wall_s, cpu_s, peak_rss_mb, cost_usd,"
                    " quality, timeline, run_dir, regressions, health)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (rec.run_id, rec.started_at or now, now, rec.status, rec.error, rec.input,
                     rec.input_hash, rec.media_s, rec.segments, rec.profile,
                     json.dumps(rec.implementations), json.dumps(rec.versions), rec.config_hash,
                     rec.machine_class, json.dumps(rec.machine), rec.wall_s, rec.cpu_s,
                     rec.peak_rss_mb, rec.cost_usd, json.dumps(rec.quality),
                     json.dumps(rec.timeline), rec.run_dir, json.dumps(regressions or []),
                     health))
                run = cur.lastrowid
                per_min = rec.media_min
                for st in rec.stages:
                    db.execute(
                        "INSERT INTO stage_runs (run, stage, impl, wall_s, cpu_s, items, workers,"
                        " worker_reason, peak_rss_mb, cached, wall_per_min, wall_per_segment,"
                        " wait_s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (
                            run, st.stage, st.impl, st.wall_s, st.cpu_s, st.items, st.workers,
                            st.worker_reason, st.peak_rss_mb, int(st.cached),
                            st.own_s / per_min if per_min else None,
                            st.own_s / rec.segments if rec.segments else None, st.wait_s))
                for p in rec.providers:
                    db.execute("INSERT INTO provider_runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (
                        run, p.stage, p.model, p.calls, p.p50_ms, p.p95_ms, p.retries,
                        p.rate_limited, p.timeouts, p.errors, p.tokens, p.cost_usd, p.span_s))
                db.executemany("INSERT INTO metrics VALUES (?,?,?,?)", [
                    (run, metric, rec.impl_of(metric), value)
                    for metric, value in rec.metrics().items()])
        except sqlite3.Error as exc:
            raise HistoryError(self._explain(exc)) from None
        assert run is not None
        return run

    # -- reading -----------------------------------------------------------------------
    def runs(self, limit: int = 1000, since_days: float | None = None) -> list[RunRecord]:
        """The most recent runs, oldest first."""
        sql, args = "SELECT * FROM runs", []
        if since_days is not None:
            cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=since_days)
            sql += " WHERE started_at >= ?"
            args.append(cutoff.isoformat(timespec="seconds"))
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        try:
            rows = self.db.execute(sql, args).fetchall()
            return [self._record(row) for row in reversed(rows)]
        except sqlite3.Error as exc:
            raise HistoryError(self._explain(exc)) from None

    def _record(self, row: sqlite3.Row) -> RunRecord:
        stages = [StageFigures(stage=s["stage"], impl=s["impl"], wall_s=s["wall_s"],
                               cpu_s=s["cpu_s"], items=s["items"], workers=s["workers"],
                               worker_reason=s["worker_reason"], peak_rss_mb=s["peak_rss_mb"],
                               cached=bool(s["cached"]), wait_s=s["wait_s"] or 0.0)
                  for s in self.db.execute(RUN_STAGES, (row["id"],))]
        fields = [f.name for f in dataclasses.fields(ProviderFigures)]
        providers = [ProviderFigures(**{k: p[k] for k in fields})
                     for p in self.db.execute(RUN_PROVIDERS, (row["id"],))]
        rec = RunRecord(
            run_id=row["run_id"], started_at=row["started_at"], status=row["status"],
            error=row["error"], input=row["input"], input_hash=row["input_hash"],
            media_s=row["media_s"], segments=row["segments"], profile=row["profile"],
            implementations=json.loads(row["implementations"]),
            versions=json.loads(row["versions"]), config_hash=row["config_hash"],
            machine_class=row["machine_class"], machine=json.loads(row["machine"]),
            wall_s=row["wall_s"], cpu_s=row["cpu_s"], peak_rss_mb=row["peak_rss_mb"],
            cost_usd=row["cost_usd"], stages=stages, providers=providers,
            quality=json.loads(row["quality"]), timeline=json.loads(row["timeline"]),
            run_dir=row["run_dir"])
        rec.regressions = json.loads(row["regressions"] or "[]")  # type: ignore[attr-defined]
        rec.health = row["health"]  # type: ignore[attr-defined]
        return rec

    def metric_values(self, metric: str, impl: str, profile: str, machine_class: str,
                      window: int, media_s: tuple[float, float] | None = None,
                      input_hash: str | None = None) -> list[float]:
        """The metric's values in the last ``window`` successful runs of the same kind (of
        media from ``media_s[0]`` to ``media_s[1]`` seconds long, or of the input with
        ``input_hash``, when given)."""
        key = (metric, impl, profile, machine_class)
        if input_hash is not None:
            rows = self.db.execute(RECENT_VALUES_OF_INPUT, (*key, input_hash, window))
        elif media_s is not None:
            rows = self.db.execute(RECENT_VALUES_OF_LENGTH, (*key, *media_s, window))
        else:
            rows = self.db.execute(RECENT_VALUES, (*key, window))
        return [row[0] for row in rows if row[0] is not None]

    def keys(self) -> list[tuple[str, str, str, str]]:
        """Every (metric, impl, profile, machine class) some successful run has a value for."""
        return [tuple(r) for r in self.db.execute(
            "SELECT DISTINCT m.metric, m.impl, r.profile, r.machine_class FROM metrics m"
            " JOIN runs r ON r.id = m.run WHERE r.status = 'ok'")]

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
