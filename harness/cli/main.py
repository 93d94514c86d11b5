"""The ``llbench`` command line: a thin layer over the Python API."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import click
from rich.table import Table

from llbench import __version__
from llbench.cli.common import CliState, ErrorHandlingGroup, console, err_console, fail, state
from llbench.errors import LLBenchError
from llbench.pluginhost.kinds import BY_PLURAL

# Command groups that live in their own modules, imported only when used.
LAZY_GROUPS = {
    "datasets": ("llbench.cli.datasets", "datasets", "List, fetch, verify and add datasets."),
    "study": ("llbench.cli.study", "study", "Run human preference studies (2AFC, MOS)."),
    "weights": ("llbench.cli.weights", "weights", "Import or fetch weights of learned metrics."),
    "segmenters": ("llbench.cli.segmenters", "segmenters", "List and train segmenters."),
}


class RootGroup(ErrorHandlingGroup):
    """Adds the lazily imported groups (one that cannot import says why instead of vanishing)
    and the commands plugins add through the ``register_commands`` hook."""

    _plugin_commands_added = False

    def _add_plugin_commands(self) -> None:
        if not self._plugin_commands_added:
            self._plugin_commands_added = True
            from llbench.pluginhost.host import get_host

            get_host().add_commands(self)

    def list_commands(self, ctx):
        self._add_plugin_commands()
        return sorted(set(super().list_commands(ctx)) | set(LAZY_GROUPS))

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is None and name not in LAZY_GROUPS:
            self._add_plugin_commands()
            cmd = super().get_command(ctx, name)
        if cmd is not None or name not in LAZY_GROUPS:
            return cmd
        module, attr, help_text = LAZY_GROUPS[name]
        try:
            return getattr(importlib.import_module(module), attr)
        except Exception as exc:  # noqa: BLE001 - report, don't crash the whole CLI
            error = f"{type(exc).__name__}: {exc}"

            @click.command(name=name, help=f"{help_text} (unavailable: {error})")
            def broken():
                fail(f"`llbench {name}` cannot load: {error}")

            return broken


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llbench")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="LLBENCH_HOME",
    help="llbench home: database, run outputs, weights (default ~/.llbench).",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    envvar="LLBENCH_DATA",
    help="Folder holding one folder per dataset (default <home>/data).",
)
@click.pass_context
def cli(ctx: click.Context, home: str | None, data_root: str | None) -> None:
    """Benchmark low-light image enhancement methods: run, score, report, study."""
    ctx.obj = CliState.from_options(home, data_root)


# -- plugins and listings -----------------------------------------------------------------------
@cli.command()
def plugins() -> None:
    """List every plugin: what it provides, where it came from, and any load error."""
    from llbench.pluginhost.host import get_host

    infos = get_host().plugins()
    t = Table(title="llbench plugins")
    for col in ("plugin", "provides", "distribution", "version", "module", "status"):
        t.add_column(col, overflow="fold")
    for i in infos:
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in (i.provides or {}).items())
        status = f"[red]error: {i.error}[/]" if i.error else "[green]ok[/]"
        t.add_row(i.name, provides or "-", i.distribution, i.version, i.module, status)
    console.print(t)


@cli.command("list")
@click.argument("kind", type=click.Choice(list(BY_PLURAL)))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def list_cmd(ctx: click.Context, kind: str, as_json: bool) -> None:
    """Describe what is registered of KIND, with its metadata."""
    from llbench.pluginhost.listing import describe

    rows = describe(kind, data_root=state(ctx).data_root)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        console.print(f"no {kind} registered")
        return
    t = Table(title=f"llbench {kind}")
    for col in rows[0]:
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(*[_cell(v) for v in r.values()])
    console.print(t)


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple, set, frozenset)):
        return ", ".join(map(str, v)) or "-"
    return str(v)


for _kind in ("methods", "metrics"):

    def _make(kind: str):
        @cli.command(kind, help=f"Describe registered {kind} (same as `llbench list {kind}`).")
        @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
        @click.pass_context
        def _cmd(ctx: click.Context, as_json: bool) -> None:
            ctx.invoke(list_cmd, kind=kind, as_json=as_json)

        return _cmd

    _make(_kind)


# -- run -----------------------------------------------------------------------------------------
@cli.command()
@click.option("--method", "-m", required=True, help="Method name (see `llbench methods`).")
@click.option("--dataset", "-d", required=True, help="Dataset name (see `llbench datasets`).")
@click.option("--split", default="test", show_default=True, help="Split to enhance and score.")
@click.option("--metrics", help="Comma-separated metrics (default: every applicable metric).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML or YAML file overriding the method's paper defaults.",
)
@click.option("--preset", help="Named preset of the method, e.g. `quick` for short CPU runs.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--weights", help="Weights file to use instead of training, or `official`.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N test images.")
@click.option("--batch-size", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--segmenter", help="Segmenter for mIoU/mPA (see `llbench segmenters`).")
@click.option(
    "--efficiency-size",
    help="HxW for the flops/time metrics (default 900x1200, "
    "SGZ Table 7), or `input` for the size of the first test image.",
)
@click.option("--force", is_flag=True, help="Redo the run (and its training) from scratch.")
@click.pass_context
def run(
    ctx: click.Context,
    method,
    dataset,
    split,
    metrics,
    config_file,
    preset,
    seed,
    device,
    weights,
    limit,
    batch_size,
    segmenter,
    efficiency_size,
    force,
) -> None:
    """Train METHOD if it needs it, enhance DATASET's split, score it and store everything.

    A finished run with the same settings is reused; an interrupted one resumes.
    """
    from llbench.engine.runner import run as run_api

    st = state(ctx)
    result = run_api(
        method,
        dataset,
        split=split,
        metrics=_split_list(metrics),
        config=config_file,
        preset=preset,
        seed=seed,
        device=device,
        weights=weights,
        limit=limit,
        force=force,
        batch_size=batch_size,
        segmenter=segmenter,
        efficiency_size=efficiency_size,
        home=st.home,
        data_root=st.data_root,
        progress=True,
    )
    verb = "reused finished run" if result.reused else "run"
    console.print(
        f"{verb} [bold]{result.key}[/]: {result.method} on {result.dataset}/"
        f"{result.split}, {result.n_images} images, outputs in {result.out_dir}"
    )
    t = Table(show_header=True)
    t.add_column("metric")
    t.add_column("mean", justify="right")
    from llbench.reports.report import metric_order
    from llbench.reports.tables import format_value

    order = {m: i for i, m in enumerate(metric_order())}
    for name, v in sorted(result.scores.items(), key=lambda kv: order.get(kv[0], len(order))):
        t.add_row(name, "-" if v is None else format_value(v))
    console.print(t)
    if result.failures:
        err_console.print(f"[bold red]{len(result.failures)} image(s) failed:[/]")
        for image, error in result.failures[:20]:
            err_console.print(f"  {image}: {error}", highlight=False)
        sys.exit(1)


# -- enhance -------------------------------------------------------------------------------------
@cli.command()
@click.option("--method", "-m", required=True)
@click.option("--weights", help="Weights file, or `official` (needed by learned methods).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False))
@click.option("--preset")
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(),
    help="Output folder (or output video file for a single video input).",
)
@click.option(
    "--format",
    "suffix",
    default="png",
    show_default=True,
    type=click.Choice(["png", "jpg", "bmp", "tif"]),
)
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
def enhance(method, weights, config_file, preset, device, output, suffix, inputs) -> None:
    """Enhance image files, folders (recursively) or videos with METHOD.

    Grey images are replicated to RGB, alpha is composited over black, 16-bit data is scaled to
    8 bits, EXIF rotation is applied; outputs are 8-bit images (PNG by default).
    """
    from llbench.engine.enhancing import VIDEO_SUFFIXES, build_method, enhance_files

    meth = build_method(method, weights=weights, config=config_file, preset=preset, device=device)
    out = Path(output)
    if (
        len(inputs) == 1
        and Path(inputs[0]).suffix.lower() in VIDEO_SUFFIXES
        and out.suffix.lower() in VIDEO_SUFFIXES
    ):
        from llbench.io.video import enhance_video
        from llbench.progress import Progress

        bar = Progress()
        task = bar.task(f"{method} on {inputs[0]}", total=None)
        try:
            info = enhance_video(
                meth, Path(inputs[0]), out, progress=lambda d, t: bar.update(task, d, t)
            )
        finally:
            bar.done(task)
        console.print(
            f"wrote {out}: {info['frames']} frames, {info['size'][0]}x{info['size'][1]}, "
            f"{info['fps']:g} fps"
        )
        return
    failed = 0

    def show(o):
        nonlocal failed
        if o.error:
            failed += 1
            err_console.print(f"[red]failed[/] {o.source}: {o.error}", highlight=False)
        else:
            console.print(f"{o.source} -> {o.output}", highlight=False)

    enhance_files(meth, inputs, out, suffix="." + suffix, on_file=show)
    if failed:
        sys.exit(1)


# -- score ---------------------------------------------------------------------------------------
@cli.command()
@click.option("--metrics", required=True, help="Comma-separated, e.g. psnr,ssim,niqe.")
@click.option("--ref", "ref_dir", type=click.Path(file_okay=False), help="Ground-truth folder.")
@click.option(
    "--input",
    "input_dir",
    type=click.Path(file_okay=False),
    help="Low-light inputs (for metrics such as loe).",
)
@click.option("--device", default="auto", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write .csv or .json.")
@click.argument("pred_dir", type=click.Path(file_okay=False))
def score(metrics, ref_dir, input_dir, device, output, pred_dir) -> None:
    """Score a folder of images produced elsewhere (paired with --ref by file stem)."""
    from llbench.engine.scoring import score as score_api

    names = _split_list(metrics)
    frame = score_api(pred_dir, names, ref_dir=ref_dir, input_dir=input_dir, device=device)
    from llbench.reports.tables import format_value

    t = Table()
    t.add_column("image")
    for n in names:
        t.add_column(n, justify="right")
    for r in frame.itertuples(index=False):
        row = r._asdict()
        if row["error"]:
            t.add_row(row["image"], *(["[red]error[/]"] * len(names)))
        else:
            t.add_row(row["image"], *[format_value(row[n]) for n in names])
    ok = frame[frame["error"].isna()]
    t.add_section()
    t.add_row("[bold]mean[/]", *[format_value(ok[n].mean()) if len(ok) else "-" for n in names])
    console.print(t)
    if output:
        out = Path(output)
        body = frame.drop(columns=["error"]) if frame["error"].isna().all() else frame
        if out.suffix.lower() == ".csv":
            body.to_csv(out, index=False)
        elif out.suffix.lower() == ".json":
            out.write_text(body.to_json(orient="records", indent=1))
        else:
            raise click.BadParameter("--output must end in .csv or .json")
        console.print(f"wrote {out}")
    bad = frame[frame["error"].notna()]
    for r in bad.itertuples():
        err_console.print(f"[red]failed[/] {r.image}: {r.error}", highlight=False)
    if len(bad):
        sys.exit(1)


# -- report and runs ------------------------------------------------------------------------------
@cli.command()
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
        methods=_split_list(methods),
        datasets=_split_list(datasets),
        metrics=_split_list(metrics),
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


@cli.command()
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
        _split_list(methods),
        _split_list(datasets),
        _split_list(metrics),
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


@cli.command()
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


def _split_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def main() -> None:
    try:
        cli(prog_name="llbench")
    except LLBenchError as exc:  # raised outside a command's invoke
        fail(str(exc))


if __name__ == "__main__":  # pragma: no cover
    main()
