"""The user-study figure: global scores with confidence intervals, as HiLLIE's Fig. 4 and 7.

One bar per condition (sorted from worst to best, so the preferred method ends on the right),
its bootstrap interval as an error bar, the value printed on the bar, and a zero line: for a
pairwise study the scores are in JOD (a difference of 1 = 75% preference); for a rating study
they are mean opinion scores. Writes PNG, SVG or PDF by the suffix, with the Agg backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from llbench.study.model import StudyError

SUFFIXES = (".png", ".svg", ".pdf")


def plot_scores(
    scores: pd.DataFrame,
    path: str | Path,
    *,
    title: str | None = None,
    unit: str = "JOD",
    highlight: str | None = None,
) -> Path:
    """Bar chart of ``scores`` (columns ``condition``, ``score``, ``ci_low``, ``ci_high``)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise StudyError(f"figure file {path} must end in {', '.join(SUFFIXES)}")
    missing = {"condition", "score", "ci_low", "ci_high"} - set(scores.columns)
    if missing:
        raise StudyError(f"score table lacks column(s) {', '.join(sorted(missing))}")
    if scores.empty:
        raise StudyError("no scores to plot")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    f = scores.sort_values("score").reset_index(drop=True)
    n = len(f)
    x = np.arange(n)
    val = f["score"].to_numpy(dtype=float)
    lo = f["ci_low"].to_numpy(dtype=float)
    hi = f["ci_high"].to_numpy(dtype=float)
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    err = np.vstack([np.where(has_ci, val - lo, 0.0), np.where(has_ci, hi - val, 0.0)])
    err = np.maximum(err, 0.0)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 + 0.75 * n), 3.6), layout="constrained")
    cmap = plt.get_cmap("viridis")
    colors = [cmap(0.15 + 0.7 * k / max(n - 1, 1)) for k in range(n)]
    if highlight is not None and highlight in set(f["condition"]):
        colors[int(np.flatnonzero(f["condition"].to_numpy() == highlight)[0])] = "#d62728"
    ax.bar(x, val, 0.65, color=colors, yerr=err, capsize=4, ecolor="#333333", error_kw={"lw": 1})
    for k in range(n):
        top = hi[k] if has_ci[k] else val[k]
        bottom = lo[k] if has_ci[k] else val[k]
        y, va = (top, "bottom") if val[k] >= 0 else (bottom, "top")
        ax.annotate(
            f"{val[k]:.2f}",
            (x[k], y),
            xytext=(0, 3 if va == "bottom" else -3),
            textcoords="offset points",
            ha="center",
            va=va,
            fontsize=8,
        )
    if unit == "JOD":
        ax.axhline(0.0, color="#555555", lw=0.8)
    ax.set_xticks(
        x,
        f["condition"].astype(str).tolist(),
        rotation=30 if n > 5 else 0,
        ha="right" if n > 5 else "center",
    )
    ax.set_ylabel("Global score (JOD)" if unit == "JOD" else f"Mean opinion score ({unit})")
    ax.set_title(title or "User study")
    ax.spines[["top", "right"]].set_visible(False)
    ax.margins(y=0.15)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
