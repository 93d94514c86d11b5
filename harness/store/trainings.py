"""Trainings: one row per training key (``trainings``) and its loss curves (``train_log``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from llbench.store.encoding import _encode, _finite_or_none


class TrainingsMixin:
    """The ``trainings`` and ``train_log`` methods of :class:`~llbench.store.database.Store`."""

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
