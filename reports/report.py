"""``llbench report``: the stored results as a table (with statistics and published numbers)
and figures.

:func:`build_report` selects the rows (:mod:`llbench.reports.rows`: one per run identity, seeds
aggregated, limited runs left out unless asked), computes the paired tests against a baseline
(:mod:`llbench.reports.statistics`), adds the papers' published values
(:mod:`llbench.reports.published`) and returns a :class:`Report` whose ``table`` renders in every
format; :func:`llbench.reports.paper.build_paper_table` does the same in a seed paper's layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from llbench.errors import ConfigError
from llbench.pluginhost.host import PluginHost, get_host
from llbench.reports import figures
from llbench.reports.names import dataset_name, metric_name, unit
from llbench.reports.published import Published, load_published
from llbench.reports.rows import (
    Cell,
    Column,
    Row,
    Selection,
    compare_to_baseline,
    find_row,
    select_rows,
)
from llbench.reports.tables import MARKS, Table, dataset_label, failure_notes
from llbench.store.frames import runs_frame, training_log


def directions(host: PluginHost | None = None) -> dict[str, bool | None]:
    host = host or get_host()
    return {s.name: s.higher_better for s in host.registry("metric")}


def metric_order(host: PluginHost | None = None) -> list[str]:
    """Registration order puts core metrics first; used to order a table's columns."""
    host = host or get_host()
    preferred = [
        "psnr",
        "psnr_y",
        "ssim",
        "ssim_rgb",
        "ssim_skimage",
        "ssim_matlab",
        "mse",
        "psnr_gtmean",
        "ssim_gtmean",
        "ssim_rgb_gtmean",
        "lpips",
        "niqe",
        "pi",
        "musiq",
        "brisque",
        "unique",
        "loe",
        "ceiq",
        "miou",
        "mpa",
        "params",
        "flops",
        "time",
    ]
    rest = [n for n in host.registry("metric").names() if n not in preferred]
    return preferred + rest


def expected_config_fn(host: PluginHost):
    """``(method, preset) -> config`` a run would have without a user config (None if unknown)."""
    from llbench.config import effective_config

    registry = host.registry("method")

    def expected(method: str, preset: str | None) -> dict[str, Any] | None:
        if method not in registry:
            return None
        spec = registry.get(method)
        try:
            return effective_config(spec.default_config, spec.presets, preset, None)
        except ConfigError:
            return None

    return expected


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


# -- rows to a table -------------------------------------------------------------------------------
def table_from_rows(
    rows: Sequence[Row],
    columns: Sequence[Column],
    higher_better: dict[str, bool | None],
    *,
    baseline: Row | None = None,
    intervals: bool = True,
    approximate: set[tuple[str, Column]] | None = None,
    diffs: dict[tuple[str, Column], float] | None = None,
    caption_extra: Sequence[str] = (),
) -> Table:
    """A :class:`Table` of ``rows``: ranks among measured rows only, a caption that states the
    image counts, units, directions and the statistics shown."""
    values: dict[tuple[str, Column], float] = {}
    cells: dict[tuple[str, Column], Cell] = {}
    diffs = dict(diffs or {})
    approx = set(approximate or set())
    for row in rows:
        for col, cell in row.cells.items():
            if col in columns:
                values[(row.label, col)] = cell.value
                cells[(row.label, col)] = cell
        if row.kind == "published":
            approx |= {(row.label, c) for c, cell in row.cells.items() if cell.approx}
    for row in rows:
        if row.kind == "published" and row.parent:
            for col, cell in row.cells.items():
                measured = values.get((row.parent, col))
                if measured is not None:
                    diffs[(row.label, col)] = measured - cell.value
    table = Table(
        [r.label for r in rows],
        list(columns),
        values,
        dict(higher_better),
        cells=cells,
        kinds={r.label: r.kind for r in rows},
        diffs=diffs,
        approximate=approx,
        baseline=baseline.label if baseline else None,
        show_intervals=intervals,
    )
    for col in columns:
        hb = higher_better.get(col[1])
        present = [
            (r.label, values[(r.label, col)])
            for r in rows
            if r.kind == "measured" and (r.label, col) in values
        ]
        if hb is None or len(present) < 2:
            continue
        distinct = sorted({round(v, 10) for _, v in present}, reverse=hb)
        for label, v in present:
            rank = distinct.index(round(v, 10)) + 1
            if rank <= 2:
                table.ranks[(label, col)] = rank
    table.caption = caption(rows, columns, higher_better, baseline, intervals, caption_extra)
    return table


