"""Mean opinion scores (MOS) for rating studies.

SLLEN (Sec. III-E3, Table IV) asks 10 subjects to rate each enhanced image on a 1-5 scale (worst
to best) and reports the average "US" score per method; SGZ (Sec. 4.6, Table 7) has 50
participants rate each method's result and reports the mean. Here the MOS of a condition is the
mean of all its ratings; the interval is a percentile bootstrap over observers (whole observers
are resampled, as for the pairwise scores in :mod:`llbench.study.scaling`).

Per observer: the number of ratings, their mean, and the Pearson correlation between the
observer's ratings and the mean rating of the *other* observers on the same items; an observer
whose correlation lies more than ``fence`` inter-quartile ranges below the first quartile is
flagged (Tukey's fence), screened with 4 or more observers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from llbench.study.case_v import ScalingError
from llbench.study.observers import flag_low_outliers


@dataclass
class MosResult:
    conditions: list[str]
    scores: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_ratings: np.ndarray
    ci: float
    n_bootstrap: int
    n_observers: int
    observers: pd.DataFrame = field(default_factory=pd.DataFrame)
    bootstrap: np.ndarray | None = None

    def to_frame(self) -> pd.DataFrame:
        se = (
            np.nanstd(self.bootstrap, axis=0, ddof=1)
            if self.bootstrap is not None and len(self.bootstrap) > 1
            else np.full(len(self.conditions), np.nan)
        )
        return pd.DataFrame(
            {
                "condition": self.conditions,
                "score": self.scores,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "se": se,
                "ratings": self.n_ratings.astype(int),
            }
        )


def mos_scores(
    data: pd.DataFrame,
    *,
    observer: str = "observer",
    condition: str = "condition",
    rating: str = "rating",
    item: str | None = None,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    fence: float = 1.5,
) -> MosResult:
    """MOS per condition with bootstrap intervals over observers, and observer statistics.

    ``item`` names what was rated (image content and condition); without it a condition is the
    item, which makes the observer correlation coarser.
    """
    missing = [c for c in (observer, condition, rating, item) if c and c not in data.columns]
    if missing:
        raise ScalingError(f"column(s) {', '.join(missing)} not in the ratings table")
    if len(data) == 0:
        raise ScalingError("no ratings to score")
    r = pd.to_numeric(data[rating], errors="coerce")
    if r.isna().any():
        raise ScalingError(f"column {rating!r} holds values that are not numbers")
    f = pd.DataFrame(
        {
            "observer": data[observer].astype(str).to_numpy(),
            "condition": data[condition].astype(str).to_numpy(),
            "rating": r.to_numpy(dtype=float),
            "item": (data[item] if item else data[condition]).astype(str).to_numpy(),
        }
    )
    conds = sorted(f["condition"].unique())
    obs = list(dict.fromkeys(f["observer"]))
    c_idx = f["condition"].map({c: k for k, c in enumerate(conds)}).to_numpy()
    o_idx = f["observer"].map({o: k for k, o in enumerate(obs)}).to_numpy()
    sums = np.zeros((len(obs), len(conds)))
    cnts = np.zeros((len(obs), len(conds)))
    np.add.at(sums, (o_idx, c_idx), f["rating"].to_numpy())
    np.add.at(cnts, (o_idx, c_idx), 1.0)
    n = cnts.sum(axis=0)
    mos = sums.sum(axis=0) / n

    boot = None
    lo = hi = np.full(len(conds), np.nan)
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(obs), size=(n_bootstrap, len(obs)))
        s_b = sums[picks].sum(axis=1)
        c_b = cnts[picks].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = np.where(c_b > 0, s_b / np.maximum(c_b, 1), np.nan)
        alpha = (1 - ci) / 2
        lo = np.nanquantile(boot, alpha, axis=0)
        hi = np.nanquantile(boot, 1 - alpha, axis=0)

    # observer statistics: correlation with the other observers' mean per item
    item_sum = f.groupby("item")["rating"].transform("sum").to_numpy()
    item_n = f.groupby("item")["rating"].transform("size").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        others = np.where(item_n > 1, (item_sum - f["rating"]) / (item_n - 1), np.nan)
    f = f.assign(others=others)
    rows = []
    for o in obs:
        mine = f[(f["observer"] == o) & f["others"].notna()]
        corr = np.nan
        if len(mine) >= 3 and mine["rating"].std() > 0 and mine["others"].std() > 0:
            corr = float(np.corrcoef(mine["rating"], mine["others"])[0, 1])
        all_mine = f[f["observer"] == o]
        rows.append(
            {
                "observer": o,
                "ratings": len(all_mine),
                "mean_rating": float(all_mine["rating"].mean()),
                "correlation": corr,
            }
        )
    stats = flag_low_outliers(pd.DataFrame(rows), "correlation", fence, min_iqr=0.02)
    return MosResult(
        conditions=conds,
        scores=mos,
        ci_low=np.asarray(lo, dtype=float),
        ci_high=np.asarray(hi, dtype=float),
        n_ratings=n,
        ci=ci,
        n_bootstrap=0 if boot is None else len(boot),
        n_observers=len(obs),
        observers=stats,
        bootstrap=boot,
    )
