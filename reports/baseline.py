"""The paired test of a table's rows against a baseline row: :func:`find_row` picks the
baseline, :func:`compare_to_baseline` tests every measured row against it and marks the
cells that differ significantly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llbench.errors import ConfigError
from llbench.reports import statistics as stats
from llbench.reports.names import method_name
from llbench.reports.records import Cell, Column, Row


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
