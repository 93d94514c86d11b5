"""The records a report is built from: each stored run (or reference record) as a
:class:`RunRecord`, read from the store by :func:`load_runs`, and the :class:`Row`,
:class:`Cell` and :class:`Selection` of a results table (built by
:mod:`llbench.reports.rows`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llbench import paths
from llbench.errors import ConfigError
from llbench.reports import statistics as stats
from llbench.store.database import REFERENCES, Store
from llbench.store.frames import run_fields

#: Methods whose runs are a reference row (``input``: the low-light image unchanged).
REFERENCE_METHODS = {"input": "input"}
REFERENCE_ORDER = list(REFERENCES)

Column = tuple[str, str]


@dataclass
class RunRecord:
    """One finished run (or reference record) as a report sees it."""

    key: str
    method: str
    dataset: str
    split: str
    seed: int | None
    preset: str | None
    limit: int | None
    n_images: int
    n_failed: int
    finished: float
    weights_kind: str
    weights_hash: str | None
    weights: str | None
    train_dataset: str | None
    train_manifest: str | None
    config: dict[str, Any]
    reference: str | None = None
    identity: tuple = ()
    train_key: str | None = None

    @property
    def column_dataset(self) -> str:
        return self.dataset if self.split == "test" else f"{self.dataset}[{self.split}]"


@dataclass
class Cell:
    """One (row, column): the value and what is known about its uncertainty."""

    value: float
    ci: tuple[float, float] | None = None
    std: float | None = None
    n_seeds: int = 1
    n_images: int | None = None
    per_image: dict[str, float] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    paired: stats.PairedResult | None = None
    mark: str | None = None  # "better" / "worse" than the baseline (significant)
    approx: bool = False  # published value whose protocol differs from the metric


@dataclass
class Row:
    label: str
    method: str
    kind: str  # "reference", "measured" or "published"
    runs: list[RunRecord] = field(default_factory=list)
    cells: dict[Column, Cell] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    parent: str | None = None  # published rows: the measured row they belong to
    source: str = ""  # published rows: paper and table

    @property
    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.runs if r.seed is not None})


@dataclass
class Selection:
    """The rows and columns of a table, with notes on what was left out."""

    rows: list[Row]
    columns: list[Column]
    notes: list[str] = field(default_factory=list)
    excluded: list[RunRecord] = field(default_factory=list)


# -- reading runs ----------------------------------------------------------------------------------
def load_runs(home: str | Path | None = None, keys: Sequence[str] | None = None) -> list[RunRecord]:
    """Finished runs (or the runs ``keys`` name, by unique prefix) and reference records."""
    home_dir = paths.home(home)
    store = Store(home_dir)
    if keys:
        rows = [resolve_run(store, k) for k in keys]
    else:
        rows = store.finished_runs()
    out = []
    for row in rows:
        f = run_fields(row, home_dir)
        rec = RunRecord(
            key=row["key"],
            method=row["method"],
            dataset=row["dataset"],
            split=row["split"],
            seed=f["seed"],
            preset=f["preset"],
            limit=f["limit"],
            n_images=int(row["n_images"] or 0),
            n_failed=int(row["n_failed"] or 0),
            finished=float(row["finished"] or row["started"] or 0),
            weights_kind=f["weights_kind"],
            weights_hash=f["weights_hash"],
            weights=f["weights"],
            train_dataset=f["train_dataset"],
            train_manifest=f["train_manifest"],
            config=f["config"],
            reference=REFERENCE_METHODS.get(row["method"]),
            train_key=f["train_key"],
        )
        out.append(rec)
    if not keys:
        for r in _reference_rows(store, out):
            out.append(
                RunRecord(
                    key=r["key"],
                    method=REFERENCES[r["which"]],
                    dataset=r["dataset"],
                    split=r["split"],
                    seed=None,
                    preset=None,
                    limit=None,
                    n_images=int(r["n_images"] or 0),
                    n_failed=0,
                    finished=float(r["created"] or 0),
                    weights_kind="none",
                    weights_hash=None,
                    weights=None,
                    train_dataset=None,
                    train_manifest=None,
                    config={},
                    reference=r["which"],
                )
            )
    return out


def _reference_rows(store: Store, runs: Sequence[RunRecord]) -> list[Any]:
    """One reference row per (dataset, split, bound), never several averaged as if they were
    seeds: the newest made with the segmenter (and weights) of the newest run of that dataset
    and split that has task scores, else the newest."""
    from llbench.engine.contexts import segmenter_of

    refs = store.references()  # ordered by creation
    contexts = store.contexts_of([r.key for r in runs] + [r["key"] for r in refs])
    wanted: dict[tuple[str, str], str] = {}
    for run in sorted(runs, key=lambda r: r.finished):
        seg = next(filter(None, map(segmenter_of, contexts.get(run.key, {}).values())), None)
        if seg is not None:
            wanted[(run.dataset, run.split)] = seg
    chosen: dict[tuple, tuple[Any, bool]] = {}
    for r in refs:  # oldest first: a newer row replaces an older one unless only that one matches
        slot = (r["dataset"], r["split"], r["which"])
        want = wanted.get(slot[:2])
        match = want is not None and want in {
            segmenter_of(c) for c in contexts.get(r["key"], {}).values()
        }
        if slot not in chosen or match or not chosen[slot][1]:
            chosen[slot] = (r, match)
    return [r for r, _ in chosen.values()]


def resolve_run(store: Store, key: str):
    """The run whose key is ``key`` or starts with it; errors say what matched."""
    found = store.find_runs(key)
    exact = [r for r in found if r["key"] == key]
    if exact:
        return exact[0]
    if not found:
        raise ConfigError(f"no stored run has a key starting with {key!r}; see `llbench runs`")
    if len(found) > 1:
        keys = ", ".join(r["key"] for r in found[:8])
        raise ConfigError(f"run key {key!r} is ambiguous: {keys}")
    return found[0]
