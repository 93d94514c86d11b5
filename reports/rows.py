"""The rows of a results table: which stored runs make up each row, and each cell's statistics.

**Run identity.** A row is one distinct (method, weights, preset, config): the weights are
``official`` (the paper's released file), ``trained`` (on a training dataset and manifest, with
the row's config), a user's ``file`` (by hash) or none. Runs of one identity that differ only in
their seed are the same row: each cell shows the mean over seeds +- their standard deviation
(:mod:`llbench.reports.statistics`). Among runs of one identity, dataset, split and seed the
most recently finished one counts (an older run of changed code, for example).

**Labels** read ``<method> (<parts>)``: ``official``, the training dataset, a weights file's
name, the preset (``quick``), config keys that differ from the default and preset
(``gamma=0.7``), ``seeds 0-2``, and for limited runs ``3 of 64 images``.

**What is left out by default** (a note says how many and how to include them): runs limited
with ``--limit`` (``include_limited``). Quick-preset runs are shown, labelled ``quick`` and
flagged in the caption, since on CPU they are often all there is. Runs named with ``runs``
are shown whatever they are.

**Reference rows** (the dark input, the normal-light images) come first and are never ranked:
the ``references`` table (task metrics of the inputs and of the ground truth) and runs of the
``input`` method (the input scored like any output) make up the ``(dark input)`` row.

**Order**: reference rows, then methods in the order given (``methods``) or alphabetically by
method name, then by label.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llbench import paths
from llbench.errors import ConfigError
from llbench.reports import statistics as stats
from llbench.reports.names import dataset_name, method_name
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


# -- identity and labels ---------------------------------------------------------------------------
def identity(rec: RunRecord, shared: Collection[tuple] = ()) -> tuple:
    """What makes runs one row. Runs trained on their own test dataset's training split share a
    row across datasets ("trained per dataset"), unless their training also served runs on
    other datasets (``shared``: ``(train_dataset, train_manifest)``), whose row they join."""
    if rec.reference is not None:
        return ("reference", rec.reference)
    trained_on = (rec.train_dataset, rec.train_manifest)
    if (
        rec.weights_kind == "trained"
        and rec.train_dataset == rec.dataset
        and trained_on not in shared
    ):
        weights: tuple = ("trained", "own training split")
    elif rec.weights_kind == "trained":
        weights = ("trained", rec.train_dataset, rec.train_manifest)
    elif rec.weights_kind in ("official", "file"):
        weights = (rec.weights_kind, rec.weights_hash)
    else:
        weights = ("none",)
    return (
        rec.method,
        weights,
        rec.preset,
        json.dumps(rec.config, sort_keys=True, default=str),
        rec.limit,
    )


def config_diff(config: Mapping[str, Any], default: Mapping[str, Any] | None) -> list[str]:
    """``key=value`` for every (dotted) config entry that differs from ``default``."""
    if default is None:
        return []
    a, b = _flat(config), _flat(default)
    return [f"{k}={_short(a[k])}" for k in sorted(a) if k not in b or a[k] != b[k]]


def row_label(
    runs: Sequence[RunRecord],
    default_config: Mapping[str, Any] | None,
    split_size: int | None = None,
) -> tuple[str, set[str]]:
    """The readable label of a row and its flags (``quick``, ``limited``, ``config``)."""
    first = runs[0]
    if first.reference is not None:
        return REFERENCES[first.reference], set()
    parts: list[str] = []
    flags: set[str] = set()
    if first.weights_kind == "official":
        parts.append("official")
    elif first.weights_kind == "trained" and first.train_dataset:
        own = all(r.train_dataset == r.dataset for r in runs)
        if own and len({r.dataset for r in runs}) > 1:
            parts.append("trained per dataset")
        else:
            parts.append(dataset_name(first.train_dataset))
    elif first.weights_kind == "file":
        stem = Path(first.weights or "weights").stem
        parts.append(f"{stem} {str(first.weights_hash or '')[:6]}".strip())
    if first.preset:
        parts.append(first.preset)
        if first.preset == "quick":
            flags.add("quick")
    diff = config_diff(first.config, default_config)
    if diff:
        parts.append(", ".join(diff))
        flags.add("config")
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    if len(seeds) > 1:
        parts.append(_seed_text(seeds))
    elif seeds and seeds[0] != 0:
        parts.append(f"seed {seeds[0]}")
    if first.limit is not None:
        total = f" of {split_size}" if split_size else ""
        parts.append(f"{first.n_images}{total} images")
        flags.add("limited")
    name = method_name(first.method)
    return (f"{name} ({', '.join(parts)})" if parts else name), flags


def _seed_text(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ",".join(map(str, seeds))


# -- selecting and aggregating ---------------------------------------------------------------------
def select_rows(
    *,
    home: str | Path | None = None,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    runs: Sequence[str] | None = None,
    include_limited: bool = False,
    expected_config: Callable[[str, str | None], Mapping[str, Any] | None] | None = None,
    metric_order: Sequence[str] | None = None,
    seed: int = 0,
) -> Selection:
    """Collect the rows (one per run identity) and columns of a results table."""
    home_dir = paths.home(home)
    store = Store(home_dir)
    records = load_runs(home_dir, runs)
    notes: list[str] = []
    if methods:
        wanted = {m.lower() for m in methods}
        records = [
            r
            for r in records
            if r.method.lower() in wanted or r.reference is not None or r.method in wanted
        ]
    if datasets:
        wanted_d = {d.lower() for d in datasets}
        records = [r for r in records if r.dataset.lower() in wanted_d]
    excluded = []
    if not runs and not include_limited:
        excluded = [r for r in records if r.limit is not None]
        records = [r for r in records if r.limit is None]
        if excluded:
            n_runs = len(excluded)
            notes.append(
                f"{n_runs} run(s) limited with --limit are left out "
                f"({', '.join(sorted({f'{r.method} on {r.dataset}' for r in excluded}))}); "
                "add --include-limited to show them, marked with their image counts."
            )
    shared = {
        (r.train_dataset, r.train_manifest)
        for r in records
        if r.weights_kind == "trained" and r.train_dataset != r.dataset
    }
    for r in records:
        r.identity = identity(r, shared)
    # one run per (identity, dataset, split, seed): the latest
    latest: dict[tuple, RunRecord] = {}
    for r in sorted(records, key=lambda r: r.finished):
        latest[(r.identity, r.dataset, r.split, r.seed)] = r
    chosen = list(latest.values())
    per_image, split_level = _values(store, [r.key for r in chosen])
    sizes = _split_sizes(records)
    groups: dict[tuple, list[RunRecord]] = {}
    for r in chosen:
        groups.setdefault(r.identity, []).append(r)
    rows: list[Row] = []
    for group in groups.values():
        defaults = expected_config(group[0].method, group[0].preset) if expected_config else None
        label, flags = row_label(group, defaults, sizes.get((group[0].dataset, group[0].split)))
        kind = "reference" if group[0].reference is not None else "measured"
        row = Row(label=label, method=group[0].method, kind=kind, runs=group, flags=flags)
        _fill_cells(row, per_image, split_level, metrics, seed)
        if row.cells:
            rows.append(row)
    rows = _merge_same_label(rows)
    rows = order_rows(rows, methods)
    columns = _columns(rows, datasets, metrics, metric_order)
    return Selection(rows, columns, notes, excluded)


def _values(store: Store, keys: list[str]):
    per_image: dict[str, dict[str, dict[str, float]]] = {}
    for r in store.image_values(keys):
        per_image.setdefault(r["run_key"], {}).setdefault(r["metric"], {})[r["image"]] = float(
            r["value"]
        )
    split_level: dict[str, dict[str, float]] = {}
    for r in store.split_values(keys):
        if r["value"] is not None:
            split_level.setdefault(r["run_key"], {})[r["metric"]] = float(r["value"])
    return per_image, split_level


def _fill_cells(row: Row, per_image, split_level, metrics, seed: int) -> None:
    by_col: dict[Column, list[RunRecord]] = {}
    for r in row.runs:
        names = set(per_image.get(r.key, {})) | set(split_level.get(r.key, {}))
        for m in names:
            if metrics and m not in metrics:
                continue
            by_col.setdefault((r.column_dataset, m), []).append(r)
    for col, runs in by_col.items():
        metric = col[1]
        seeds_img = [per_image.get(r.key, {}).get(metric) for r in runs]
        if all(s for s in seeds_img):
            means = [float(np.mean(list(s.values()))) for s in seeds_img]
            mean, std = stats.seed_summary(means)
            avg = stats.average_over_seeds(seeds_img)
            ci = stats.bootstrap_ci(list(avg.values()), seed=seed) if avg else None
            row.cells[col] = Cell(
                value=mean,
                ci=ci,
                std=std if len(runs) > 1 else None,
                n_seeds=len(runs),
                n_images=len(avg) if len(runs) > 1 else len(seeds_img[0]),
                per_image=avg,
                runs=[r.key for r in runs],
            )
        else:
            vals = [split_level.get(r.key, {}).get(metric) for r in runs]
            vals = [v for v in vals if v is not None]
            if not vals:
                continue
            mean, std = stats.seed_summary(vals)
            row.cells[col] = Cell(
                value=mean,
                std=std if len(vals) > 1 else None,
                n_seeds=len(vals),
                n_images=max(r.n_images for r in runs) or None,
                runs=[r.key for r in runs],
            )


def _merge_same_label(rows: list[Row]) -> list[Row]:
    """Reference rows of one kind from several sources become one row; measured rows whose
    labels collide get the start of their config hash appended."""
    out: dict[str, Row] = {}
    for row in rows:
        if row.label in out and row.kind == "reference":
            target = out[row.label]
            for col, cell in row.cells.items():
                target.cells.setdefault(col, cell)
            target.runs += row.runs
            continue
        if row.label in out:
            row.label = f"{row.label} [{row.runs[0].key[:6]}]"
        out[row.label] = row
    return list(out.values())


def order_rows(rows: list[Row], methods: Sequence[str] | None = None) -> list[Row]:
    """References (dark input, normal light), then methods in the given order or by name,
    then by label."""
    given = {m.lower(): i for i, m in enumerate(methods or [])}

    def key(row: Row):
        if row.kind == "reference":
            which = row.runs[0].reference if row.runs else None
            return (0, REFERENCE_ORDER.index(which) if which in REFERENCE_ORDER else 9, "", "")
        pos = given.get(row.method.lower(), len(given))
        return (1, pos, method_name(row.method).lower(), row.label.lower())

    return sorted(rows, key=key)


def _columns(rows, datasets, metrics, metric_order) -> list[Column]:
    cols = {c for row in rows for c in row.cells}
    d_given = {d.lower(): i for i, d in enumerate(datasets or [])}
    m_rank = {m: i for i, m in enumerate(list(metrics or []) + list(metric_order or []))}

    def key(c: Column):
        base = c[0].split("[")[0]
        return (
            d_given.get(base.lower(), len(d_given)),
            dataset_name(base).lower(),
            c[0],
            m_rank.get(c[1], len(m_rank)),
            c[1],
        )

    return sorted(cols, key=key)


def _split_sizes(records: Sequence[RunRecord]) -> dict[tuple[str, str], int]:
    sizes: dict[tuple[str, str], int] = {}
    for r in records:
        if r.limit is None and r.reference is None and r.n_images:
            sizes[(r.dataset, r.split)] = max(sizes.get((r.dataset, r.split), 0), r.n_images)
    return sizes


# -- the paired test against a baseline ------------------------------------------------------------
def find_row(rows: Sequence[Row], name: str) -> Row:
    """The row ``name`` designates: its label, or its method (id or display name) when that
    method has one row; case-insensitive."""
    n = name.strip().lower()
    exact = [r for r in rows if r.label.lower() == n]
    if exact:
        return exact[0]
    by_method = [
        r
        for r in rows
        if r.kind == "measured" and (r.method.lower() == n or method_name(r.method).lower() == n)
    ]
    if len(by_method) == 1:
        return by_method[0]
    if by_method:
        labels = "; ".join(r.label for r in by_method)
        raise ConfigError(f"--baseline {name!r} matches several rows ({labels}); give a label")
    labels = "; ".join(r.label for r in rows if r.kind == "measured")
    raise ConfigError(f"--baseline {name!r} matches no row; rows: {labels or 'none'}")


def compare_to_baseline(
    rows: Sequence[Row],
    baseline: Row,
    columns: Sequence[Column],
    higher_better: Mapping[str, bool | None],
    *,
    seed: int = 0,
) -> None:
    """Paired tests of every measured row against ``baseline``, column by column, with Holm's
    correction over the rows of a column; marks significant differences on the cells."""
    for col in columns:
        base = baseline.cells.get(col)
        if base is None or not base.per_image:
            continue
        tested: list[Cell] = []
        for row in rows:
            cell = row.cells.get(col)
            if row is baseline or row.kind != "measured" or cell is None or not cell.per_image:
                continue
            res = stats.paired_test(cell.per_image, base.per_image, seed=seed)
            if res is not None:
                cell.paired = res
                tested.append(cell)
        adjusted = stats.holm([c.paired.p for c in tested])
        hb = higher_better.get(col[1])
        for cell, p in zip(tested, adjusted, strict=True):
            res = cell.paired
            cell.paired = stats.PairedResult(res.n, res.mean_diff, res.ci, res.p, p)
            if hb is None or not cell.paired.significant():
                continue
            better = (res.mean_diff > 0) == bool(hb)
            cell.mark = "better" if better else "worse"


# -- small helpers ---------------------------------------------------------------------------------
def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    text = json.dumps(v, default=str) if not isinstance(v, str) else v
    return text if len(text) <= 24 else text[:21] + "..."


def is_finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)
