"""Run rows and what a run leaves behind: ``runs``, ``items`` (one row per image, written with
that image's scores) and ``artifacts``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import Any

from llbench.store.encoding import _encode, _finite_or_none


class RunsMixin:
    """The ``runs``, ``items`` and ``artifacts`` methods of :class:`~llbench.store.database.Store`."""

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

    # -- items -------------------------------------------------------------------------------
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

    def items(self, key: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM items WHERE run_key = ? ORDER BY image", (key,))

    def forget_outputs(self, key: str) -> None:
        """Mark every image of run ``key`` as to be enhanced again (``--force``) while keeping
        its stored scores: the items go, the scores and the run row stay."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM items WHERE run_key = ?", (key,))

    # -- artifacts ---------------------------------------------------------------------------
    def add_artifact(self, key: str, kind: str, path: str, sha256: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO artifacts (run_key, kind, path, sha256) VALUES (?, ?, ?, ?)",
                (key, kind, path, sha256),
            )

    def artifacts(self, key: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM artifacts WHERE run_key = ? ORDER BY kind, path", (key,))
