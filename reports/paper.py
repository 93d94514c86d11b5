"""A seed paper's table rebuilt from stored runs: ``llbench report --preset skf-table1``.

The layout (rows as printed, columns as (dataset, llbench metric), order) comes from the
``[[tables]]`` of the paper plugin's ``published.toml`` (:mod:`llbench.reports.published`).
Each printed row whose method has stored runs becomes a measured row labelled as printed,
followed by the printed values (``[published]``) with measured minus published; a row with no
stored run shows the printed values only. When a method has several run identities, each cell
takes the first that measured it in this order: official weights, trained on the column's own
dataset, trained elsewhere, no weights, a weights file; a note names the identities used.
Reference rows (dark input, normal light) come first, as in the papers' "Input" rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from llbench.pluginhost.host import PluginHost, get_host
from llbench.reports.baseline import compare_to_baseline, find_row
from llbench.reports.plugininfo import directions
from llbench.reports.published import load_published
from llbench.reports.records import Row
from llbench.reports.report import Report, select_for
from llbench.reports.rowtable import long_frame, published_row, table_from_rows

PRIORITY = {"official": 0, "trained-own": 1, "trained": 2, "none": 3, "file": 4}


def build_paper_table(
    preset: str,
    *,
    home: str | Path | None = None,
    runs: Sequence[str] | None = None,
    baseline: str | None = None,
    include_limited: bool = False,
    intervals: bool = True,
    seed: int = 0,
    host: PluginHost | None = None,
) -> Report:
    host = host or get_host(home)
    pub = load_published(host)
    layout = pub.table(preset)
    dirs = directions(host)
    methods = [m for _, m in layout.rows]
    datasets = list(dict.fromkeys(d for d, _ in layout.columns))
    metrics = list(dict.fromkeys(m for _, m in layout.columns))
    sel = select_for(host, home, methods, datasets, metrics, runs, include_limited, seed)
    columns = list(layout.columns)
    rows: list[Row] = [r for r in sel.rows if r.kind == "reference"]
    notes: list[str] = []
    for label, method in layout.rows:
        if method in ("input", "dark"):
            prow = published_row(
                method, None, columns, pub, layout.paper, f"{label} [published]", layout.name
            )
            if prow is not None:
                rows.append(prow)
            continue
        candidates = [r for r in sel.rows if r.kind == "measured" and r.method == method]
        merged = _merge(label, method, candidates, columns)
        if merged is not None:
            rows.append(merged)
            used = sorted({c for c in merged.source.split("\n") if c})
            notes.append(f"{label}: measured by {'; '.join(used)}.")
        prow = published_row(
            method,
            merged.label if merged is not None else None,
            columns,
            pub,
            layout.paper,
            f"{label} [published]",
            layout.name,
        )
        if prow is not None:
            rows.append(prow)
    base = None
    if baseline:
        base = find_row(rows, baseline)
        compare_to_baseline(rows, base, columns, dirs, seed=seed)
    extra = [f"Layout of {layout.paper}, {layout.name}"]
    if layout.caption:
        extra.append(f"printed caption: {layout.caption}")
    table = table_from_rows(
        rows, columns, dirs, baseline=base, intervals=intervals, caption_extra=extra
    )
    for col in columns:
        if col in layout.approximate:
            for r in rows:
                if r.kind == "published" and col in r.cells:
                    table.approximate.add((r.label, col))
    table.title = f"{layout.paper}: {layout.name}"
    table.notes.extend(sel.notes + notes + list(layout.notes))
    return Report(
        table,
        rows,
        columns,
        long_frame([r for r in rows if r.kind != "published"]),
        notes,
        base,
        pub,
    )


def _merge(label: str, method: str, candidates: list[Row], columns) -> Row | None:
    """One measured row from a method's run identities, cell by cell in :data:`PRIORITY`."""
    if not candidates:
        return None
    row = Row(label=label, method=method, kind="measured")
    sources: set[str] = set()
    for col in columns:
        best = None
        for cand in candidates:
            if col not in cand.cells:
                continue
            rank = _priority(cand, col[0])
            if best is None or rank < best[0]:
                best = (rank, cand)
        if best is None:
            continue
        cand = best[1]
        row.cells[col] = cand.cells[col]
        row.runs += [r for r in cand.runs if r not in row.runs]
        row.flags |= cand.flags
        sources.add(cand.label)
    if not row.cells:
        return None
    if "quick" in row.flags:
        row.label = f"{label} (quick)"
    row.source = "\n".join(sorted(sources))
    return row


def _priority(row: Row, dataset: str) -> int:
    kinds = {r.weights_kind for r in row.runs}
    if "official" in kinds:
        return PRIORITY["official"]
    if "trained" in kinds:
        own = any(r.train_dataset == dataset.split("[")[0] for r in row.runs)
        return PRIORITY["trained-own" if own else "trained"]
    if "none" in kinds:
        return PRIORITY["none"]
    return PRIORITY["file"]
