"""`llbench report`, `llbench export` and `llbench runs`: reading stored results."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from llbench.cli.common import console, fail, split_list, state


# -- report and runs ------------------------------------------------------------------------------
@click.command()
@click.option(
    "--format",
    "fmt",
    default="md",
    show_default=True,
    type=click.Choice(["md", "latex", "html", "csv"]),
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the table here.")
@click.option("--method", "methods", help="Comma-separated methods (default: all).")
@click.option("--dataset", "datasets", help="Comma-separated datasets (default: all).")
@click.option("--metric", "metrics", help="Comma-separated metrics (default: all).")
@click.option(
    "--figures",
    "fig_dir",
    type=click.Path(file_okay=False),
    help="Folder for figures (bars per metric, training curves).",
)
@click.option(
    "--figure-format", default="png", show_default=True, type=click.Choice(["png", "svg", "pdf"])
)
@click.pass_context
def report(ctx, fmt, output, methods, datasets, metrics, fig_dir, figure_format) -> None:
    """Render stored results as a paper-style table (and figures)."""
    from llbench.reports.report import report_figures, report_table

    st = state(ctx)
    table, frame = report_table(
        home=st.home,
        methods=split_list(methods),
        datasets=split_list(datasets),
        metrics=split_list(metrics),
    )
    if not table.methods:
        fail(
            "no finished runs match; run `llbench run --method lime --dataset synthetic` first",
            code=1,
        )
    text = table.render(fmt)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    if fmt == "md" and not output:
        console.print(table.to_rich())
        for note in table.notes:
            console.print(note)
    elif not output:
        click.echo(text)
    if fig_dir:
        for p in report_figures(frame, fig_dir, home=st.home, fmt=figure_format):
            console.print(f"wrote {p}")
    _study_tables(st.home)


def _study_tables(home: Path) -> None:
    try:
        from llbench.study import study_results_frame
    except ImportError:
        return
    frame = study_results_frame(home)
    if frame is None or frame.empty:
        return
    console.print(
        "[bold]User studies[/] (2AFC: Thurstone Case V scores in JOD; rating: mean opinion score; 95% CI; see the unit column)"
    )
    console.print(frame.to_string(index=False))


@click.command()
@click.option(
    "--format", "fmt", default="csv", show_default=True, type=click.Choice(["csv", "jsonl"])
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File (default stdout).")
@click.option("--method", "methods", help="Comma-separated methods (default: all).")
@click.option("--dataset", "datasets", help="Comma-separated datasets (default: all).")
@click.option("--metric", "metrics", help="Comma-separated metrics (default: all).")
@click.option("--all-runs", is_flag=True, help="Every finished run, not only the latest ones.")
@click.pass_context
def export(ctx, fmt, output, methods, datasets, metrics, all_runs) -> None:
    """Export every per-image score (long form: one row per run, image and metric)."""
    from llbench.store.frames import scores_frame

    frame = scores_frame(
        split_list(methods),
        split_list(datasets),
        split_list(metrics),
        home=state(ctx).home,
        latest=not all_runs,
    )
    text = (
        frame.to_csv(index=False) if fmt == "csv" else frame.to_json(orient="records", lines=True)
    )
    if output:
        Path(output).write_text(text, encoding="utf-8")
        console.print(f"wrote {len(frame)} rows to {output}")
    else:
        click.echo(text, nl=False)


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs(ctx, as_json: bool) -> None:
    """List stored runs with their status and progress."""
    from llbench.store.frames import runs_frame

    frame = runs_frame(home=state(ctx).home)
    if as_json:
        click.echo(frame.to_json(orient="records", indent=1))
        return
    if frame.empty:
        console.print("no runs stored yet")
        return
    t = Table(title="llbench runs")
    for col in (
        "key",
        "method",
        "dataset",
        "split",
        "status",
        "done",
        "n_images",
        "n_failed",
        "device",
    ):
        t.add_column(col)
    for r in frame.itertuples():
        t.add_row(
            r.key,
            r.method,
            r.dataset,
            r.split,
            r.status,
            str(r.done),
            str(r.n_images),
            str(r.n_failed),
            str(r.device),
        )
    console.print(t)


COMMANDS = [report, export, runs]
