"""Figures with matplotlib: metric bars with intervals, training curves, qualitative grids.

Each function writes one file (PNG, SVG or PDF by the suffix) and returns its path. The Agg
backend is used, so no display is needed. Names print as in tables
(:mod:`llbench.reports.names`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from llbench.reports.names import dataset_name, metric_name, unit

if TYPE_CHECKING:  # pragma: no cover
    from llbench.reports.gallery import Gallery

FIG_SUFFIXES = (".png", ".svg", ".pdf")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def metric_bars(
    frame: pd.DataFrame, metric: str, path: str | Path, *, higher_better: bool | None = None
) -> Path:
    """Grouped bars: one group per dataset, one bar per row (``label``, else ``method``), for
    ``metric``; error bars show ``ci_low``/``ci_high`` (95 % bootstrap interval) where known."""
    path = _check(path)
    plt = _plt()
    sub = frame[frame["metric"] == metric]
    if sub.empty:
        raise ValueError(f"no values for metric {metric!r}")
    who = "label" if "label" in sub else "method"
    sub = sub.drop_duplicates([who, "dataset"])
    pivot = sub.pivot_table(
        index="dataset", columns=who, values="value", aggfunc="mean", sort=False
    )
    has_ci = {"ci_low", "ci_high"} <= set(sub.columns)
    lo = hi = None
    if has_ci:
        lo = sub.pivot_table(
            index="dataset", columns=who, values="ci_low", aggfunc="mean", sort=False
        )
        hi = sub.pivot_table(
            index="dataset", columns=who, values="ci_high", aggfunc="mean", sort=False
        )
    n_ds, n_m = pivot.shape
    fig, ax = plt.subplots(
        figsize=(max(4.0, 1.2 + n_ds * (0.5 + 0.35 * n_m)), 3.4), layout="constrained"
    )
    width = 0.8 / max(n_m, 1)
    x = np.arange(n_ds)
    cmap = plt.get_cmap("tab10" if n_m <= 10 else "tab20")
    for i, name in enumerate(pivot.columns):
        vals = pivot[name].to_numpy(dtype=float)
        err = None
        if lo is not None and hi is not None and name in lo and name in hi:
            low = lo[name].reindex(pivot.index).to_numpy(dtype=float)
            high = hi[name].reindex(pivot.index).to_numpy(dtype=float)
            if np.isfinite(low).any():
                err = np.vstack([np.clip(vals - low, 0, None), np.clip(high - vals, 0, None)])
                err = np.nan_to_num(err)
        bars = ax.bar(
            x + (i - (n_m - 1) / 2) * width,
            vals,
            width,
            label=str(name),
            color=cmap(i % cmap.N),
            yerr=err,
            capsize=2 if err is not None else 0,
            error_kw={"lw": 0.8},
        )
        ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=1)
    ax.set_xticks(x, [dataset_name(str(d).split("[")[0]) for d in pivot.index])
    arrow = (
        ""
        if higher_better is None
        else (" (\u2191 better)" if higher_better else " (\u2193 better)")
    )
    u = f" [{unit(metric)}]" if unit(metric) else ""
    ax.set_ylabel(metric_name(metric) + u + arrow)
    title = metric_name(metric)
    if has_ci:
        title += "\n(bars: 95% bootstrap interval over images)"  # two lines: fits 4 inches
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(
        fontsize=8, frameon=False, ncols=min(n_m, 3), loc="upper left", bbox_to_anchor=(0, -0.12)
    )
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


#: Leading words of logged names that are monitored values, not loss terms (a method's PSNR on
#: its training batch, a segmentation accuracy, a learning rate): drawn in their own row, since
#: their units and magnitudes differ from the loss terms'. SSIM and LPIPS are left out on
#: purpose: methods log them as loss terms (DRBN's ``ssim1``, KinD's ``ssim``). A plugin that
#: logs a monitored value names its term with one of these words (``psnr_student``).
MONITORED = ("psnr", "miou", "mpa", "acc", "accuracy", "lr")


def is_monitored(name: str) -> bool:
    """Whether the logged ``name`` (``phase/term``) is a monitored value rather than a loss term:
    its term's first word (before ``_``) is one of :data:`MONITORED`."""
    term = str(name).rsplit("/", 1)[-1].lower()
    return term.split("_", 1)[0] in MONITORED


