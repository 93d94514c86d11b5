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

:class:`Store` holds the connection and transaction handling; its methods for each family of
tables come from mixins: :mod:`~llbench.store.runs` (runs, items, artifacts),
:mod:`~llbench.store.scores` (scores, split contexts), :mod:`~llbench.store.references`,
:mod:`~llbench.store.trainings`, :mod:`~llbench.store.claims` and :mod:`~llbench.store.studies`;
the DDL and migrations are in :mod:`~llbench.store.schema`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llbench.store.claims import ClaimsMixin
from llbench.store.references import ReferencesMixin
from llbench.store.runs import RunsMixin
from llbench.store.schema import DATASET_ROW, REFERENCES, SCHEMA, MigrationsMixin
from llbench.store.scores import ScoresMixin
from llbench.store.studies import StudiesMixin
from llbench.store.trainings import TrainingsMixin

__all__ = ["DATASET_ROW", "REFERENCES", "SCHEMA", "Store"]


class Store(
    RunsMixin,
    ScoresMixin,
    ClaimsMixin,
    StudiesMixin,
    ReferencesMixin,
    TrainingsMixin,
    MigrationsMixin,
):
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
