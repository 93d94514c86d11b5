"""User-study scores (``study_scores``, ``study_pairs``): computed by ``llbench study score``,
read by reports."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import Any

from llbench.store.encoding import _encode, _finite_or_none


class StudiesMixin:
    """The ``study_scores`` and ``study_pairs`` methods of :class:`~llbench.store.database.Store`."""

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