def caption(
    rows: Sequence[Row],
    columns: Sequence[Column],
    higher_better: dict[str, bool | None],
    baseline: Row | None,
    intervals: bool,
    extra: Sequence[str] = (),
) -> str:
    """What a reader needs to read the table: image counts, directions, units, statistics."""
    counts: dict[str, set[int]] = {}
    for row in rows:
        if row.kind != "measured" and row.kind != "reference":
            continue
        for col, cell in row.cells.items():
            if cell.n_images and col in columns:
                counts.setdefault(col[0], set()).add(int(cell.n_images))
    parts = []
    if counts:
        text = ", ".join(
            f"{dataset_label(d)} {'/'.join(map(str, sorted(n)))}" for d, n in counts.items()
        )
        parts.append(f"Mean over the test images (images: {text})")
    metrics = list(dict.fromkeys(m for _, m in columns))
    up = [metric_name(m) for m in metrics if higher_better.get(m) is True]
    down = [metric_name(m) for m in metrics if higher_better.get(m) is False]
    if up:
        parts.append(f"\u2191 higher is better ({', '.join(up)})")
    if down:
        parts.append(f"\u2193 lower is better ({', '.join(down)})")
    units = [f"{metric_name(m)} in {unit(m)}" for m in metrics if unit(m)]
    if units:
        parts.append("; ".join(units))
    parts.append("best in bold, second underlined; reference rows are not ranked")
    if intervals and any(c.ci for r in rows for c in r.cells.values()):
        parts.append("[lo, hi]: 95% bootstrap interval of the mean over images")
    if any(c.n_seeds > 1 for r in rows for c in r.cells.values()):
        parts.append("\u00b1: standard deviation over seeds")
    if baseline is not None:
        parts.append(
            f"{MARKS['better']}/{MARKS['worse']}: significantly better/worse than "
            f"{baseline.label} (two-sided Wilcoxon signed-rank test on per-image scores, "
            "Holm-corrected over the rows of a column, p < 0.05)"
        )
    if any(r.kind == "published" for r in rows):
        parts.append(
            "published rows: the paper's value and (\u0394 measured - published) against the "
            "measured row above; \u2248: the paper's protocol differs from the column's metric"
        )
    if any("quick" in r.flags for r in rows):
        parts.append("quick: runs of the shortened quick preset, not the paper's settings")
    if any("limited" in r.flags for r in rows):
        parts.append("rows with an image count ran on the first images only (--limit)")
    parts += [e.rstrip(".") for e in extra]
    return ". ".join(p[0].upper() + p[1:] for p in parts) + "."


def with_published_rows(
    rows: Sequence[Row], columns: Sequence[Column], published: Published
) -> list[Row]:
    """After the last measured row of each method, one row per paper that printed values for
    it in the table's columns."""
    out: list[Row] = []
    measured = [r for r in rows if r.kind == "measured"]
    last_of: dict[str, str] = {r.method: r.label for r in measured}
    for row in rows:
        out.append(row)
        if row.kind != "measured" or last_of.get(row.method) != row.label:
            continue
        for paper in published.papers_for(row.method):
            prow = published_row(row.method, row.label, columns, published, paper)
            if prow is not None:
                out.append(prow)
    return out


def published_row(
    method: str,
    parent: str | None,
    columns: Sequence[Column],
    published: Published,
    paper: str,
    label: str | None = None,
    table: str | None = None,
) -> Row | None:
    """The values ``paper`` printed for ``method`` in ``columns`` (first table first, or only
    ``table``), as a row below ``parent``; None when it printed none."""
    cells: dict[Column, Cell] = {}
    tables: list[str] = []
    for col in columns:
        found = published.lookup(method, col[0], col[1], paper, table)
        if not found:
            continue
        v = found[0]
        cells[col] = Cell(value=v.value, approx=v.approximate)
        if v.table and v.table not in tables:
            tables.append(v.table)
    if not cells:
        return None
    short = paper.split(" (")[0].split(":")[0].strip()
    where = f"{short} {', '.join(tables)}".strip()
    from llbench.reports.names import method_name

    return Row(
        label=label or f"{method_name(method)} [published, {where}]",
        method=method,
        kind="published",
        cells=cells,
        parent=parent,
        source=where,
    )


# -- frames, notes ---------------------------------------------------------------------------------
def long_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """One line per (row, column, run): what figures and exports read."""
    recs = []
    for row in rows:
        for (dataset, metric), cell in row.cells.items():
            for key in cell.runs or [None]:
                recs.append(
                    {
                        "label": row.label,
                        "method": row.method,
                        "kind": row.kind,
                        "dataset": dataset,
                        "metric": metric,
                        "value": cell.value,
                        "ci_low": cell.ci[0] if cell.ci else None,
                        "ci_high": cell.ci[1] if cell.ci else None,
                        "std": cell.std,
                        "n_seeds": cell.n_seeds,
                        "n_images": cell.n_images,
                        "run_key": key,
                    }
                )
    cols = [
        "label",
        "method",
        "kind",
        "dataset",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "std",
        "n_seeds",
        "n_images",
        "run_key",
    ]
    return pd.DataFrame(recs, columns=cols)


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


