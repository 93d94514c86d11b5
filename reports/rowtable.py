"""A report's rows as a :class:`~llbench.reports.tables.Table` (ranks among measured rows,
the caption), the papers' published values as rows below the measured ones, and the rows as
a long frame for figures and exports."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from llbench.reports.names import metric_name, unit
from llbench.reports.published import Published
from llbench.reports.records import Cell, Column, Row
from llbench.reports.tables import MARKS, Table, dataset_label, mark_best_two


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
        mark_best_two(table, col, present, hb)
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


# -- frames ----------------------------------------------------------------------------------------
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
