"""``llbench report``: the stored results as a table (with statistics and published numbers)
and figures.

:func:`build_report` selects the rows (:mod:`llbench.reports.rows`: one per run identity, seeds
aggregated, limited runs left out unless asked), computes the paired tests against a baseline
(:mod:`llbench.reports.statistics`), adds the papers' published values
(:mod:`llbench.reports.published`) and returns a :class:`Report` whose ``table`` renders in every
format; :func:`llbench.reports.paper.build_paper_table` does the same in a seed paper's layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from llbench.pluginhost.host import PluginHost, get_host
from llbench.reports.baseline import compare_to_baseline, find_row
from llbench.reports.names import dataset_name, metric_name
from llbench.reports.plugininfo import directions, expected_config_fn, metric_order
from llbench.reports.published import Published, load_published
from llbench.reports.records import Column, Row, Selection
from llbench.reports.reportfigures import (
    plugin_figures,
    qualitative_figures,
    report_figures,
    training_labels,
)
from llbench.reports.rows import select_rows
from llbench.reports.rowtable import (
    caption,
    long_frame,
    published_row,
    table_from_rows,
    with_published_rows,
)
from llbench.reports.tables import Table, failure_notes
from llbench.store.frames import runs_frame

__all__ = [
    "Report",
    "build_report",
    "caption",
    "describe_selection",
    "directions",
    "expected_config_fn",
    "long_frame",
    "metric_order",
    "plugin_figures",
    "published_row",
    "qualitative_figures",
    "report_figures",
    "report_table",
    "select_for",
    "table_from_rows",
    "training_labels",
    "with_published_rows",
]


@dataclass
class Report:
    """A table with the rows and runs behind it."""

    table: Table
    rows: list[Row]
    columns: list[Column]
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    baseline: Row | None = None
    published: Published | None = None


def build_report(
    *,
    home: str | Path | None = None,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    runs: Sequence[str] | None = None,
    baseline: str | None = None,
    published: bool = False,
    include_limited: bool = False,
    intervals: bool = True,
    seed: int = 0,
    host: PluginHost | None = None,
) -> Report:
    """The results table of the stored runs; see the module docstring."""
    host = host or get_host(home)
    dirs = directions(host)
    sel = select_for(host, home, methods, datasets, metrics, runs, include_limited, seed)
    base = None
    if baseline:
        base = find_row(sel.rows, baseline)
        compare_to_baseline(sel.rows, base, sel.columns, dirs, seed=seed)
    pub = None
    rows = list(sel.rows)
    if published:
        pub = load_published(host)
        rows = with_published_rows(rows, sel.columns, pub)
    table = table_from_rows(rows, sel.columns, dirs, baseline=base, intervals=intervals)
    frame = long_frame(sel.rows)
    table.notes.extend(sel.notes)
    table.notes.extend(_failure_notes(frame, home, sel, methods, datasets))
    table.notes.extend(_segmenter_notes(host, home, sel))
    return Report(table, rows, sel.columns, frame, sel.notes, base, pub)


def _segmenter_notes(host: PluginHost, home: str | Path | None, sel: Selection) -> list[str]:
    """Which segmenter (and weights) made the task columns, read from the stored contexts."""
    from llbench import paths
    from llbench.engine.contexts import describe_segmenters
    from llbench.store.database import Store

    names = list(dict.fromkeys(m for _, m in sel.columns))
    task = [m for m in names if m in host.registry("metric") and host.metric(m).kind == "task"]
    keys = [r.key for row in sel.rows if row.kind != "published" for r in row.runs]
    if not task or not keys:
        return []
    stored = Store(paths.home(home)).contexts_of(keys)
    used = describe_segmenters(
        sorted({c for per in stored.values() for m, c in per.items() if m in task})
    )
    if not used:
        return []
    what = ", ".join(metric_name(m) for m in task)
    if len(used) == 1:
        return [f"{what}: segmenter {used[0]}."]
    return [f"{what}: the rows were scored with different segmenters: {'; '.join(used)}."]


def select_for(
    host: PluginHost,
    home: str | Path | None,
    methods: Sequence[str] | None,
    datasets: Sequence[str] | None,
    metrics: Sequence[str] | None,
    runs: Sequence[str] | None,
    include_limited: bool,
    seed: int,
) -> Selection:
    """The stored rows to show, with the plugins' default configs and metric order."""
    return select_rows(
        home=home,
        methods=methods,
        datasets=datasets,
        metrics=metrics,
        runs=runs,
        include_limited=include_limited,
        expected_config=expected_config_fn(host),
        metric_order=metric_order(host),
        seed=seed,
    )


def report_table(
    *,
    home: str | Path | None = None,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    host: PluginHost | None = None,
    **options: Any,
) -> tuple[Table, pd.DataFrame]:
    """The table and its long frame (``label, method, dataset, metric, value, ...``)."""
    rep = build_report(
        home=home, methods=methods, datasets=datasets, metrics=metrics, host=host, **options
    )
    return rep.table, rep.frame


# -- notes -----------------------------------------------------------------------------------------
def _failure_notes(
    frame: pd.DataFrame,
    home,
    sel: Selection,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
) -> list[str]:
    """Notes on failed images and metrics of the runs shown, and on runs in which every image
    failed (they have no scores, so no row: the note says why they are missing)."""
    runs = runs_frame(home=home)
    if runs.empty:
        return failure_notes(frame, None)
    wanted = pd.Series(True, index=runs.index)
    if methods:
        wanted &= runs["method"].str.lower().isin({m.lower() for m in methods})
    if datasets:
        wanted &= runs["dataset"].str.lower().isin({d.lower() for d in datasets})
    shown = {r.method for r in sel.rows}
    keys = set(frame["run_key"]) if not frame.empty and "run_key" in frame else set()
    everything_failed = wanted & (runs["n_failed"].fillna(0) >= runs["n_images"].fillna(1))
    runs = runs[runs["method"].isin(shown) | runs["key"].isin(keys) | everything_failed]
    return failure_notes(frame, runs)


def describe_selection(rep: Report) -> str:
    """One line saying which rows and datasets a report shows."""
    datasets = sorted({dataset_name(c[0]) for c in rep.columns})
    return f"{len(rep.rows)} rows on {', '.join(datasets) or 'no dataset'}"