# -- figures ---------------------------------------------------------------------------------------
def report_figures(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    home: str | Path | None = None,
    fmt: str = "png",
    host: PluginHost | None = None,
    images: Sequence[str] | None = None,
    crop: tuple[int, int, int, int] | None = None,
    rows: Sequence[Row] | None = None,
) -> list[Path]:
    """Bars per metric (with intervals), qualitative grids, training curves labelled by run
    (``rows``: the report's rows, whose trainings are plotted with their labels)."""
    out_dir = Path(out_dir)
    dirs = directions(host)
    written = []
    measured = frame[frame["kind"] != "published"] if "kind" in frame else frame
    for metric in sorted(set(measured["metric"])):
        written.append(
            figures.metric_bars(
                measured, metric, out_dir / f"{metric}.{fmt}", higher_better=dirs.get(metric)
            )
        )
    written += qualitative_figures(measured, out_dir, home=home, fmt=fmt, images=images, crop=crop)
    log = training_log(home=home)
    labels = training_labels(rows) if rows is not None else {}
    if not log.empty and "method" in measured:
        if labels:
            log = log[log["train_key"].isin(set(labels))]
        else:
            log = log[log["method"].isin(set(measured["method"]))]
        if not log.empty:
            written.append(
                figures.training_curves(
                    log, out_dir / f"training.{fmt}", smooth=5, labels=labels or None
                )
            )
    written += plugin_figures(measured, out_dir, home=home, fmt=fmt, host=host, keys=labels)
    return written


def plugin_figures(
    measured: pd.DataFrame,
    out_dir: Path,
    *,
    home: str | Path | None,
    fmt: str,
    host: PluginHost | None,
    keys: Mapping[str, str] | None = None,
) -> list[Path]:
    """Figures plugins draw from their trainings (the ``report_figures`` hook)."""
    from llbench import paths
    from llbench.pluginhost.host import get_host
    from llbench.store.database import Store

    home_dir = paths.home(home)
    methods = set(measured["method"]) if "method" in measured else set()
    rows = Store(home_dir).query("SELECT key, method, dataset, status FROM trainings")
    wanted = (lambda r: r["key"] in keys) if keys else (lambda r: r["method"] in methods)
    trainings = [{**dict(r), "workdir": home_dir / "train" / r["key"]} for r in rows if wanted(r)]
    if not trainings:
        return []
    host = host or get_host(home_dir)
    host.build()
    drawn = host.pm.hook.report_figures(trainings=trainings, out_dir=Path(out_dir), fmt=fmt)
    return [Path(p) for result in drawn for p in (result or [])]


def training_labels(rows: Sequence[Row]) -> dict[str, str]:
    """Training key -> "<row label>, seed N" for the trainings behind the rows shown."""
    out: dict[str, str] = {}
    for row in rows:
        for r in row.runs:
            if r.train_key:
                out[r.train_key] = f"{row.label}, seed {r.seed}"
    return out


def qualitative_figures(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    home: str | Path | None = None,
    fmt: str = "png",
    n_images: int = 3,
    images: Sequence[str] | None = None,
    crop: tuple[int, int, int, int] | None = None,
    metric: str | None = None,
) -> list[Path]:
    """Per dataset, a grid of chosen test images (``images``, else the first ``n_images``
    every row has): the input, every row's output (table order) and the ground truth, each
    tile titled with its score (``metric``, else the first full-reference one stored), and,
    with ``crop`` = (y, x, h, w), a second grid of that zoomed region."""
    from llbench.reports.gallery import collect_gallery

    written = []
    for g in collect_gallery(frame, home=home, images=images, limit=n_images):
        if not g.images:
            continue
        path = Path(out_dir) / f"grid-{g.dataset}.{fmt}"
        written.append(figures.gallery_grid(g, path, metric=metric))
        if crop is not None:
            zoom = Path(out_dir) / f"grid-{g.dataset}-crop.{fmt}"
            written.append(figures.gallery_grid(g, zoom, metric=metric, crop=crop))
    return written


def describe_selection(rep: Report) -> str:
    """One line saying which rows and datasets a report shows."""
    datasets = sorted({dataset_name(c[0]) for c in rep.columns})
    return f"{len(rep.rows)} rows on {', '.join(datasets) or 'no dataset'}"
