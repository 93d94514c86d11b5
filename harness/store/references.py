"""Reference rows (``references``): the task scores of the un-enhanced dark inputs and of the
normal-light images, shown above the methods and never ranked; their values live in ``scores``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from llbench.store.encoding import _encode
from llbench.store.schema import REFERENCES
from llbench.store.scores import _write_split


class ReferencesMixin:
    """The ``references`` methods of :class:`~llbench.store.database.Store`."""

    def references(self) -> list[sqlite3.Row]:
        return self.query('SELECT * FROM "references" ORDER BY created')

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
