"""The results tables: their DDL, the conventions of their keys, and migrations of old databases.

:data:`DATASET_ROW` is the image name of split-level values in ``scores``; :data:`REFERENCES`
names the kinds of reference rows. Other modules add their tables through
:meth:`llbench.store.database.Store.ensure_schema`.
"""

from __future__ import annotations

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


class MigrationsMixin:
    """Bringing databases written by older versions up to date (run once per :class:`Store`)."""

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