def training_curves(
    log: pd.DataFrame,
    path: str | Path,
    *,
    smooth: int = 1,
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Write :func:`training_figure` of ``log`` to ``path`` (PNG, SVG or PDF)."""
    path = _check(path)
    plt = _plt()
    fig = training_figure(log, smooth=smooth, labels=labels)
    try:
        fig.savefig(path, dpi=150)
    finally:
        plt.close(fig)
    return path


def training_figure(log: pd.DataFrame, *, smooth: int = 1, labels: Mapping[str, str] | None = None):
    """Training curves (a matplotlib ``Figure``): one column per training run, one line per
    logged name; loss terms in the first row, monitored values (:func:`is_monitored`, e.g. a
    PSNR on the training batch) in a second row when there are any, so that neither squashes
    the other.

    Each column is titled by ``labels[train_key]`` when given, else by method, training dataset,
    seed (when the log has it) and the start of the training key, so two runs of one method
    are told apart.
    """
    plt = _plt()
    runs = list(dict.fromkeys(log["train_key"]))
    if not runs:
        raise ValueError("no training logs stored")
    monitored = log["name"].map(is_monitored)
    kinds = [("loss", ~monitored)] + ([("monitored value", monitored)] if monitored.any() else [])
    fig, axes = plt.subplots(
        len(kinds),
        len(runs),
        figsize=(4.2 * len(runs), 3.2 * len(kinds)),
        squeeze=False,
        layout="constrained",
        sharex="col",
    )
    moving = f" (moving mean of {smooth})" if smooth > 1 else ""
    for col, key in enumerate(runs):
        in_run = log["train_key"] == key
        for row, (kind, mask) in enumerate(kinds):
            ax = axes[row][col]
            sub = log[in_run & mask]
            for name, g in sub.groupby("name"):
                y = g["value"].to_numpy(dtype=float)
                if smooth > 1 and len(y) >= smooth:
                    y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
                    xs = g["step"].to_numpy()[smooth - 1 :]
                else:
                    xs = g["step"].to_numpy()
                ax.plot(xs, y, label=str(name), lw=1.2)
            if row == 0:
                ax.set_title(run_title(log[in_run], key, labels), fontsize=9)
            if row == len(kinds) - 1:
                ax.set_xlabel("step")
            ax.set_ylabel(kind + moving)
            ax.spines[["top", "right"]].set_visible(False)
            if sub.empty:
                ax.text(
                    0.5,
                    0.5,
                    "no loss terms logged" if row == 0 else "no monitored values logged",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    fontsize=8,
                    color="#777777",
                )
            else:
                ax.legend(fontsize=7, frameon=False)
    return fig


def run_title(sub: pd.DataFrame, key: str, labels: Mapping[str, str] | None = None) -> str:
    if labels and key in labels:
        return labels[key]
    first = sub.iloc[0]
    parts = [str(first["method"]), f"on {dataset_name(str(first['dataset']))}"]
    if "seed" in sub and pd.notna(first.get("seed")):
        parts.append(f"seed {int(first['seed'])}")
    return " ".join(parts) + f" [{str(key)[:6]}]"


def qualitative_grid(
    images: Mapping[str, Sequence[np.ndarray]],
    path: str | Path,
    *,
    row_labels: Sequence[str] | None = None,
    crop: tuple[int, int, int, int] | None = None,
    scores: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Columns are names (dict order), rows are images; ``crop`` = (y, x, h, w) for all;
    ``scores[name][i]`` is printed under tile (i, name)."""
    path = _check(path)
    plt = _plt()
    names = list(images)
    n_rows = len(next(iter(images.values())))
    fig, axes = plt.subplots(
        n_rows,
        len(names),
        figsize=(2.2 * len(names), 1.9 * n_rows + 0.3),
        squeeze=False,
        layout="constrained",
    )
    for j, name in enumerate(names):
        for i, img in enumerate(images[name]):
            ax = axes[i][j]
            if img is None:
                ax.axis("off")
                continue
            if crop is not None:
                y, x, h, w = crop
                img = img[y : y + h, x : x + w]
            ax.imshow(img, interpolation="nearest" if crop is not None else "antialiased")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
            if j == 0 and row_labels:
                ax.set_ylabel(row_labels[i], fontsize=8)
            if scores and name in scores and scores[name][i]:
                ax.set_xlabel(scores[name][i], fontsize=7)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def gallery_grid(
    gallery: Gallery,
    path: str | Path,
    *,
    metric: str | None = None,
    crop: tuple[int, int, int, int] | None = None,
) -> Path:
    """A qualitative grid of a :class:`~llbench.reports.gallery.Gallery`: input, every row's
    output and the ground truth per chosen image, each output titled with its ``metric`` score
    (default: the first of PSNR, SSIM, NIQE the outputs have)."""
    from llbench.io.images import read_image
    from llbench.reports.names import DECIMALS

    metric = metric or _tile_metric(gallery)
    columns: dict[str, list] = {}
    scores: dict[str, list[str]] = {}
    if gallery.inputs:
        columns["Input"] = [_read(gallery.inputs.get(i), read_image) for i in gallery.images]
    for label in gallery.rows:
        columns[label] = [_read(gallery.outputs[label].get(i), read_image) for i in gallery.images]
        if metric:
            d = DECIMALS.get(metric, 3)
            scores[label] = [
                (
                    f"{metric_name(metric)} {gallery.scores[label][i][metric]:.{d}f}"
                    if metric in gallery.scores.get(label, {}).get(i, {})
                    else ""
                )
                for i in gallery.images
            ]
    if gallery.references:
        columns["Ground truth"] = [
            _read(gallery.references.get(i), read_image) for i in gallery.images
        ]
    return qualitative_grid(
        columns, path, row_labels=list(gallery.images), crop=crop, scores=scores
    )


def _tile_metric(gallery: Gallery) -> str | None:
    have = {m for per in gallery.scores.values() for s in per.values() for m in s}
    for m in ("psnr", "ssim", "ssim_skimage", "lpips", "niqe", "musiq", "loe"):
        if m in have:
            return m
    return sorted(have)[0] if have else None


def _read(path, read_image):
    return None if path is None else read_image(path)


def _check(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FIG_SUFFIXES:
        raise ValueError(f"figure file {path} must end in {', '.join(FIG_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
