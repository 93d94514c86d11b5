"""Study tables in the llbench database (all prefixed ``study_``).

* ``study_studies``: one row per study (kind, seed, texts, folder, how it was built).
* ``study_conditions``: the compared conditions (method names for run-based studies) and where
  their results came from (run keys).
* ``study_images``: the files in the study folder, under random names, with their condition,
  content and sha256: the only files the server will send.
* ``study_items``: what is judged: content plus one (rating) or two (pairwise) condition/file
  pairs, unique per study, content and pair, so adding the same pair twice is a no-op.
* ``study_participants``, ``study_presentations`` (an item was shown to a participant, with the
  side assignment), ``study_answers`` (primary key study, participant, item: an answer is stored
  once; a repeated identical answer is a no-op and a different one is refused).

Every write is one ``BEGIN IMMEDIATE`` transaction (see :class:`llbench.store.database.Store`), and the
checks an answer needs run inside that transaction, so concurrent requests cannot race.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llbench.store.database import Store
from llbench.study.model import Item, Study, StudyError

SCHEMA = """
CREATE TABLE IF NOT EXISTS study_studies (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    seed INTEGER NOT NULL,
    title TEXT,
    instructions TEXT,
    scale_min INTEGER NOT NULL DEFAULT 1,
    scale_max INTEGER NOT NULL DEFAULT 5,
    folder TEXT NOT NULL,
    source TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS study_conditions (
    study TEXT NOT NULL,
    condition TEXT NOT NULL,
    source TEXT,
    PRIMARY KEY (study, condition)
);
CREATE TABLE IF NOT EXISTS study_images (
    study TEXT NOT NULL,
    file TEXT NOT NULL,
    condition TEXT NOT NULL,
    content TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    origin TEXT,
    PRIMARY KEY (study, file),
    UNIQUE (study, condition, content)
);
CREATE TABLE IF NOT EXISTS study_items (
    study TEXT NOT NULL,
    item TEXT NOT NULL,
    position INTEGER NOT NULL,
    content TEXT NOT NULL,
    cond_a TEXT NOT NULL,
    file_a TEXT NOT NULL,
    cond_b TEXT NOT NULL DEFAULT '',
    file_b TEXT NOT NULL DEFAULT '',
    batch TEXT NOT NULL DEFAULT '',
    added REAL NOT NULL,
    PRIMARY KEY (study, item),
    UNIQUE (study, content, cond_a, cond_b)
);
CREATE TABLE IF NOT EXISTS study_participants (
    study TEXT NOT NULL,
    participant TEXT NOT NULL,
    started REAL NOT NULL,
    last_seen REAL,
    PRIMARY KEY (study, participant)
);
CREATE TABLE IF NOT EXISTS study_presentations (
    study TEXT NOT NULL,
    participant TEXT NOT NULL,
    item TEXT NOT NULL,
    swapped INTEGER NOT NULL,
    shown REAL NOT NULL,
    PRIMARY KEY (study, participant, item)
);
CREATE TABLE IF NOT EXISTS study_answers (
    study TEXT NOT NULL,
    participant TEXT NOT NULL,
    item TEXT NOT NULL,
    chosen TEXT,
    rating INTEGER,
    side TEXT,
    left_condition TEXT NOT NULL,
    shown REAL,
    answered REAL NOT NULL,
    PRIMARY KEY (study, participant, item)
);
CREATE INDEX IF NOT EXISTS study_answers_by_study ON study_answers (study, item);
"""

RESPONSE_CAP_S = 600.0
"""Longest time one answer adds to a participant's elapsed time (breaks do not count)."""


@dataclass(frozen=True)
class ImageRow:
    file: str
    condition: str
    content: str
    sha256: str
    origin: str = ""


@dataclass(frozen=True)
class AnswerOutcome:
    """``status``: ``stored``, ``duplicate`` (same answer again), ``conflict`` (a different
    answer exists; the stored one is kept) or ``not_shown`` (the item was never presented)."""

    status: str
    chosen: str | None = None
    rating: int | None = None


class StudyStore:
    """The study tables of ``<home>/llbench.db``."""

    def __init__(self, home: str | Path, store: Store | None = None):
        self.home = Path(home)
        self.store = store or Store(self.home)
        self.store.ensure_schema(SCHEMA)

    def close(self) -> None:
        self.store.close()

    # -- studies ---------------------------------------------------------------------------
    def insert_study(
        self,
        study: Study,
        conditions: dict[str, Any],
        images: Sequence[ImageRow],
        items: Sequence[Item],
    ) -> None:
        now = time.time()
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM study_studies WHERE name = ?", (study.name,)).fetchone():
                raise StudyError(f"study {study.name!r} already exists")
            conn.execute(
                "INSERT INTO study_studies (name, kind, seed, title, instructions, scale_min, "
                "scale_max, folder, source, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    study.name,
                    study.kind,
                    int(study.seed),
                    study.title,
                    study.instructions,
                    int(study.scale_min),
                    int(study.scale_max),
                    _relative(study.folder, self.home),
                    json.dumps(study.source, sort_keys=True, default=str),
                    study.created or now,
                ),
            )
            self._insert_parts(conn, study.name, conditions, images, items, now)

    def add_parts(
        self,
        name: str,
        conditions: dict[str, Any],
        images: Sequence[ImageRow],
        items: Sequence[Item],
    ) -> None:
        with self.store.transaction() as conn:
            self._insert_parts(conn, name, conditions, images, items, time.time())

    def _insert_parts(self, conn, name, conditions, images, items, now) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO study_conditions (study, condition, source) VALUES (?, ?, ?)",
            [(name, c, json.dumps(s, sort_keys=True, default=str)) for c, s in conditions.items()],
        )
        conn.executemany(
            "INSERT INTO study_images (study, file, condition, content, sha256, origin) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(name, im.file, im.condition, im.content, im.sha256, im.origin) for im in images],
        )
        conn.executemany(
            "INSERT INTO study_items (study, item, position, content, cond_a, file_a, cond_b, "
            "file_b, batch, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    name,
                    it.item,
                    it.position,
                    it.content,
                    it.cond_a,
                    it.file_a,
                    it.cond_b or "",
                    it.file_b or "",
                    it.batch,
                    now,
                )
                for it in items
            ],
        )

    def get_study(self, name: str) -> Study | None:
        rows = self.store.query("SELECT * FROM study_studies WHERE name = ?", (name,))
        return _study(rows[0], self.home) if rows else None

    def require_study(self, name: str) -> Study:
        study = self.get_study(name)
        if study is None:
            known = [s.name for s in self.list_studies()]
            raise StudyError(
                f"no study named {name!r} in {self.home}. "
                + (
                    f"Studies: {', '.join(known)}"
                    if known
                    else "Create one with `llbench study create`."
                )
            )
        return study

    def list_studies(self) -> list[Study]:
        rows = self.store.query("SELECT * FROM study_studies ORDER BY created")
        return [_study(r, self.home) for r in rows]

    def conditions(self, name: str) -> dict[str, Any]:
        rows = self.store.query(
            "SELECT condition, source FROM study_conditions WHERE study = ? ORDER BY condition",
            (name,),
        )
        return {r["condition"]: json.loads(r["source"]) if r["source"] else None for r in rows}

    def images(self, name: str) -> dict[str, ImageRow]:
        rows = self.store.query("SELECT * FROM study_images WHERE study = ?", (name,))
        return {
            r["file"]: ImageRow(
                r["file"], r["condition"], r["content"], r["sha256"], r["origin"] or ""
            )
            for r in rows
        }

    def image_file(self, name: str, file: str) -> ImageRow | None:
        rows = self.store.query(
            "SELECT * FROM study_images WHERE study = ? AND file = ?", (name, file)
        )
        if not rows:
            return None
        r = rows[0]
        return ImageRow(r["file"], r["condition"], r["content"], r["sha256"], r["origin"] or "")

    def items(self, name: str) -> list[Item]:
        rows = self.store.query(
            "SELECT * FROM study_items WHERE study = ? ORDER BY position", (name,)
        )
        return [_item(r) for r in rows]

    def get_item(self, name: str, item: str) -> Item | None:
        rows = self.store.query(
            "SELECT * FROM study_items WHERE study = ? AND item = ?", (name, item)
        )
        return _item(rows[0]) if rows else None

    def next_position(self, name: str) -> int:
        row = self.store.query(
            "SELECT COALESCE(MAX(position), -1) + 1 AS n FROM study_items WHERE study = ?", (name,)
        )
        return int(row[0]["n"])

    # -- participants ----------------------------------------------------------------------
    def start_participant(self, name: str, participant: str) -> tuple[float, bool]:
        """Register ``participant`` (once); returns (start time, whether new)."""
        now = time.time()
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT started FROM study_participants WHERE study = ? AND participant = ?",
                (name, participant),
            ).fetchone()
            if row:
                conn.execute(
                    "UPDATE study_participants SET last_seen = ? WHERE study = ? AND participant = ?",
                    (now, name, participant),
                )
                return float(row["started"]), False
            conn.execute(
                "INSERT INTO study_participants (study, participant, started, last_seen) "
                "VALUES (?, ?, ?, ?)",
                (name, participant, now, now),
            )
            return now, True

    def has_participant(self, name: str, participant: str) -> bool:
        return bool(
            self.store.query(
                "SELECT 1 FROM study_participants WHERE study = ? AND participant = ?",
                (name, participant),
            )
        )

    def participants(self, name: str) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT p.participant, p.started, p.last_seen, COUNT(a.item) AS answered, "
            "MAX(a.answered) AS last_answer "
            "FROM study_participants p LEFT JOIN study_answers a "
            "ON a.study = p.study AND a.participant = p.participant "
            "WHERE p.study = ? GROUP BY p.participant ORDER BY p.started",
            (name,),
        )
        return [dict(r) for r in rows]

    def record_presentation(self, name: str, participant: str, item: str, swapped: bool) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO study_presentations (study, participant, item, swapped, "
                "shown) VALUES (?, ?, ?, ?, ?)",
                (name, participant, item, int(swapped), time.time()),
            )
            conn.execute(
                "UPDATE study_participants SET last_seen = ? WHERE study = ? AND participant = ?",
                (time.time(), name, participant),
            )

    def answered_items(self, name: str, participant: str) -> set[str]:
        rows = self.store.query(
            "SELECT item FROM study_answers WHERE study = ? AND participant = ?",
            (name, participant),
        )
        return {r["item"] for r in rows}

    def elapsed(self, name: str, participant: str) -> float:
        """Seconds spent answering: the sum of response times, each capped at 10 minutes."""
        row = self.store.query(
            "SELECT COALESCE(SUM(MIN(MAX(answered - shown, 0), ?)), 0) AS s FROM study_answers "
            "WHERE study = ? AND participant = ? AND shown IS NOT NULL",
            (RESPONSE_CAP_S, name, participant),
        )
        return float(row[0]["s"])

    def record_answer(
        self,
        name: str,
        participant: str,
        item: Item,
        *,
        swapped: bool,
        chosen: str | None = None,
        side: str | None = None,
        rating: int | None = None,
    ) -> AnswerOutcome:
        """Store one answer unless it exists; all checks inside one write transaction."""
        left = item.cond_b if (swapped and item.cond_b) else item.cond_a
        with self.store.transaction() as conn:
            shown = conn.execute(
                "SELECT shown, swapped FROM study_presentations WHERE study = ? AND participant = ? "
                "AND item = ?",
                (name, participant, item.item),
            ).fetchone()
            if shown is None:
                return AnswerOutcome("not_shown")
            prev = conn.execute(
                "SELECT chosen, rating FROM study_answers WHERE study = ? AND participant = ? "
                "AND item = ?",
                (name, participant, item.item),
            ).fetchone()
            if prev is not None:
                same = prev["chosen"] == chosen and prev["rating"] == rating
                return AnswerOutcome(
                    "duplicate" if same else "conflict", prev["chosen"], prev["rating"]
                )
            now = time.time()
            conn.execute(
                "INSERT INTO study_answers (study, participant, item, chosen, rating, side, "
                "left_condition, shown, answered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, participant, item.item, chosen, rating, side, left, shown["shown"], now),
            )
            conn.execute(
                "UPDATE study_participants SET last_seen = ? WHERE study = ? AND participant = ?",
                (now, name, participant),
            )
        return AnswerOutcome("stored", chosen, rating)

    def answers(self, name: str) -> list[dict[str, Any]]:
        """Every answer joined with its item, in answer order."""
        rows = self.store.query(
            "SELECT a.participant, a.item, i.content, i.cond_a, i.cond_b, i.batch, a.chosen, "
            "a.rating, a.side, a.left_condition, a.shown, a.answered "
            "FROM study_answers a JOIN study_items i ON i.study = a.study AND i.item = a.item "
            "WHERE a.study = ? ORDER BY a.answered, a.participant",
            (name,),
        )
        return [dict(r) for r in rows]

    def count_answers(self, name: str) -> int:
        return int(
            self.store.query("SELECT COUNT(*) AS n FROM study_answers WHERE study = ?", (name,))[0][
                "n"
            ]
        )


def _relative(folder: Path, home: Path) -> str:
    """Study folders inside the home are stored relative to it, so a moved home still works."""
    try:
        return Path(folder).resolve().relative_to(home.resolve()).as_posix()
    except ValueError:
        return str(folder)


def _study(r, home: Path) -> Study:
    folder = Path(r["folder"])
    return Study(
        name=r["name"],
        kind=r["kind"],
        seed=int(r["seed"]),
        folder=folder if folder.is_absolute() else home / folder,
        title=r["title"] or "",
        instructions=r["instructions"] or "",
        scale_min=int(r["scale_min"]),
        scale_max=int(r["scale_max"]),
        created=float(r["created"]),
        source=json.loads(r["source"]) if r["source"] else {},
    )


def _item(r) -> Item:
    return Item(
        item=r["item"],
        position=int(r["position"]),
        content=r["content"],
        cond_a=r["cond_a"],
        file_a=r["file_a"],
        cond_b=r["cond_b"] or None,
        file_b=r["file_b"] or None,
        batch=r["batch"] or "",
    )


def existing_pairs(items: Iterable[Item]) -> set[tuple[str, str, str]]:
    return {(it.content, it.cond_a, it.cond_b or "") for it in items}
