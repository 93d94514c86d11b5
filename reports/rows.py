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

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llbench import paths
from llbench.reports import statistics as stats
from llbench.reports.baseline import compare_to_baseline, find_row
from llbench.reports.labels import config_diff, identity, row_label
from llbench.reports.names import dataset_name, method_name
from llbench.reports.records import (
    REFERENCE_METHODS,
    REFERENCE_ORDER,
    Cell,
    Column,
    Row,
    RunRecord,
    Selection,
    load_runs,
    resolve_run,
)
from llbench.store.database import Store

__all__ = [
    "REFERENCE_METHODS",
    "REFERENCE_ORDER",
    "Cell",
    "Column",
    "Row",
    "RunRecord",
    "Selection",
    "compare_to_baseline",
    "config_diff",
    "find_row",
    "identity",
    "is_finite",
    "load_runs",
    "order_rows",
    "resolve_run",
    "row_label",
    "select_rows",
]


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


# -- small helpers ---------------------------------------------------------------------------------
def is_finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)
