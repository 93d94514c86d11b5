"""`llbench report`, `llbench export`, `llbench runs` (and `runs show`), `llbench verify`:
reading stored results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from llbench.cli.common import console, escape, fail, split_list, state


def _multi(values: tuple[str, ...]) -> list[str] | None:
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


def _crop(text: str | None) -> tuple[int, int, int, int] | None:
    if not text:
        return None
    try:
        y, x, h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter("give --crop as Y,X,H,W in pixels, e.g. 100,200,96,96") from None
    return y, x, h, w


# -- report ----------------------------------------------------------------------------------------


def selection_options(command):
    """``--method/-m``, ``--dataset/-d``, ``--metric`` (comma-separated; default: all), with
    the same short forms as ``llbench run``."""
    for option in reversed(
        [
            click.option(
                "--method", "-m", "methods", help="Comma-separated methods (default: all)."
            ),
            click.option(
                "--dataset", "-d", "datasets", help="Comma-separated datasets (default: all)."
            ),
            click.option("--metric", "metrics", help="Comma-separated metrics (default: all)."),
        ]
    ):
        command = option(command)
    return command


@click.command()
@click.option(
    "--format",
    "fmt",
    default=None,
    type=click.Choice(["md", "latex", "html", "csv"]),
    help="Output format. Default: a table on a terminal, Markdown when piped or written to a "
    "file. html writes the full report (tables, figures, per-image gallery, provenance).",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the table here.")
@selection_options
@click.option(
    "--runs",
    "run_keys",
    multiple=True,
    help="Show exactly these runs (keys or unique key prefixes; repeat or comma-separate).",
)
@click.option(
    "--baseline",
    help="Row to test every other row against (label or method name): paired Wilcoxon "
    "signed-rank test on per-image scores, Holm-corrected; significant cells are marked.",
)
@click.option(
    "--published", is_flag=True, help="Add the papers' published values, with the differences."
)
@click.option(
    "--preset",
    "paper_preset",
    help="Rebuild a seed paper's table layout (e.g. skf-table1, sgz-table6, hillie-table1, "
    "mcmt-table1, sllen-table3); `--preset list` lists them.",
)
@click.option(
    "--include-limited",
    is_flag=True,
    help="Also show runs limited with --limit (left out by default; marked with their image count).",
)
@click.option(
    "--intervals/--no-intervals",
    default=True,
    show_default=True,
    help="Show the 95% bootstrap interval of every mean.",
)
@click.option(
    "--figures",
    "fig_dir",
    type=click.Path(file_okay=False),
    help="Folder for figures (bars per metric, qualitative grids, training curves).",
)
@click.option(
    "--figure-format", default="png", show_default=True, type=click.Choice(["png", "svg", "pdf"])
)
@click.option("--images", help="Comma-separated test images for grids and the HTML gallery.")
@click.option("--crop", help="Zoomed region Y,X,H,W for an extra grid of crops.")
@click.option(
    "--embed",
    is_flag=True,
    help="HTML: embed the images in the file instead of a folder beside it.",
)
@click.pass_context
def report(
    ctx,
    fmt,
    output,
    methods,
    datasets,
    metrics,
    run_keys,
    baseline,
    published,
    paper_preset,
    include_limited,
    intervals,
    fig_dir,
    figure_format,
    images,
    crop,
    embed,
) -> None:
    """Render stored results as a paper-style table (and figures, or a full HTML report).

    Rows are run identities: method, weights (official, trained on a dataset, a file), preset
    and config; seeds of one identity aggregate to mean +- standard deviation. Reference rows
    (dark input, normal light) come first and are not ranked.
    """
    from llbench.reports.report import build_report
    from llbench.reports.reportfigures import report_figures

    st = state(ctx)
    if paper_preset and paper_preset.lower() == "list":
        _list_presets()
        return
    options = dict(
        home=st.home,
        runs=_multi(run_keys),
        baseline=baseline,
        include_limited=include_limited,
        intervals=intervals,
    )
    if paper_preset:
        from llbench.reports.paper import build_paper_table

        rep = build_paper_table(paper_preset, **options)
    else:
        rep = build_report(
            methods=split_list(methods),
            datasets=split_list(datasets),
            metrics=split_list(metrics),
            published=published,
            **options,
        )
    table = rep.table
    if not table.methods:
        notes = "".join(f"\n{n}" for n in table.notes)  # e.g. runs in which every image failed
        fail(
            "no finished runs match; run `llbench run --method lime --dataset synthetic` first"
            + notes,
            code=1,
        )
    image_list = split_list(images)
    if fmt == "html":
        from llbench.reports.html import write_html_report

        target = Path(output) if output else None
        text = write_html_report(
            rep, target, home=st.home, images=image_list, embed=embed or target is None
        )
        if target is None:
            click.echo(text)
        else:
            console.print(f"wrote {target}", markup=False)
    else:
        text = table.render(fmt or "md")
        if output:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            Path(output).write_text(text, encoding="utf-8")
            console.print(f"wrote {output}", markup=False)
        elif fmt is None and sys.stdout.isatty():
            console.print(table.to_rich())
        else:
            click.echo(text, nl=False)
    if fig_dir:
        for p in report_figures(
            rep.frame,
            fig_dir,
            home=st.home,
            fmt=figure_format,
            images=image_list,
            crop=_crop(crop),
            rows=rep.rows,
        ):
            console.print(f"wrote {p}", markup=False)
    if not paper_preset:
        _study_tables(st.home, fmt, output)


def _list_presets() -> None:
    from llbench.reports.published import load_published

    pub = load_published()
    t = Table(title="paper table presets")
    for col in ("preset", "table", "rows", "columns", "paper"):
        t.add_column(col, overflow="fold")
    for name, tab in sorted(pub.tables.items()):
        t.add_row(name, tab.name, str(len(tab.rows)), str(len(tab.columns)), escape(tab.paper))
    console.print(t)


def _study_tables(home: Path, fmt: str | None, output: str | None) -> None:
    """The user studies' stored scores (``llbench study score``), in the table's format."""
    try:
        from llbench.reports.studies import study_table
    except ImportError:  # pragma: no cover
        return
    tab = study_table(home)
    if tab is None:
        return
    if output:
        path = Path(output)
        extra = path.with_name(path.stem + "-studies" + path.suffix)
        if fmt != "html":
            extra.write_text(tab.render(fmt or "md"), encoding="utf-8")
            console.print(f"wrote {extra}", markup=False)
        return
    if fmt is None and sys.stdout.isatty():
        console.print(tab.to_rich())
    elif fmt != "html":
        click.echo("\n" + tab.render(fmt or "md"), nl=False)


# -- export ----------------------------------------------------------------------------------------
@click.command()
@click.option(
    "--format", "fmt", default="csv", show_default=True, type=click.Choice(["csv", "jsonl"])
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File (default stdout).")
@selection_options
@click.option("--all-runs", is_flag=True, help="Every finished run, not only the latest ones.")
@click.pass_context
def export(ctx, fmt, output, methods, datasets, metrics, all_runs) -> None:
    """Export every per-image score (long form: one row per run, image and metric), with the
    seed, preset, limit and weights of each run."""
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
        console.print(f"wrote {len(frame)} rows to {output}", markup=False)
    else:
        click.echo(text, nl=False)


# -- runs ------------------------------------------------------------------------------------------
RUN_LIST_COLUMNS = (
    "key",
    "method",
    "dataset",
    "split",
    "status",
    "done",
    "n_images",
    "n_failed",
    "seed",
    "preset",
    "limit",
    "weights",
    "device",
)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs(ctx, as_json: bool) -> None:
    """List stored runs with their status, progress, seed, preset, limit and weights
    (`llbench runs show KEY` for one run's provenance)."""
    if ctx.invoked_subcommand is not None:
        return
    from llbench.store.frames import runs_frame

    frame = runs_frame(home=state(ctx).home)
    if as_json:
        click.echo(frame.to_json(orient="records", indent=1, default_handler=str))
        return
    if frame.empty:
        console.print("no runs stored yet")
        return
    records = frame.to_dict("records")
    for r in records:
        r["weights"] = _weights_text(r)
    if not sys.stdout.isatty():  # piped: plain columns, never cut to a terminal's width
        import pandas as pd

        plain = pd.DataFrame([{c: _text(r.get(c)) for c in RUN_LIST_COLUMNS} for r in records])
        click.echo(plain.to_string(index=False))
        return
    t = Table(title="llbench runs")
    for col in RUN_LIST_COLUMNS:
        t.add_column(col, overflow="fold")
    for r in records:
        t.add_row(*(escape(_text(r.get(c))) for c in RUN_LIST_COLUMNS))
    console.print(t)


def _text(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _weights_text(r: dict) -> str:
    kind = r.get("weights_kind")
    if kind == "trained":
        return f"trained on {r.get('train_dataset')}"
    if kind == "official":
        return "official"
    if kind == "file":
        return f"{Path(str(r.get('weights'))).name} ({str(r.get('weights_hash') or '')[:8]})"
    return "-"


@runs.command("show")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def runs_show(ctx, key: str, as_json: bool) -> None:
    """Everything stored about one run: identity, config, weights, provenance, failures."""
    from llbench.reports.runinfo import run_details

    info = run_details(key, home=state(ctx).home)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    from llbench.reports.runinfo import print_run_details

    print_run_details(info, console)


# -- verify ----------------------------------------------------------------------------------------
@click.command()
@click.argument("key")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, mps, auto")
@click.option(
    "--tolerance",
    type=float,
    default=1e-6,
    show_default=True,
    help="Largest per-image score difference accepted (exit 1 above it, or when an output "
    "differs).",
)
@click.pass_context
def verify(ctx, key: str, device: str, tolerance: float) -> None:
    """Recompute a stored run (same method, config, weights, seed, images) and report the
    largest per-image difference of its outputs and scores."""
    from llbench.reports.verify import verify_run

    res = verify_run(key, home=state(ctx).home, device=device)
    console.print(res.summary(), markup=False, highlight=False)
    if not res.ok(tolerance):
        sys.exit(1)


COMMANDS = [report, export, runs, verify]
