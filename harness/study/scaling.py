"""Thurstone Case V scaling of a study's pairwise answers: scores (JOD) with bootstrap intervals.

:func:`scale_pairwise` fits the Case V model of :mod:`llbench.study.case_v` (HiLLIE, Zhao et al.,
Sec. 4.4; Perez-Ortiz & Mantiuk 2017, the ``pwcmp`` toolbox; the model, its priors, the gauge and
disconnected comparison graphs are described there) to :class:`~llbench.study.trials.Trials` and
returns a :class:`ScalingResult`.

Confidence intervals: percentile bootstrap over observers (pwcmp ``pw_scale_bootstrp``);
resampling whole observers keeps each observer's answers together. Count matrices without
observer information are bootstrapped over single trials.

Per-observer statistics and the study-level agreement are in :mod:`llbench.study.observers`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from llbench.study.case_v import SIGMA, ScalingError, thurstone_mle
from llbench.study.observers import kendall_agreement, observer_statistics
from llbench.study.trials import Trials


class DisconnectedWarning(UserWarning):
    """The comparison graph has several components; their scores are not on one scale."""


@dataclass
class ScalingResult:
    """Scores (JOD) with bootstrap intervals, the comparison graph and per-observer statistics."""

    conditions: list[str]
    scores: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    counts: np.ndarray
    components: list[list[str]]
    anchor: str
    ci: float
    n_bootstrap: int
    bootstrap_unit: str
    n_observers: int
    n_trials: int
    prior: str
    agreement_u: float = float("nan")
    observers: pd.DataFrame = field(default_factory=pd.DataFrame)
    bootstrap: np.ndarray | None = None

    @property
    def connected(self) -> bool:
        return len(self.components) <= 1

    def score_of(self, condition: str) -> float:
        return float(self.scores[self.conditions.index(condition)])

    def to_frame(self) -> pd.DataFrame:
        """One row per condition: ``condition, score, ci_low, ci_high, se, component, ...``."""
        comp_of = {c: k for k, comp in enumerate(self.components) for c in comp}
        n = self.counts + self.counts.T
        se = (
            np.std(self.bootstrap, axis=0, ddof=1)
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
                "component": [comp_of[c] for c in self.conditions],
                "wins": self.counts.sum(axis=1).astype(int),
                "comparisons": n.sum(axis=1).astype(int),
            }
        )


def _percentile_ci(boot: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1.0 - ci) / 2.0
    return np.quantile(boot, alpha, axis=0), np.quantile(boot, 1.0 - alpha, axis=0)


def scale_pairwise(
    data: Trials | pd.DataFrame | Any,
    conditions: Sequence[str] | None = None,
    *,
    observer: str | None = "observer",
    a: str = "a",
    b: str = "b",
    chosen: str | None = None,
    a_chosen: str | None = None,
    item: str | None = None,
    reference: str | None = None,
    prior: str = "unanimous",
    prior_strength: float = 0.5,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    outlier_fence: float = 1.5,
    observer_stats: bool = True,
    sigma: float = SIGMA,
) -> ScalingResult:
    """Scale pairwise preferences with Thurstone Case V (see the module docstring).

    ``data`` is a :class:`Trials`, a long :class:`pandas.DataFrame` (one row per answer; name
    its columns with ``observer``, ``a``, ``b`` and ``chosen`` or ``a_chosen``), or a square count
    matrix ``C[i, j]`` (times ``i`` was preferred to ``j``) with ``conditions`` naming its rows.
    ``reference`` anchors that condition at 0 (else zero mean). Intervals are percentile
    bootstrap intervals over observers (over trials for a count matrix); ``n_bootstrap=0`` skips
    them; ``observer_stats=False`` skips the per-observer table. Disconnected comparison graphs raise :class:`DisconnectedWarning` and are listed in
    ``components``.
    """
    if isinstance(data, Trials):
        trials = data
    elif isinstance(data, pd.DataFrame):
        if chosen is None and a_chosen is None:
            chosen = "chosen"
        trials = Trials.from_frame(
            data,
            observer=observer,
            a=a,
            b=b,
            chosen=chosen,
            a_chosen=a_chosen,
            item=item,
            conditions=conditions,
        )
    else:
        trials = Trials.from_counts(data, conditions)
    if not 0 < ci < 1:
        raise ScalingError(f"the interval level must lie between 0 and 1, got {ci}")
    if n_bootstrap < 0:
        raise ScalingError("the number of bootstrap samples cannot be negative")
    conds = trials.conditions
    ref_index = None
    if reference is not None:
        if reference not in conds:
            raise ScalingError(
                f"reference condition {reference!r} not in the data; conditions: {', '.join(conds)}"
            )
        ref_index = conds.index(reference)
    # Every trial from its own observer (e.g. a count matrix): resample trials, which is a
    # multinomial draw over the cells of the count matrix; else resample whole observers.
    by_trial = trials.frame["observer"].nunique() == len(trials.frame)
    if by_trial:
        counts = trials.counts()
        obs, per_obs = trials.observers, None
    else:
        obs, per_obs = trials.observer_counts()
        counts = per_obs.sum(axis=0)
    if counts.sum() == 0:
        raise ScalingError("no trials to scale")

    def fit(c: np.ndarray, init: np.ndarray | None = None) -> tuple[np.ndarray, list[list[int]]]:
        return thurstone_mle(
            c,
            prior=prior,
            prior_strength=prior_strength,
            reference=ref_index,
            sigma=sigma,
            init=init,
        )

    scores, comps = fit(counts)
    comp_names = [[conds[i] for i in comp] for comp in comps]
    if len(comps) > 1:
        warnings.warn(
            f"the comparison graph has {len(comps)} disconnected components "
            f"({'; '.join(', '.join(c) for c in comp_names)}); scores are only comparable "
            "within a component",
            DisconnectedWarning,
            stacklevel=2,
        )

    boot = None
    lo = hi = np.full(len(conds), np.nan)
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        reps = []
        n_obs = len(obs)
        n_total = int(round(counts.sum()))
        cells = counts.ravel() / counts.sum()
        for _ in range(n_bootstrap):
            if per_obs is None:
                c_b = rng.multinomial(n_total, cells).reshape(counts.shape).astype(float)
            else:
                c_b = per_obs[rng.integers(0, n_obs, size=n_obs)].sum(axis=0)
            try:
                q_b, _ = fit(c_b, scores)
            except ScalingError:
                continue  # an infinite MLE under prior="none": this replicate has no estimate
            reps.append(q_b)
        if len(reps) < max(2, n_bootstrap // 2):
            raise ScalingError(
                f"only {len(reps)} of {n_bootstrap} bootstrap samples could be scaled; "
                "use a prior (prior='unanimous')"
            )
        boot = np.asarray(reps)
        lo, hi = _percentile_ci(boot, ci)

    result = ScalingResult(
        conditions=list(conds),
        scores=scores,
        ci_low=np.asarray(lo, dtype=float),
        ci_high=np.asarray(hi, dtype=float),
        counts=counts,
        components=comp_names,
        anchor=f"reference={reference}" if reference is not None else "mean=0",
        ci=ci,
        n_bootstrap=0 if boot is None else len(boot),
        bootstrap_unit="trials" if by_trial else "observers",
        n_observers=len(obs),
        n_trials=int(counts.sum()),
        prior=prior,
        agreement_u=kendall_agreement(trials),
        bootstrap=boot,
    )
    if observer_stats and not by_trial:
        result.observers = observer_statistics(
            trials, result, fence=outlier_fence, prior=prior, prior_strength=prior_strength
        )
    return result
