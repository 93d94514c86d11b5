"""The figures of ``llbench report --figures``: bars per metric, qualitative grids of the
outputs, training curves labelled by row, and the figures plugins draw from their trainings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from llbench.pluginhost.host import PluginHost
from llbench.reports import figures
from llbench.reports.plugininfo import directions
from llbench.reports.records import Row
from llbench.store.frames import training_log


def report_figures(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    home: str | Path | None = None,
    fmt: str = "png",
    host: PluginHost | None = None,
    images: Sequence[str] | None = None,
    crop: tuple[int, int, int, int] | None = None,
    rows: Sequence[Row] | None = None,
) -> list[Path]:
    """Bars per metric (with intervals), qualitative grids, training curves labelled by run
    (``rows``: the report's rows, whose trainings are plotted with their labels)."""
    out_dir = Path(out_dir)
    dirs = directions(host)
    written = []
    measured = frame[frame["kind"] != "published"] if "kind" in frame else frame
    for metric in sorted(set(measured["metric"])):
        written.append(
            figures.metric_bars(
                measured, metric, out_dir / f"{metric}.{fmt}", higher_better=dirs.get(metric)
            )
        )
    written += qualitative_figures(measured, out_dir, home=home, fmt=fmt, images=images, crop=crop)
    log = training_log(home=home)
    labels = training_labels(rows) if rows is not None else {}
    if not log.empty and "method" in measured:
        if labels:
            log = log[log["train_key"].isin(set(labels))]
        else:
            log = log[log["method"].isin(set(measured["method"]))]
        if not log.empty:
            written.append(
                figures.training_curves(
                    log, out_dir / f"training.{fmt}", smooth=5, labels=labels or None
                )
            )
    written += plugin_figures(measured, out_dir, home=home, fmt=fmt, host=host, keys=labels)
    return written


def plugin_figures(
    measured: pd.DataFrame,
    out_dir: Path,
    *,
    home: str | Path | None,
    fmt: str,
    host: PluginHost | None,
    keys: Mapping[str, str] | None = None,
) -> list[Path]:
    """Figures plugins draw from their trainings (the ``report_figures`` hook)."""
    from llbench import paths
    from llbench.pluginhost.host import get_host
    from llbench.store.database import Store

    home_dir = paths.home(home)
    methods = set(measured["method"]) if "method" in measured else set()
    rows = Store(home_dir).query("SELECT key, method, dataset, status FROM trainings")
    wanted = (lambda r: r["key"] in keys) if keys else (lambda r: r["method"] in methods)
    trainings = [{**dict(r), "workdir": home_dir / "train" / r["key"]} for r in rows if wanted(r)]
    if not trainings:
        return []
    host = host or get_host(home_dir)
    host.build()
    drawn = host.pm.hook.report_figures(trainings=trainings, out_dir=Path(out_dir), fmt=fmt)
    return [Path(p) for result in drawn for p in (result or [])]


def training_labels(rows: Sequence[Row]) -> dict[str, str]:
    """Training key -> "<row label>, seed N" for the trainings behind the rows shown."""
    out: dict[str, str] = {}
    for row in rows:
        for r in row.runs:
            if r.train_key:
                out[r.train_key] = f"{row.label}, seed {r.seed}"
    return out


def qualitative_figures(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    home: str | Path | None = None,
    fmt: str = "png",
    n_images: int = 3,
    images: Sequence[str] | None = None,
    crop: tuple[int, int, int, int] | None = None,
    metric: str | None = None,
) -> list[Path]:
    """Per dataset, a grid of chosen test images (``images``, else the first ``n_images``
    every row has): the input, every row's output (table order) and the ground truth, each
    tile titled with its score (``metric``, else the first full-reference one stored), and,
    with ``crop`` = (y, x, h, w), a second grid of that zoomed region."""
    from llbench.reports.gallery import collect_gallery

    written = []
    for g in collect_gallery(frame, home=home, images=images, limit=n_images):
        if not g.images:
            continue
        path = Path(out_dir) / f"grid-{g.dataset}.{fmt}"
        written.append(figures.gallery_grid(g, path, metric=metric))
        if crop is not None:
            zoom = Path(out_dir) / f"grid-{g.dataset}-crop.{fmt}"
            written.append(figures.gallery_grid(g, zoom, metric=metric, crop=crop))
    return written
