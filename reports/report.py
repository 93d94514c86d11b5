"""``llbench report``: the stored results as a table and figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from llbench.pluginhost.host import PluginHost, get_host
from llbench.reports import figures
from llbench.reports.tables import Table, build_table
from llbench.store.frames import results, training_log


def directions(host: PluginHost | None = None) -> dict[str, bool | None]:
    host = host or get_host()
    return {s.name: s.higher_better for s in host.registry("metric")}


def metric_order(host: PluginHost | None = None) -> list[str]:
    """Registration order puts core metrics first; used to order a table's columns."""
    host = host or get_host()
    preferred = [
        "psnr",
        "psnr_y",
        "ssim",
        "ssim_rgb",
        "psnr_gtmean",
        "ssim_gtmean",
        "ssim_rgb_gtmean",
        "lpips",
        "niqe",
        "pi",
        "musiq",
        "brisque",
        "loe",
        "miou",
        "mpa",
        "params",
        "flops",
        "time",
    ]
    rest = [n for n in host.registry("metric").names() if n not in preferred]
    return preferred + rest


def report_table(
    *,
    home: str | Path | None = None,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    host: PluginHost | None = None,
) -> tuple[Table, pd.DataFrame]:
    frame = results(methods, datasets, metrics, home=home)
    table = build_table(
        frame, directions(host), method_order=methods, metric_order=metrics or metric_order(host)
    )
    return table, frame


def report_figures(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    home: str | Path | None = None,
    fmt: str = "png",
    host: PluginHost | None = None,
) -> list[Path]:
    """One bar figure per metric, training curves when any training was logged."""
    out_dir = Path(out_dir)
    dirs = directions(host)
    written = []
    for metric in sorted(set(frame["metric"])):
        written.append(
            figures.metric_bars(
                frame, metric, out_dir / f"{metric}.{fmt}", higher_better=dirs.get(metric)
            )
        )
    written += qualitative_figures(frame, out_dir, home=home, fmt=fmt)
    log = training_log(home=home)
    if not log.empty:
        wanted = set(frame["method"]) if not frame.empty else set(log["method"])
        log = log[log["method"].isin(wanted)]
        if not log.empty:
            written.append(figures.training_curves(log, out_dir / f"training.{fmt}", smooth=5))
    return written


def qualitative_figures(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    home: str | Path | None = None,
    fmt: str = "png",
    n_images: int = 3,
) -> list[Path]:
    """Per dataset, a grid of the first ``n_images`` test images every method enhanced
    (columns: methods in table order; rows: images), from the saved 8-bit outputs."""
    from llbench import paths
    from llbench.api.datasets import natural_key
    from llbench.io.images import read_image
    from llbench.store.database import Store

    home_dir = paths.home(home)
    store = Store(home_dir)
    written = []
    for dataset, sub in frame.groupby("dataset", sort=True):
        outputs: dict[str, dict[str, Path]] = {}
        for method, key in sub.drop_duplicates("run_key")[["method", "run_key"]].itertuples(
            index=False
        ):
            rows = store.query(
                "SELECT image, output FROM items WHERE run_key = ? AND status = 'ok' "
                "AND output IS NOT NULL",
                (key,),
            )
            found = {r["image"]: home_dir / r["output"] for r in rows}
            found = {k: p for k, p in found.items() if p.is_file()}
            if found:
                outputs[method] = found
        if not outputs:
            continue
        common = sorted(set.intersection(*(set(o) for o in outputs.values())), key=natural_key)
        if not common:
            continue
        keys = common[:n_images]
        images = {m: [read_image(o[k]) for k in keys] for m, o in outputs.items()}
        written.append(
            figures.qualitative_grid(
                images, Path(out_dir) / f"grid-{dataset}.{fmt}", row_labels=keys
            )
        )
    return written
