"""The results database: one SQLite file (WAL mode) in the llbench home.

Tables: ``runs`` (one row per run key, with config and provenance), ``items`` (one row per image of
a run, with the enhanced file and its hash), ``scores`` (one value per run, image and metric;
image ``*`` holds split-level values such as mIoU or FLOPs), ``artifacts`` (files a run made),
``trainings`` and ``train_log`` (training runs and their loss curves), ``references`` (reference
rows: the task scores of the un-enhanced dark inputs and of the normal-light images, which a
table shows above the methods and never ranks; their values live in ``scores`` under the
reference's key).

Every write is one short ``BEGIN IMMEDIATE`` transaction with ``INSERT OR REPLACE`` on natural
keys, so concurrent processes on one home never lose or duplicate rows, and an interrupted run
keeps everything it finished. Other modules add their tables through :meth:`Store.ensure_schema`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DATASET_ROW = "*"
#: Reference rows by kind, with the name tables show for them.
REFERENCES = {"input": "(dark input)", "reference": "(normal light)"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    dataset TEXT NOT NULL,
    split TEXT NOT NULL,
    status TEXT NOT NULL,
    n_images INTEGER,
    n_failed INTEGER DEFAULT 0,
    config TEXT,
    seed INTEGER,
    weights TEXT,
    weights_hash TEXT,
    manifest_hash TEXT,
    out_dir TEXT,
    provenance TEXT,
    started REAL,
    finished REAL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS items (
    run_key TEXT NOT NULL,
    image TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    output TEXT,
    sha256 TEXT,
    seconds REAL,
    PRIMARY KEY (run_key, image)
);
CREATE TABLE IF NOT EXISTS scores (
    run_key TEXT NOT NULL,
    image TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_key, image, metric)
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT,
    PRIMARY KEY (run_key, kind, path)
);
CREATE TABLE IF NOT EXISTS trainings (
    key TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    dataset TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT,
    seed INTEGER,
    weights TEXT,
    weights_hash TEXT,
    provenance TEXT,
    started REAL,
    finished REAL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS split_contexts (
    run_key TEXT NOT NULL,
    metric TEXT NOT NULL,
    context TEXT NOT NULL,
    PRIMARY KEY (run_key, metric)
);
CREATE TABLE IF NOT EXISTS "references" (
    key TEXT PRIMARY KEY,
    which TEXT NOT NULL,
    dataset TEXT NOT NULL,
    split TEXT NOT NULL,
    n_images INTEGER,
    manifest_hash TEXT,
    provenance TEXT,
    created REAL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    host TEXT,
    pid INTEGER,
    since REAL,
    heartbeat REAL
);
CREATE TABLE IF NOT EXISTS study_scores (
    study TEXT NOT NULL,
    condition TEXT NOT NULL,
    kind TEXT,
    score REAL,
    ci_low REAL,
    ci_high REAL,
    unit TEXT,
    observers INTEGER,
    answers INTEGER,
    settings TEXT,
    answers_seen INTEGER,
    computed REAL,
    PRIMARY KEY (study, condition)
);
CREATE TABLE IF NOT EXISTS study_pairs (
    study TEXT NOT NULL,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    diff REAL,
    ci_low REAL,
    ci_high REAL,
    PRIMARY KEY (study, a, b)
);
CREATE TABLE IF NOT EXISTS train_log (
    train_key TEXT NOT NULL,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (train_key, step, name)
);
"""


