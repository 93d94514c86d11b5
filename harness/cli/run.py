"""`llbench run`, `llbench enhance` and `llbench score`: the commands that compute."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from llbench.cli.common import console, err_console, escape, fail, split_list, state


# -- run -----------------------------------------------------------------------------------------
@click.command()
@click.option(
    "--method", "-m", required=True, help="Method name(s), comma-separated (see `llbench methods`)."
)
@click.option(
    "--dataset", "-d", required=True, help="Test dataset(s), comma-separated (`llbench datasets`)."
)
@click.option(
    "--train-dataset",
    help="Train on this dataset's training split (default: the test dataset's); the training "
    "is stored once and reused by every test dataset.",
)
@click.option(
    "--protocol",
    type=click.Choice(["paper", "same"]),
    help="`paper`: train where the method's paper trained (e.g. SICE for Zero-DCE and SGZ).",
)
@click.option(
    "--executor",
    default="local",
    show_default=True,
    help="Where grid cells run: local, submitit (Slurm), ray, or a plugin's (`llbench list executors`).",
)
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Tasks at once."
)
@click.option(
    "--executor-option",
    "executor_options",
    multiple=True,
    help="KEY=VALUE for the executor (partition=gpu, gpus=1, time_min=120, address=auto...).",
)
@click.option(
    "--dry-run", is_flag=True, help="Show what would train, run and be reused; compute nothing."
)
@click.option("--split", default="test", show_default=True, help="Split to enhance and score.")
@click.option("--metrics", help="Comma-separated metrics (default: every applicable metric).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML or YAML file overriding the method's paper defaults.",
)
@click.option("--preset", help="Named preset of the method, e.g. `quick` for short CPU runs.")
@click.option("--seed", default="0", show_default=True, help="Seed(s), comma-separated: 0,1,2.")
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
    train_dataset,
    protocol,
    executor,
    workers,
    executor_options,
    dry_run,
) -> None:
    """Train METHOD if it needs it, enhance DATASET's split, score it and store everything.

    A finished run with the same settings is reused; an interrupted one resumes. Several
    methods, datasets or seeds make a grid: every combination is planned, each method trains
    once, and the cells run on the chosen executor (`--workers`, `--executor`).
    """
    from llbench.engine.runner import run as run_api

    st = state(ctx)
    methods, datasets = split_list(method) or [], split_list(dataset) or []
    try:
        seeds = [int(s) for s in split_list(seed) or ["0"]]
    except ValueError:
        fail(f"--seed takes integers separated by commas, not {seed!r}")
    grid = (
        len(methods) > 1 or len(datasets) > 1 or len(seeds) > 1 or dry_run or workers > 1
        or executor != "local" or bool(executor_options)
    )  # fmt: skip
    if grid:
        from llbench.cli.grid import run_grid_command

        run_grid_command(
            methods, datasets, seeds, executor=executor, workers=workers,
            executor_options=executor_options, dry_run=dry_run, home=st.home,
            data_root=st.data_root, split=split, metrics=split_list(metrics),
            config=config_file, preset=preset, device=device, weights=weights, limit=limit,
            force=force, batch_size=batch_size, segmenter=segmenter,
            efficiency_size=efficiency_size, train_dataset=train_dataset, protocol=protocol,
        )  # fmt: skip
        return
    result = run_api(
        methods[0],
        datasets[0],
        split=split,
        metrics=split_list(metrics),
        config=config_file,
        preset=preset,
        seed=seeds[0],
        device=device,
        weights=weights,
        limit=limit,
        force=force,
        train_dataset=train_dataset,
        protocol=protocol,
        batch_size=batch_size,
        segmenter=segmenter,
        efficiency_size=efficiency_size,
        home=st.home,
        data_root=st.data_root,
        progress=True,
    )
    verb = "reused finished run" if result.reused else "run"
    console.print(
        f"{verb} [bold]{result.key}[/]: {escape(result.method)} on {escape(result.dataset)}/"
        f"{escape(result.split)}, {result.n_images} images, outputs in "
        f"{escape(str(result.out_dir))}"
    )
    t = Table(show_header=True)
    t.add_column("metric")
    t.add_column("mean", justify="right")
    from llbench.reports.plugininfo import metric_order
    from llbench.reports.tables import format_value

    order = {m: i for i, m in enumerate(metric_order())}
    for name, v in sorted(result.scores.items(), key=lambda kv: order.get(kv[0], len(order))):
        t.add_row(escape(name), "-" if v is None else format_value(v))
    console.print(t)
    if result.failures:
        err_console.print(f"[bold red]{len(result.failures)} image(s) failed:[/]")
        for image, error in result.failures[:20]:
            err_console.print(f"  {image}: {error}", highlight=False, markup=False)
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
            f"{info['fps']:g} fps",
            markup=False,
        )
        return
    failed = 0

    def show(o):
        nonlocal failed
        if o.error:
            failed += 1
            err_console.print(
                f"[red]failed[/] {escape(str(o.source))}: {escape(str(o.error))}", highlight=False
            )
        else:
            console.print(f"{o.source} -> {o.output}", highlight=False, markup=False)

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
@click.option(
    "--strip-suffix",
    help="Suffix(es) to remove from prediction stems before pairing, comma-separated: with "
    "`_lime`, 1_lime.png pairs with the reference 1.png.",
)
@click.argument("pred_dir", type=click.Path(file_okay=False))
def score(metrics, ref_dir, input_dir, device, output, strip_suffix, pred_dir) -> None:
    """Score a folder of images produced elsewhere, paired with --ref (and --input) by file stem.

    A prediction without a reference, an unreadable image or a size mismatch fails that image
    only: the others are scored and written, and the command exits with code 1.
    """
    if output and Path(output).suffix.lower() not in (".csv", ".json"):
        raise click.BadParameter("--output must end in .csv or .json")
    from llbench.engine.scoring import score as score_api

    names = split_list(metrics)
    frame = score_api(
        pred_dir,
        names,
        ref_dir=ref_dir,
        input_dir=input_dir,
        device=device,
        strip_suffix=strip_suffix,
    )
    from llbench.reports.tables import format_value

    failed = [isinstance(e, str) for e in frame["error"]]  # None/NaN = scored
    t = Table()
    t.add_column("image")
    for n in names:
        t.add_column(n, justify="right")
    for r, bad in zip(frame.itertuples(index=False), failed, strict=True):
        row = r._asdict()
        if bad:
            t.add_row(escape(str(row["image"])), *(["[red]error[/]"] * len(names)))
        else:
            t.add_row(escape(str(row["image"])), *[format_value(row[n]) for n in names])
    ok = frame[[not b for b in failed]]
    t.add_section()
    t.add_row("[bold]mean[/]", *[format_value(ok[n].mean()) if len(ok) else "-" for n in names])
    console.print(t)
    if output:
        out = Path(output)
        body = frame if any(failed) else frame.drop(columns=["error"])
        if out.suffix.lower() == ".csv":
            body.to_csv(out, index=False)
        else:
            out.write_text(body.to_json(orient="records", indent=1))
        console.print(f"wrote {out}", markup=False)
    for r, bad in zip(frame.itertuples(index=False), failed, strict=True):
        if bad:
            err_console.print(
                f"[red]failed[/] {escape(str(r.image))}: {escape(str(r.error))}", highlight=False
            )
    if any(failed):
        sys.exit(1)


COMMANDS = [run, enhance, score]
