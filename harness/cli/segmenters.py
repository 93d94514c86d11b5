"""``llbench segmenters``: list the segmenters and train the ones llbench trains itself."""

from __future__ import annotations

import time

import click
from rich.table import Table

from llbench.cli.common import ErrorHandlingGroup, console, escape, state
from llbench.errors import ConfigError


@click.group(cls=ErrorHandlingGroup)
def segmenters() -> None:
    """List semantic segmenters (for miou/mpa) and train tiny-seg."""


@segmenters.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """Show each segmenter, its classes and whether it can run here."""
    from llbench.pluginhost.host import get_host
    from llbench.segmenters import tiny_seg_path

    st = state(ctx)
    t = Table(title="segmenters")
    for col in ("segmenter", "classes", "status", "summary"):
        t.add_column(col, overflow="fold")
    for spec in get_host().registry("segmenter"):
        missing = spec.available()
        if missing:
            status = f"[red]unavailable:[/] {escape(str(missing))}"
        elif spec.name == "tiny-seg":
            path = tiny_seg_path(st.home)
            status = (
                f"[green]trained[/] ({escape(str(path))})"
                if path.is_file()
                else "[yellow]not trained yet[/] (trained on first use)"
            )
        else:
            status = "[green]available[/]"
        t.add_row(escape(spec.name), str(len(spec.classes)), status, escape(spec.summary))
    console.print(t)


@segmenters.command("train")
@click.argument("name")
@click.option(
    "--dataset",
    default="scenes",
    show_default=True,
    help="Dataset with masks to train on (its training split, normal-light images).",
)
@click.option("--steps", type=int, default=None, help="Optimiser steps (default 200).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
def train_cmd(name: str, dataset: str, steps: int | None, seed: int, device: str) -> None:
    """Train segmenter NAME (only tiny-seg is trained by llbench) and cache it."""
    from llbench.cli.common import CliState
    from llbench.device import resolve_device
    from llbench.pluginhost.host import get_host
    from llbench.segmenters import tiny, tiny_seg_path

    get_host().segmenter(name)  # unknown names list the known ones
    if name != "tiny-seg":
        raise ConfigError(
            f"{name} uses pretrained torchvision weights and is not trained by "
            f"llbench; place them with `llbench weights fetch {name}` or "
            "`llbench weights import FILE`"
        )
    ctx = click.get_current_context()
    st = ctx.find_object(CliState) or state(ctx)
    config = tiny.TrainConfig(seed=seed, **({"steps": steps} if steps else {}))
    if config.steps < 1:
        raise ConfigError("--steps must be at least 1")
    dev = resolve_device(device)
    path = tiny_seg_path(st.home)
    t0 = time.perf_counter()
    last = {}

    def log(step, values):
        last.update(values)
        if (step + 1) % max(1, config.steps // 10) == 0:
            console.print(f"step {step + 1}/{config.steps}  loss {values['loss']:.4f}")

    tiny.train_and_save(
        path, device=dev, dataset=dataset, config=config, data_root=st.data_root, log=log
    )
    # a segmenter built earlier in this process must not be reused with the old weights
    from llbench.metrics import task

    task._SEGMENTERS.pop(("tiny-seg", str(dev)), None)
    console.print(
        f"tiny-seg trained on {dataset} in {time.perf_counter() - t0:.1f} s "
        f"(final loss {last.get('loss', float('nan')):.4f}) -> {path}",
        markup=False,
    )