class Store:
    """Access to ``<home>/llbench.db``. Safe to use from several processes at once."""

    def __init__(self, home: str | Path):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.path = self.home / "llbench.db"
        self._local = threading.local()
        self.ensure_schema(SCHEMA)
        self._migrate_reference_rows()

    # -- connection --------------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """This thread's connection (WAL, 60 s busy timeout, autocommit outside transactions)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (``BEGIN IMMEDIATE``), committed or rolled back."""
        conn = self.connect()
        for attempt in range(20):
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:  # pragma: no cover - heavy contention only
                if "locked" not in str(exc) or attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def ensure_schema(self, ddl: str) -> None:
        with self.transaction() as conn:
            for statement in ddl.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self.connect().execute(sql, tuple(params)).fetchall()

    # -- runs --------------------------------------------------------------------------------
    def get_run(self, key: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM runs WHERE key = ?", (key,))
        return rows[0] if rows else None

    def start_run(self, key: str, **fields: Any) -> None:
        """Create the run row, or mark an existing one running again (fields kept unless given)."""
        fields = {k: _encode(v) for k, v in fields.items()}
        with self.transaction() as conn:
            exists = conn.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone()
            if exists:
                sets = ", ".join(f"{k} = ?" for k in fields)
                conn.execute(
                    f"UPDATE runs SET status = 'running', error = NULL{', ' + sets if sets else ''} "
                    "WHERE key = ?",
                    (*fields.values(), key),
                )
            else:
                cols = ["key", "status", *fields]
                conn.execute(
                    f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    (key, "running", *fields.values()),
                )

    def finish_run(self, key: str, status: str, error: str | None = None, **fields: Any) -> None:
        fields = {k: _encode(v) for k, v in fields.items()}
        sets = "".join(f", {k} = ?" for k in fields)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE runs SET status = ?, error = ?, finished = ?{sets} WHERE key = ?",
                (status, error, time.time(), *fields.values(), key),
            )

    def done_items(self, key: str) -> dict[str, sqlite3.Row]:
        rows = self.query("SELECT * FROM items WHERE run_key = ?", (key,))
        return {r["image"]: r for r in rows}

    def record_item(
        self,
        key: str,
        image: str,
        status: str,
        scores: Mapping[str, float] | None = None,
        error: str | None = None,
        output: str | None = None,
        sha256: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Write one image's outcome and scores in a single transaction."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO items (run_key, image, status, error, output, sha256, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, image, status, error, output, sha256, seconds),
            )
            conn.execute("DELETE FROM scores WHERE run_key = ? AND image = ?", (key, image))
            conn.executemany(
                "INSERT OR REPLACE INTO scores (run_key, image, metric, value) VALUES (?, ?, ?, ?)",
                [(key, image, m, _finite_or_none(v)) for m, v in (scores or {}).items()],
            )

    def record_scores(self, key: str, image: str, scores: Mapping[str, float]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO scores (run_key, image, metric, value) VALUES (?, ?, ?, ?)",
                [(key, image, m, _finite_or_none(v)) for m, v in scores.items()],
            )

    def record_split_scores(
        self, key: str, scores: Mapping[str, float], contexts: Mapping[str, str]
    ) -> None:
        """Split-level scores of run (or reference row) ``key`` with the context each was made
        in (:mod:`llbench.engine.contexts`)."""
        with self.transaction() as conn:
            _write_split(conn, key, scores, contexts)

    def add_artifact(self, key: str, kind: str, path: str, sha256: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO artifacts (run_key, kind, path, sha256) VALUES (?, ?, ?, ?)",
                (key, kind, path, sha256),
            )

    def delete_run(self, key: str) -> None:
        with self.transaction() as conn:
            for table, col in (
                ("items", "run_key"),
                ("scores", "run_key"),
                ("split_contexts", "run_key"),
                ("artifacts", "run_key"),
                ("runs", "key"),
            ):
                conn.execute(f"DELETE FROM {table} WHERE {col} = ?", (key,))

    def scored_metrics(self, key: str, contexts: Mapping[str, str] | None = None) -> set[str]:
        """Every metric with at least one stored value for run ``key``; a metric named in
        ``contexts`` only if it was scored in that context (see :mod:`llbench.engine.contexts`)."""
        rows = self.query("SELECT DISTINCT metric FROM scores WHERE run_key = ?", (key,))
        names = {r["metric"] for r in rows}
        if contexts:
            stored = {
                r["metric"]: r["context"]
                for r in self.query("SELECT * FROM split_contexts WHERE run_key = ?", (key,))
            }
            names = {n for n in names if n not in contexts or stored.get(n) == contexts[n]}
        return names

    def contexts_of(self, keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """``{key: {metric: context}}`` stored for the runs (or reference rows) ``keys``."""
        keys = list(keys)
        out: dict[str, dict[str, str]] = {}
        for i in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            part = keys[i : i + 500]
            for r in self.query(
                f"SELECT * FROM split_contexts WHERE run_key IN ({','.join('?' * len(part))})",
                part,
            ):
                out.setdefault(r["run_key"], {})[r["metric"]] = r["context"]
        return out

    def metrics_by_image(self, key: str) -> dict[str, set[str]]:
        """``{image: {metric, ...}}`` of the values stored for run ``key``."""
        out: dict[str, set[str]] = {}
        for r in self.query("SELECT image, metric FROM scores WHERE run_key = ?", (key,)):
            out.setdefault(r["image"], set()).add(r["metric"])
        return out

    def image_scores(self, key: str, image: str) -> dict[str, float | None]:
        rows = self.query(
            "SELECT metric, value FROM scores WHERE run_key = ? AND image = ?", (key, image)
        )
        return {r["metric"]: r["value"] for r in rows}

    def summary_scores(self, key: str) -> dict[str, float]:
        """Per metric: the mean over images, or the split-level value where there is one."""
        means = {
            r["metric"]: r["v"]
            for r in self.query(
                "SELECT metric, AVG(value) AS v FROM scores WHERE run_key = ? AND image != ? "
                "GROUP BY metric",
                (key, DATASET_ROW),
            )
        }
        means.update(self.image_scores(key, DATASET_ROW))
        return means

    # -- claims ------------------------------------------------------------------------------
    def claim(self, key: str, holder: str, host: str, pid: int, stale_after: float = 120.0):
        """Take the claim on ``key`` (a run or training) for ``holder``; return None when taken,
        else the row of the live holder that has it. A claim whose process is gone (same host)
        or whose heartbeat is older than ``stale_after`` seconds is taken over."""
        import os

        now = time.time()
        with self.transaction() as conn:
            row = conn.execute("SELECT * FROM claims WHERE key = ?", (key,)).fetchone()
            if row is not None and row["holder"] != holder:
                alive = now - (row["heartbeat"] or 0) < stale_after
                if alive and row["host"] == host and row["pid"]:
                    try:
                        os.kill(int(row["pid"]), 0)
                    except ProcessLookupError:
                        alive = False
                    except PermissionError:
                        pass
                if alive:
                    return dict(row)
            conn.execute(
                "INSERT OR REPLACE INTO claims (key, holder, host, pid, since, heartbeat) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, holder, host, pid, now, now),
            )
        return None

    def heartbeat(self, key: str, holder: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE claims SET heartbeat = ? WHERE key = ? AND holder = ?",
                (time.time(), key, holder),
            )

    def release(self, key: str, holder: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM claims WHERE key = ? AND holder = ?", (key, holder))

    # -- reading runs for reports ------------------------------------------------------------
    def finished_runs(self, keys: Iterable[str] | None = None) -> list[sqlite3.Row]:
        """Finished runs (all, or those of ``keys``) with config, seed, weights and provenance."""
        if keys is None:
            return self.query("SELECT * FROM runs WHERE status = 'finished' ORDER BY started")
        keys = list(keys)
        marks = ",".join("?" * len(keys))
        return self.query(
            f"SELECT * FROM runs WHERE status = 'finished' AND key IN ({marks}) ORDER BY started",
            keys,
        )

    def find_runs(self, prefix: str) -> list[sqlite3.Row]:
        """Runs whose key starts with ``prefix`` (what ``llbench runs show KEY`` accepts)."""
        return self.query(
            "SELECT * FROM runs WHERE key LIKE ? ORDER BY started", (prefix.replace("%", "") + "%",)
        )

    def references(self) -> list[sqlite3.Row]:
        return self.query('SELECT * FROM "references" ORDER BY created')

    def image_values(self, keys: Iterable[str]) -> list[sqlite3.Row]:
        """``run_key, image, metric, value`` of the images of ``keys`` that finished (status ok),
        split-level rows excluded."""
        keys = list(keys)
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        return self.query(
            f"SELECT s.run_key, s.image, s.metric, s.value FROM scores s "
            f"JOIN items i ON i.run_key = s.run_key AND i.image = s.image "
            f"WHERE s.run_key IN ({marks}) AND i.status = 'ok' AND s.value IS NOT NULL "
            f"AND s.image != ?",
            [*keys, DATASET_ROW],
        )

    def split_values(self, keys: Iterable[str]) -> list[sqlite3.Row]:
        """``run_key, metric, value`` of the split-level scores of ``keys``."""
        keys = list(keys)
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        return self.query(
            f"SELECT run_key, metric, value FROM scores WHERE run_key IN ({marks}) AND image = ?",
            [*keys, DATASET_ROW],
        )

    def items(self, key: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM items WHERE run_key = ? ORDER BY image", (key,))

    def artifacts(self, key: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM artifacts WHERE run_key = ? ORDER BY kind, path", (key,))

    def score_rows(self, key: str) -> list[sqlite3.Row]:
        """Every stored score of run ``key`` (``image, metric, value``)."""
        return self.query(
            "SELECT image, metric, value FROM scores WHERE run_key = ? ORDER BY image, metric",
            (key,),
        )

    def forget_outputs(self, key: str) -> None:
        """Mark every image of run ``key`` as to be enhanced again (``--force``) while keeping
        its stored scores: the items go, the scores and the run row stay."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM items WHERE run_key = ?", (key,))

    def restore_scores(self, key: str, rows: Iterable[tuple[str, str, float | None]]) -> None:
        """Put back ``(image, metric, value)`` scores of run ``key`` that were not recomputed,
        without replacing values that exist now."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO scores (run_key, image, metric, value) VALUES (?, ?, ?, ?)",
                [(key, image, metric, value) for image, metric, value in rows],
            )

    # -- user-study scores (computed by `llbench study score`, read by reports) ---------------
    def save_study_scores(
        self,
        study: str,
        rows: Iterable[Mapping[str, Any]],
        settings: Mapping[str, Any],
        answers_seen: int,
        pairs: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Replace the stored global scores (and pairwise differences) of ``study``."""
        now = time.time()
        with self.transaction() as conn:
            conn.execute("DELETE FROM study_scores WHERE study = ?", (study,))
            conn.execute("DELETE FROM study_pairs WHERE study = ?", (study,))
            conn.executemany(
                "INSERT INTO study_scores (study, condition, kind, score, ci_low, ci_high, unit, "
                "observers, answers, settings, answers_seen, computed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        study,
                        r["condition"],
                        r.get("kind"),
                        _finite_or_none(r.get("score")),
                        _finite_or_none(r.get("ci_low")),
                        _finite_or_none(r.get("ci_high")),
                        r.get("unit"),
                        r.get("observers"),
                        r.get("answers"),
                        _encode(dict(settings)),
                        answers_seen,
                        now,
                    )
                    for r in rows
                ],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO study_pairs (study, a, b, diff, ci_low, ci_high) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        study,
                        p["a"],
                        p["b"],
                        _finite_or_none(p.get("diff")),
                        _finite_or_none(p.get("ci_low")),
                        _finite_or_none(p.get("ci_high")),
                    )
                    for p in pairs
                ],
            )

    def study_scores(self, study: str | None = None) -> list[sqlite3.Row]:
        if study is None:
            return self.query("SELECT * FROM study_scores ORDER BY study, score DESC")
        return self.query(
            "SELECT * FROM study_scores WHERE study = ? ORDER BY score DESC", (study,)
        )

    def study_pairs(self, study: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM study_pairs WHERE study = ? ORDER BY a, b", (study,))

    # -- reference rows ----------------------------------------------------------------------
    def get_reference(self, key: str) -> sqlite3.Row | None:
        rows = self.query('SELECT * FROM "references" WHERE key = ?', (key,))
        return rows[0] if rows else None

    def record_reference(
        self,
        key: str,
        which: str,
        scores: Mapping[str, float],
        contexts: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        """Store a reference row (``which`` in :data:`REFERENCES`) and its split-level scores
        (with their contexts)."""
        if which not in REFERENCES:
            raise ValueError(f"unknown reference {which!r}; one of {sorted(REFERENCES)}")
        fields = {k: _encode(v) for k, v in fields.items()}
        cols = ["key", "which", "created", *fields]
        with self.transaction() as conn:
            conn.execute(
                f'INSERT OR REPLACE INTO "references" ({", ".join(cols)}) '
                f"VALUES ({', '.join('?' * len(cols))})",
                (key, which, time.time(), *fields.values()),
            )
            _write_split(conn, key, scores, contexts or {})

    def _migrate_reference_rows(self) -> None:
        """Databases written before reference rows had their own table stored them as runs
        named ``(dark input)`` / ``(normal light)``: move those rows (once)."""
        names = {v: k for k, v in REFERENCES.items()}
        marks = ", ".join("?" * len(names))
        old = self.query(f"SELECT * FROM runs WHERE method IN ({marks})", tuple(names))
        if not old:
            return
        with self.transaction() as conn:
            for r in old:
                conn.execute(
                    'INSERT OR REPLACE INTO "references" (key, which, dataset, split, n_images, '
                    "manifest_hash, provenance, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r["key"],
                        names[r["method"]],
                        r["dataset"],
                        r["split"],
                        r["n_images"],
                        r["manifest_hash"],
                        r["provenance"],
                        r["started"],
                    ),
                )
                conn.execute("DELETE FROM runs WHERE key = ?", (r["key"],))

    # -- training ----------------------------------------------------------------------------
    def get_training(self, key: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM trainings WHERE key = ?", (key,))
        return rows[0] if rows else None

    def upsert_training(self, key: str, **fields: Any) -> None:
        fields = {k: _encode(v) for k, v in fields.items()}
        with self.transaction() as conn:
            exists = conn.execute("SELECT 1 FROM trainings WHERE key = ?", (key,)).fetchone()
            if exists:
                sets = ", ".join(f"{k} = ?" for k in fields)
                conn.execute(f"UPDATE trainings SET {sets} WHERE key = ?", (*fields.values(), key))
            else:
                cols = ["key", *fields]
                conn.execute(
                    f"INSERT INTO trainings ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    (key, *fields.values()),
                )

    def log_training(self, key: str, step: int, values: Mapping[str, float]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO train_log (train_key, step, name, value) VALUES (?, ?, ?, ?)",
                [(key, int(step), n, _finite_or_none(v)) for n, v in values.items()],
            )


def _write_split(
    conn: sqlite3.Connection, key: str, scores: Mapping[str, float], contexts: Mapping[str, str]
) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO scores (run_key, image, metric, value) VALUES (?, ?, ?, ?)",
        [(key, DATASET_ROW, m, _finite_or_none(v)) for m, v in scores.items()],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO split_contexts (run_key, metric, context) VALUES (?, ?, ?)",
        [(key, m, contexts[m]) for m in scores if m in contexts],
    )


def _encode(v: Any) -> Any:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, sort_keys=True, default=str)
    if isinstance(v, Path):
        return str(v)
    return v


def _finite_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None
