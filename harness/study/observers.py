"""Per-observer statistics, the study-level agreement and simulated observers.

Per-observer statistics follow pwcmp's ``pw_outlier_analysis``: the mean log-likelihood of each
observer's answers under the scores scaled from all *other* observers; an observer whose value
lies more than ``fence`` inter-quartile ranges below the first quartile (Tukey's fence, 1.5) is
flagged as an outlier. The study-level agreement is Kendall & Babington Smith's (1940)
coefficient of agreement ``u``, computed per item (one image content and one pair of
conditions) so that each observer judges each item at most once, as the coefficient assumes.

:func:`simulate_trials` draws the answers of simulated observers from known Case V scores
(:mod:`llbench.study.case_v`), to validate the scaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import log_ndtr, ndtr

from llbench.study.case_v import SIGMA, ScalingError, thurstone_mle
from llbench.study.trials import Trials

if TYPE_CHECKING:
    from llbench.study.scaling import ScalingResult


def kendall_agreement(trials: Trials) -> float:
    """Kendall & Babington Smith's coefficient of agreement ``u``, per item.

    ``u = 2 * sum_items [C(k_a, 2) + C(k_b, 2)] / sum_items C(k_a + k_b, 2) - 1``, where ``k_a``
    and ``k_b`` count the answers for each side of an item; 1 when everyone agrees. Items judged
    only once carry no information and are skipped; NaN when no item was judged twice.
    """
    f = trials.frame
    wf = (f["winner"] == np.where(f["a"] < f["b"], f["a"], f["b"])).astype(int)
    grp = pd.DataFrame({"item": f["item"].to_numpy(), "wf": wf.to_numpy()}).groupby("item")["wf"]
    k = grp.sum().to_numpy(dtype=float)
    n = grp.size().to_numpy(dtype=float)
    agree = float(np.sum(k * (k - 1) / 2 + (n - k) * (n - k - 1) / 2))
    pairs = float(np.sum(n * (n - 1) / 2))
    if pairs == 0:
        return float("nan")
    return 2.0 * agree / pairs - 1.0


def observer_statistics(
    trials: Trials,
    result: ScalingResult,
    *,
    fence: float = 1.5,
    prior: str = "unanimous",
    prior_strength: float = 0.5,
    sigma: float = SIGMA,
) -> pd.DataFrame:
    """Per-observer agreement and outlier screening (pwcmp ``pw_outlier_analysis``).

    Columns: ``observer``, ``trials``; ``agreement`` (mean share of *other* observers who gave the
    same answer on the same item); ``consensus`` (share of answers that pick the condition with
    the higher global score, ties counted half); ``loglik`` (mean natural log-likelihood per
    answer under the scores scaled without this observer); ``outlier_distance`` (how many
    inter-quartile ranges ``loglik`` lies below the first quartile, 0 above it) and ``outlier``
    (``outlier_distance > fence``; screened only with 4 or more observers).
    """
    f = trials.frame
    conds = trials.conditions
    c_index = {c: k for k, c in enumerate(conds)}
    obs, per_obs = trials.observer_counts()
    total = per_obs.sum(axis=0)
    q = result.scores
    comp_of = {c: k for k, comp in enumerate(result.components) for c in comp}

    # agreement with the other observers on the same item
    f = f.assign(first=np.where(f["a"] < f["b"], f["a"], f["b"]))
    f = f.assign(wf=(f["winner"] == f["first"]).astype(int))
    grp = f.groupby("item")["wf"]
    n_item = grp.transform("size").to_numpy()
    k_item = grp.transform("sum").to_numpy()
    wf = f["wf"].to_numpy()
    same = np.where(wf == 1, k_item - 1, (n_item - k_item) - 1)
    others = n_item - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(others > 0, same / np.maximum(others, 1), np.nan)
    f = f.assign(share=share)

    wi = f["winner"].map(c_index).to_numpy()
    li = np.array([c_index[x] for x in np.where(f["winner"] == f["a"], f["b"], f["a"])])
    same_comp = np.array(
        [comp_of[conds[x]] == comp_of[conds[y]] for x, y in zip(wi, li, strict=True)]
    )
    cons = np.where(q[wi] > q[li], 1.0, np.where(q[wi] == q[li], 0.5, 0.0))
    f = f.assign(consensus=np.where(same_comp, cons, np.nan))

    rows = []
    for k, o in enumerate(obs):
        mine = f[f["observer"] == o]
        rest = total - per_obs[k]
        loglik = float("nan")
        if rest.sum() > 0:
            try:
                q_loo, comps = thurstone_mle(
                    rest, prior=prior, prior_strength=prior_strength, sigma=sigma
                )
            except ScalingError:
                q_loo, comps = None, []
            if q_loo is not None:
                comp_loo = {i: g for g, comp in enumerate(comps) for i in comp}
                mw = mine["winner"].map(c_index).to_numpy()
                ml = np.array(
                    [
                        c_index[x]
                        for x in np.where(mine["winner"] == mine["a"], mine["b"], mine["a"])
                    ]
                )
                keep = np.array(
                    [comp_loo[x] == comp_loo[y] for x, y in zip(mw, ml, strict=True)], dtype=bool
                )
                # a pair the others never compared carries no information about this observer
                seen = (rest + rest.T)[mw, ml] > 0
                keep &= seen
                if keep.any():
                    loglik = float(np.mean(log_ndtr((q_loo[mw[keep]] - q_loo[ml[keep]]) / sigma)))
        rows.append(
            {
                "observer": o,
                "trials": len(mine),
                "agreement": float(np.nanmean(mine["share"]))
                if mine["share"].notna().any()
                else np.nan,
                "consensus": float(np.nanmean(mine["consensus"]))
                if mine["consensus"].notna().any()
                else np.nan,
                "loglik": loglik,
            }
        )
    out = pd.DataFrame(rows)
    # min_iqr in nats per answer: keeps near-identical observers unflagged
    return flag_low_outliers(out, "loglik", fence, min_iqr=0.01)


def flag_low_outliers(
    stats: pd.DataFrame, column: str, fence: float, min_iqr: float
) -> pd.DataFrame:
    """Add ``outlier_distance`` (how many inter-quartile ranges, at least ``min_iqr``, the
    observer's ``column`` lies below the first quartile; NaN where it is not finite) and
    ``outlier`` (distance above ``fence``: Tukey's fence) to ``stats``; screened only with 4 or
    more finite values. Returns ``stats``."""
    x = stats[column].to_numpy(dtype=float)
    dist = np.full(len(stats), np.nan)
    valid = np.isfinite(x)
    if valid.sum() >= 4:
        q1, q3 = np.quantile(x[valid], [0.25, 0.75])
        iqr = max(q3 - q1, min_iqr)
        dist[valid] = np.maximum(q1 - x[valid], 0.0) / iqr
    stats["outlier_distance"] = dist
    stats["outlier"] = np.nan_to_num(dist, nan=0.0) > fence
    return stats


def simulate_trials(
    true_scores: Sequence[float],
    n_observers: int,
    repeats: int = 1,
    *,
    observer_noise: float = 0.0,
    seed: int = 0,
    sigma: float = SIGMA,
    conditions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Draw answers of simulated observers from known Case V scores (for validation).

    Every observer compares every pair ``repeats`` times (``repeats`` image contents); an
    observer's own scores are the true ones plus Gaussian ``observer_noise``.
    Returns a long table with ``observer, item, a, b, chosen``.
    """
    q = np.asarray(true_scores, dtype=float)
    n = len(q)
    conds = [str(c) for c in conditions] if conditions is not None else [f"c{i}" for i in range(n)]
    rng = np.random.default_rng(seed)
    rows = []
    for o in range(n_observers):
        q_o = q + rng.normal(0.0, observer_noise, size=n) if observer_noise > 0 else q
        for r in range(repeats):
            for i in range(n):
                for j in range(i + 1, n):
                    p = float(ndtr((q_o[i] - q_o[j]) / sigma))
                    win = i if rng.random() < p else j
                    rows.append(
                        (f"obs{o}", f"img{r}:{conds[i]}|{conds[j]}", conds[i], conds[j], conds[win])
                    )
    return pd.DataFrame(rows, columns=["observer", "item", "a", "b", "chosen"])
