"""`llbench run`, `llbench enhance` and `llbench score`: the commands that compute."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from llbench.cli.common import console, err_console, split_list, state


# -- run -----------------------------------------------------------------------------------------
@click.command()
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
        metrics=split_list(metrics),
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
@click.command()
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
@click.pass_context
def enhance(ctx, method, weights, config_file, preset, device, output, suffix, inputs) -> None:
    """Enhance image files, folders (recursively) or videos with METHOD.

    Grey images are replicated to RGB, alpha is composited over black, 16-bit data is scaled to
    8 bits, EXIF rotation is applied; outputs are 8-bit images (PNG by default).
    """
    from llbench.engine.enhancing import VIDEO_SUFFIXES, enhance_files
    from llbench.engine.weights import build_method

    meth = build_method(
        method,
        weights=weights,
        config=config_file,
        preset=preset,
        device=device,
        home=state(ctx).home,
    )
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
@click.command()
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

    names = split_list(metrics)
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


COMMANDS = [run, enhance, score]
