"""The user-study figure: global scores with confidence intervals, as HiLLIE's Fig. 4 and 7.

One bar per condition (sorted from worst to best, so the preferred method ends on the right),
its bootstrap interval as an error bar, the value printed on the bar, and a zero line: for a
pairwise study the scores are in JOD (a difference of 1 = 75% preference); for a rating study
they are mean opinion scores, drawn on the study's rating scale (bars rise from its lowest
value, the axis spans the whole scale). Given the pairwise differences with their bootstrap
intervals (:func:`llbench.reports.studies.pair_rows`), each pair of neighbouring bars gets a
bracket marked ``*`` when the interval of their difference excludes 0 and ``n.s.`` otherwise,
so a reader sees which steps of the ranking the data support. Writes PNG, SVG or PDF by the
suffix, with the Agg backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llbench.study.model import StudyError

SUFFIXES = (".png", ".svg", ".pdf")


def plot_scores(scores: pd.DataFrame, path: str | Path, **options: Any) -> Path:
    """Write :func:`score_figure` of ``scores`` (same ``options``) to ``path`` (PNG, SVG, PDF)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise StudyError(f"figure file {path} must end in {', '.join(SUFFIXES)}")
    fig = score_figure(scores, **options)  # selects the Agg backend before pyplot is imported
    import matplotlib.pyplot as plt

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
    finally:
        plt.close(fig)
    return path


def score_figure(
    scores: pd.DataFrame,
    *,
    title: str | None = None,
    unit: str = "JOD",
    highlight: str | None = None,
    scale: tuple[float, float] | None = None,
    pairs: Sequence[Mapping[str, Any]] | None = None,
    level: float = 0.95,
) -> Any:
    """The bar chart (a matplotlib ``Figure``) of ``scores`` (columns ``condition``, ``score``,
    ``ci_low``, ``ci_high``).

    ``scale``: a rating study's ``(lowest, highest)`` rating, the range of the y axis (MOS only).
    ``pairs``: rows with ``a``, ``b``, ``ci_low``, ``ci_high`` (the ``level`` interval of the
    difference of a pair's scores); neighbouring bars get a significance bracket.
    """
    missing = {"condition", "score", "ci_low", "ci_high"} - set(scores.columns)
    if missing:
        raise StudyError(f"score table lacks column(s) {', '.join(sorted(missing))}")
    if scores.empty:
        raise StudyError("no scores to plot")
    if scale is not None and not (len(scale) == 2 and float(scale[0]) < float(scale[1])):
        raise StudyError(
            f"rating scale must be (lowest, highest) with lowest < highest, got {scale}"
        )
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
    base = float(scale[0]) if scale is not None and unit != "JOD" else 0.0
    ax.bar(
        x,
        val - base,
        0.65,
        bottom=base,
        color=colors,
        yerr=err,
        capsize=4,
        ecolor="#333333",
        error_kw={"lw": 1},
    )
    for k in range(n):
        top = hi[k] if has_ci[k] else val[k]
        bottom = lo[k] if has_ci[k] else val[k]
        y, va = (top, "bottom") if val[k] >= base else (bottom, "top")
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
    tops = np.where(has_ci, np.maximum(hi, val), val)
    marks = _neighbour_marks(f["condition"].astype(str).tolist(), pairs) if pairs else []
    if marks:
        _draw_brackets(ax, x, tops, marks)
        pct = f"{level * 100:g}%"
        ax.set_xlabel(
            f"* the {pct} bootstrap interval of the difference excludes 0; n.s.: it does not",
            fontsize=7,
            color="#555555",
        )
    if scale is not None and unit != "JOD":
        lo_s, hi_s = float(scale[0]), float(scale[1])
        top = max(hi_s, float(np.nanmax(tops))) if marks else hi_s
        ax.set_ylim(lo_s, top + (0.12 * (hi_s - lo_s) if marks else 0.0))
        ax.set_yticks(np.arange(np.ceil(lo_s), np.floor(hi_s) + 1))
    return fig


def _neighbour_marks(order: list[str], pairs: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """``(k, mark)`` for bars ``k`` and ``k + 1`` of ``order`` whose pair has an interval."""
    found: dict[frozenset[str], Mapping[str, Any]] = {
        frozenset((str(p["a"]), str(p["b"]))): p for p in pairs
    }
    marks = []
    for k in range(len(order) - 1):
        p = found.get(frozenset((order[k], order[k + 1])))
        if p is None:
            continue
        lo, hi = float(p["ci_low"]), float(p["ci_high"])
        if not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        marks.append((k, "*" if lo > 0 or hi < 0 else "n.s."))
    return marks


def _draw_brackets(ax: Any, x: np.ndarray, tops: np.ndarray, marks: list[tuple[int, str]]) -> None:
    """A bracket over each marked neighbouring pair, above both bars' interval tops."""
    span = float(np.nanmax(tops) - min(float(np.nanmin(tops)), 0.0)) or 1.0
    for k, mark in marks:
        y = float(max(tops[k], tops[k + 1])) + 0.18 * span
        tick = 0.025 * span
        ax.plot(
            [x[k] + 0.06, x[k] + 0.06, x[k + 1] - 0.06, x[k + 1] - 0.06],
            [y - tick, y, y, y - tick],
            color="#333333",
            lw=0.8,
        )
        ax.annotate(
            mark,
            ((x[k] + x[k + 1]) / 2, y),
            xytext=(0, 1),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
