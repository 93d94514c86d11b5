"""``llbench hillie``: inspect a HiLLIE training, draw its figures, export its ranker.

Added to the ``llbench`` command line through the ``register_commands`` hook. ``--run`` takes a
run key (``llbench run`` prints it), a training key, or a training's folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from llbench.cli.common import ErrorHandlingGroup, console, state
from llbench.errors import ConfigError


def resolve_workdir(home: Path, run: str) -> Path:
    """The training folder of a run key, a training key or a folder path."""
    p = Path(run).expanduser()
    if p.is_dir() and (p / "stage0").is_dir():
        return p
    from llbench.store.database import Store

    if (home / "llbench.db").is_file():
        store = Store(home)
        row = store.get_run(run)
        if row is not None:
            prov = json.loads(row["provenance"] or "{}")
            key = (prov.get("training") or {}).get("key")
            if key and (home / "train" / key).is_dir():
                return home / "train" / key
        if store.get_training(run) is not None and (home / "train" / run).is_dir():
            return home / "train" / run
    if (home / "train" / run / "stage0").is_dir():
        return home / "train" / run
    raise ConfigError(
        f"no HiLLIE training found for {run!r} in {home}: give the run key `llbench run` "
        "printed, a training key, or the training's folder"
    )


@click.group(cls=ErrorHandlingGroup)
def hillie() -> None:
    """HiLLIE human-in-the-loop training: stage status, figures, the trained ranker."""


@hillie.command()
@click.option("--run", "run_key", required=True, help="Run key, training key or folder.")
@click.pass_context
def status(ctx, run_key) -> None:
    """Where a HiLLIE training stands: per stage, pairs, labels, agreement, scores, times."""
    from rich.table import Table

    from .loop import collect_stages

    wd = resolve_workdir(state(ctx).home, run_key)
    info = collect_stages(wd)
    t = Table(title=f"HiLLIE training {wd.name}")
    for col in ("stage", "pairs", "labels", "agreement", "new preferred", "pseudo acc",
                "seconds", "done"):  # fmt: skip
        t.add_column(col)
    for row in info["stages"]:
        ev = row.get("eval") or {}
        secs = sum((row.get("timings") or {}).values())
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        t.add_row(
            str(row["stage"]),
            str(row.get("pairs", "-")),
            str(row.get("labels", "-")),
            fmt(row.get("agreement")),
            fmt(row.get("preferred_new")),
            fmt(ev.get("pseudo_label_accuracy")),
            f"{secs:.1f}",
            "yes" if row["done"] else "no",
        )
    console.print(t)


@hillie.command()
@click.option("--run", "run_key", required=True, help="Run key, training key or folder.")
@click.option(
    "--out", type=click.Path(file_okay=False), help="Folder (default <training>/figures)."
)
@click.option("--top", default=10, show_default=True, help="Pairs per stage in Fig. 10.")
@click.pass_context
def figures(ctx, run_key, out, top) -> None:
    """Draw Fig. 3, Fig. 5, Fig. 10 and Table 3 from the stored stages."""
    from .figures import draw_all

    wd = resolve_workdir(state(ctx).home, run_key)
    made = draw_all(wd, Path(out) if out else wd / "figures", top=top)
    if not made:
        raise ConfigError(f"{wd} has no finished stage to draw yet")
    for p in made:
        console.print(f"wrote {p}")


@hillie.command("export-ranker")
@click.option("--run", "run_key", required=True, help="Run key, training key or folder.")
@click.option("--stage", type=int, help="Which g(n) (default: the last one trained).")
@click.option("--to", "dest", type=click.Path(dir_okay=False), help="Destination file.")
@click.pass_context
def export_ranker(ctx, run_key, stage, dest) -> None:
    """Make a stage's ranker the `hillie-ranker` metric (or copy it to --to)."""
    from .metric import FILE

    home = state(ctx).home
    wd = resolve_workdir(home, run_key)
    stages = sorted(int(p.parent.name[5:]) for p in wd.glob("stage*/ranker.pt"))
    if not stages:
        raise ConfigError(f"{wd} has no trained ranker yet")
    n = stages[-1] if stage is None else stage
    src = wd / f"stage{n}" / "ranker.pt"
    if not src.is_file():
        raise ConfigError(f"stage {n} has no ranker; trained: {stages}")
    target = Path(dest) if dest else home / "weights" / FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    target.with_suffix(".json").write_text(
        json.dumps({"training": wd.name, "stage": n, "source": str(src)}, indent=1)
    )
    console.print(f"ranker g({n}) of {wd.name} -> {target}")
