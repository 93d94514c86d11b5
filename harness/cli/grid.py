"""`llbench run` with several methods, datasets or seeds: the plan, the run, the summary."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from llbench.cli.common import console, err_console


def _table(rows: list[dict[str, Any]], title: str) -> Table:
    t = Table(title=title)
    for col in rows[0]:
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(*[escape(str(v)) for v in r.values()])
    return t


def run_grid_command(
    methods: Sequence[str],
    datasets: Sequence[str],
    seeds: Sequence[int],
    *,
    executor: str,
    workers: int,
    executor_options: Sequence[str],
    dry_run: bool,
    **options: Any,
) -> None:
    from llbench.api.executors import parse_options
    from llbench.engine.grid import plan_rows, run_grid

    result = run_grid(
        methods,
        datasets,
        seeds,
        executor=executor,
        workers=workers,
        executor_options=parse_options(executor_options),
        dry_run=dry_run,
        progress=not dry_run,
        **options,
    )
    rows = plan_rows(result)
    if dry_run:
        trains = {r["training"] for r in rows if "trains on" in r["training"]}
        images = sum(r["to enhance"] + r["to rescore"] for r in rows)
        console.print(_table(rows, f"plan: {len(rows)} cell(s)"))
        console.print(
            f"{len(trains)} training(s) to run, "
            f"{sum(r['status'] == 'reused' for r in rows)} cell(s) reused, "
            f"{images} image(s) to enhance or rescore; nothing was computed (--dry-run)",
            markup=False,
        )
        return
    summary = [
        {
            "method": c.method,
            "dataset": c.dataset,
            "seed": c.seed,
            "status": c.status,
            **({k: f"{v:.4g}" for k, v in c.result.scores.items()} if c.result else {}),
            "failed images": c.result.n_failed if c.result else "-",
            "error": c.error or "",
        }
        for c in result.cells
    ]
    columns = sorted(
        {k for r in summary for k in r},
        key=lambda k: list(summary[0]).index(k) if k in summary[0] else 99,
    )
    summary = [{k: r.get(k, "") for k in columns} for r in summary]
    console.print(_table(summary, f"grid on {result.executor.get('executor', executor)}"))
    failed = result.failed()
    if failed:
        for c in failed:
            err_console.print(f"{c.label}: {c.error}", markup=False)
        sys.exit(1)
