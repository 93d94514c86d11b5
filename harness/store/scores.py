"""Scores: per-image values, split-level values (image :data:`~llbench.store.schema.DATASET_ROW`)
with the context each was made in (``split_contexts``), and the reads reports and resumes use."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

from llbench.store.encoding import _finite_or_none
from llbench.store.schema import DATASET_ROW


class ScoresMixin:
    """The ``scores`` and ``split_contexts`` methods of :class:`~llbench.store.database.Store`."""

    # -- writing -----------------------------------------------------------------------------
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

    def restore_scores(self, key: str, rows: Iterable[tuple[str, str, float | None]]) -> None:
        """Put back ``(image, metric, value)`` scores of run ``key`` that were not recomputed,
        without replacing values that exist now."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO scores (run_key, image, metric, value) VALUES (?, ?, ?, ?)",
                [(key, image, metric, value) for image, metric, value in rows],
            )

    # -- reading -----------------------------------------------------------------------------
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

    def score_rows(self, key: str) -> list[sqlite3.Row]:
        """Every stored score of run ``key`` (``image, metric, value``)."""
        return self.query(
            "SELECT image, metric, value FROM scores WHERE run_key = ? ORDER BY image, metric",
            (key,),
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
