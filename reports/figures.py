"""Figures with matplotlib: metric bars, training curves and qualitative grids.

Each function writes one file (PNG or SVG by the suffix) and returns its path. The Agg backend
is used, so no display is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

FIG_SUFFIXES = (".png", ".svg", ".pdf")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def metric_bars(
    frame: pd.DataFrame, metric: str, path: str | Path, *, higher_better: bool | None = None
) -> Path:
    """Grouped bars: one group per dataset, one bar per method, for ``metric``."""
    path = _check(path)
    plt = _plt()
    sub = frame[frame["metric"] == metric]
    if sub.empty:
        raise ValueError(f"no values for metric {metric!r}")
    pivot = sub.pivot_table(index="dataset", columns="method", values="value", aggfunc="mean")
    n_ds, n_m = pivot.shape
    fig, ax = plt.subplots(
        figsize=(max(4.0, 1.2 + n_ds * (0.5 + 0.35 * n_m)), 3.4), layout="constrained"
    )
    width = 0.8 / max(n_m, 1)
    x = np.arange(n_ds)
    cmap = plt.get_cmap("tab10" if n_m <= 10 else "tab20")
    for i, meth in enumerate(pivot.columns):
        vals = pivot[meth].to_numpy(dtype=float)
        bars = ax.bar(x + (i - (n_m - 1) / 2) * width, vals, width, label=meth, color=cmap(i))
        ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=1)
    ax.set_xticks(x, list(pivot.index))
    arrow = (
        ""
        if higher_better is None
        else (" (\u2191 better)" if higher_better else " (\u2193 better)")
    )
    ax.set_ylabel(metric + arrow)
    ax.set_title(metric)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(
        fontsize=8, frameon=False, ncols=min(n_m, 4), loc="upper left", bbox_to_anchor=(0, -0.12)
    )
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def training_curves(log: pd.DataFrame, path: str | Path, *, smooth: int = 1) -> Path:
    """Loss curves: one panel per training run, one line per logged loss term."""
    path = _check(path)
    plt = _plt()
    runs = list(dict.fromkeys(log["train_key"]))
    if not runs:
        raise ValueError("no training logs stored")
    fig, axes = plt.subplots(
        1, len(runs), figsize=(4.2 * len(runs), 3.2), squeeze=False, layout="constrained"
    )
    for ax, key in zip(axes[0], runs, strict=True):
        sub = log[log["train_key"] == key]
        for name, g in sub.groupby("name"):
            y = g["value"].to_numpy(dtype=float)
            if smooth > 1 and len(y) >= smooth:
                y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
                xs = g["step"].to_numpy()[smooth - 1 :]
            else:
                xs = g["step"].to_numpy()
            ax.plot(xs, y, label=str(name), lw=1.2)
        first = sub.iloc[0]
        ax.set_title(f"{first['method']} on {first['dataset']}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(fontsize=7, frameon=False)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def qualitative_grid(
    images: Mapping[str, Sequence[np.ndarray]],
    path: str | Path,
    *,
    row_labels: Sequence[str] | None = None,
    crop: tuple[int, int, int, int] | None = None,
) -> Path:
    """Columns are methods (dict order), rows are images; ``crop`` = (y, x, h, w) for all."""
    path = _check(path)
    plt = _plt()
    names = list(images)
    n_rows = len(next(iter(images.values())))
    fig, axes = plt.subplots(
        n_rows,
        len(names),
        figsize=(2.2 * len(names), 1.8 * n_rows),
        squeeze=False,
        layout="constrained",
    )
    for j, name in enumerate(names):
        for i, img in enumerate(images[name]):
            if crop is not None:
                y, x, h, w = crop
                img = img[y : y + h, x : x + w]
            ax = axes[i][j]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
            if j == 0 and row_labels:
                ax.set_ylabel(row_labels[i], fontsize=8)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def _check(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FIG_SUFFIXES:
        raise ValueError(f"figure file {path} must end in {', '.join(FIG_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
