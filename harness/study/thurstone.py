"""Thurstone Case V scaling of pairwise-comparison (2AFC) data by maximum likelihood.

HiLLIE (Zhao et al., Sec. 4.4) collects a count matrix ``C`` whose entry ``C[i, j]`` is how often
the result of method ``i`` was preferred to that of method ``j``, and computes global scores
``q = [q_1, ..., q_n]`` by maximising the log-likelihood of ``C`` under Thurstone's model
(Thurstone, "A law of comparative judgment", Case V). The paper's formula did not survive text
extraction; it is rebuilt here from the cited model and from Perez-Ortiz & Mantiuk, "A practical
guide and software for analysing pairwise comparison experiments" (2017, the ``pwcmp`` toolbox):

* Case V (equal, uncorrelated perceptual noise for every condition)::

      P(i preferred to j) = Phi((q_i - q_j) / sigma),   sigma = 1.4826

  With this sigma, ``Phi(1 / sigma) = 0.75``: a score difference of 1 means that 75% of answers
  prefer the better condition, the just-objectionable-difference (JOD) unit of pwcmp.
* Log-likelihood (binomial, the constant dropped)::

      log L(q) = sum_{i != j} C[i, j] * log Phi((q_i - q_j) / sigma)

* Prior. When a pair was compared with unanimous answers the likelihood keeps rising as the pair
  moves apart, and the estimate runs off to infinity. We multiply each such pair's likelihood by
  ``[Phi(d / sigma) * Phi(-d / sigma)] ** a`` (``d = q_i - q_j``), i.e. ``a`` pseudo-answers on
  each side (``a = 0.5`` by default, a Jeffreys-style half count). It is symmetric around ``d = 0``
  and vanishes as ``|d|`` grows, so every estimate is finite; 10 unanimous answers out of 10 map to
  a distance of 2.5 JOD. ``prior="unanimous"`` (default) applies it only to unanimous pairs, the
  way pwcmp's default ``bounded`` prior leaves non-unanimous pairs untouched, so data that already
  has a finite estimate is not biased (the 25/75 example below scales to exactly -1, 0, 1);
  ``prior="all"`` applies it to every compared pair (a proper prior on each distance);
  ``prior="none"`` is the plain MLE, which exists only when the "won at least once against" graph
  of each component is strongly connected (Ford 1957); otherwise :class:`ScalingError` is raised.
* ``prior="pwcmp"`` reproduces the default ``gaussian`` prior of pwcmp's ``pw_scale`` (2017
  revision) within 1e-3 JOD on pwcmp's example data; its formula is in
  :mod:`llbench.study.priors`, with the pseudo-count priors above.
* Gauge. The likelihood depends on differences only. The optimiser adds ``0.5 * (sum q) ** 2``
  (pwcmp's ``mean0`` regularisation), whose minimum fixes the mean at 0 without changing any
  difference; scores are then shifted to the requested anchor: zero mean, or a reference
  condition at 0 (pwcmp's ``fix0``).
* Disconnected comparison graphs (conditions never compared, even indirectly) cannot be put on one
  scale. They are detected, each component is scaled and anchored on its own, and the result
  lists the components (pwcmp links the components' best conditions instead, which invents data).
* Confidence intervals: percentile bootstrap over observers (pwcmp ``pw_scale_bootstrp``);
  resampling whole observers keeps each observer's answers together. Count matrices without
  observer information are bootstrapped over single trials.

Known answer: conditions 1-2 and 2-3 each compared 100 times with 25/75 answers (1-3 not compared)
give ``q = (-1, 0, 1)`` with zero mean, because ``Phi(-1 / 1.4826) = 0.25`` (to the 7 digits of
pwcmp's rounded constant: the exact answer is ``1.4826 * Phi^-1(0.75) = 0.9999985``).

Per-observer statistics follow pwcmp's ``pw_outlier_analysis``: the mean log-likelihood of each
observer's answers under the scores scaled from all *other* observers; an observer whose value
lies more than ``fence`` inter-quartile ranges below the first quartile (Tukey's fence, 1.5) is
flagged as an outlier. The study-level agreement is Kendall & Babington Smith's (1940)
coefficient of agreement ``u``, computed per item (one image content and one pair of
conditions) so that each observer judges each item at most once, as the coefficient assumes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, sparse
from scipy.sparse import csgraph
from scipy.special import log_ndtr, ndtr, ndtri

from llbench.errors import LLBenchError
from llbench.study.priors import PRIORS, _fit_pwcmp, _pseudo_counts  # noqa: F401 - re-exported

SIGMA = 1.4826
"""Case V noise scale: ``Phi(1 / SIGMA) = 0.75``, so one unit is one JOD."""


_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


class ScalingError(LLBenchError):
    """Preference data that cannot be scaled as asked (empty, malformed, infinite MLE)."""


class DisconnectedWarning(UserWarning):
    """The comparison graph has several components; their scores are not on one scale."""


# --------------------------------------------------------------------------------------------
# counts and graphs
# --------------------------------------------------------------------------------------------
def preference_probability(q_i: Any, q_j: Any, sigma: float = SIGMA) -> Any:
    """``P(i preferred to j) = Phi((q_i - q_j) / sigma)`` (Case V)."""
    return ndtr((np.asarray(q_i, dtype=float) - np.asarray(q_j, dtype=float)) / sigma)


def _check_counts(counts: Any) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ScalingError(f"the count matrix must be square, got shape {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ScalingError("the count matrix must hold finite, non-negative counts")
    c = c.copy()
    np.fill_diagonal(c, 0.0)
    return c


def comparison_components(counts: Any) -> list[list[int]]:
    """Connected components of the graph linking every pair compared at least once.

    Returns lists of condition indices, each sorted, ordered by their smallest index.
    """
    c = _check_counts(counts)
    n = c.shape[0]
    if n == 0:
        return []
    adj = (c + c.T) > 0
    seen = np.zeros(n, dtype=bool)
    comps = []
    for start in range(n):  # breadth-first search; n is the number of conditions (small)
        if seen[start]:
            continue
        frontier = np.zeros(n, dtype=bool)
        frontier[start] = True
        comp = frontier.copy()
        while frontier.any():
            frontier = adj[frontier].any(axis=0) & ~comp
            comp |= frontier
        seen |= comp
        comps.append([int(i) for i in np.flatnonzero(comp)])
    return comps


def _mle_exists(counts: np.ndarray) -> bool:
    """Ford's condition: the "won at least once against" digraph is strongly connected."""
    if counts.shape[0] <= 1:
        return True
    n_strong, _ = csgraph.connected_components(
        sparse.csr_matrix(counts > 0), directed=True, connection="strong"
    )
    return n_strong == 1


# --------------------------------------------------------------------------------------------
# maximum likelihood
# --------------------------------------------------------------------------------------------
def _neg_log_likelihood(q: np.ndarray, w: np.ndarray, sigma: float) -> tuple[float, Any, Any]:
    """Objective, gradient and Hessian of ``-sum W_ij log Phi((q_i-q_j)/sigma) + (sum q)^2/2``."""
    d = (q[:, None] - q[None, :]) / sigma
    pos = w > 0
    log_phi = log_ndtr(d)
    f = -float(np.sum(np.where(pos, w * log_phi, 0.0)))
    # inverse Mills ratio r = phi(d) / Phi(d), computed in log space for large negative d
    r = np.exp(-0.5 * d * d - 0.5 * math.log(2 * math.pi) - log_phi)
    wr = np.where(pos, w * r, 0.0)
    g = -(wr.sum(axis=1) - wr.sum(axis=0)) / sigma
    h = np.where(pos, w * r * (d + r), 0.0)  # d^2/dd^2 of -log Phi(d), times W
    s = (h + h.T) / sigma**2
    hess = np.diag(s.sum(axis=1)) - s
    total = float(q.sum())
    f += 0.5 * total * total
    g = g + total
    hess = hess + 1.0
    return f, g, hess


def _fit_connected(w: np.ndarray, sigma: float, x0: np.ndarray | None = None) -> np.ndarray:
    """Zero-mean MLE on one connected component with effective win counts ``w``."""
    n = w.shape[0]
    if n == 1:
        return np.zeros(1)
    if x0 is None or not np.all(np.isfinite(x0)):
        # Start from the classical Case V solution (row means of clipped z-scores).
        tot = w + w.T
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(tot > 0, (w + 0.5) / (tot + 1.0), 0.5)
        x0 = sigma * ndtri(p).mean(axis=1)
    x0 = np.asarray(x0, dtype=float) - np.mean(x0)
    with np.errstate(invalid="ignore", over="ignore"):
        res = optimize.minimize(
            lambda x: _neg_log_likelihood(x, w, sigma)[:2],
            x0,
            jac=True,
            hess=lambda x: _neg_log_likelihood(x, w, sigma)[2],
            method="trust-exact",
            options={"gtol": 1e-8, "maxiter": 500},
        )
    q = np.asarray(res.x, dtype=float)
    # trust-exact may report a "failure" once the gradient is at rounding level: check it here
    grad = _neg_log_likelihood(q, w, sigma)[1] if np.all(np.isfinite(q)) else None
    if grad is None or np.max(np.abs(grad)) > 1e-5 * max(1.0, float(w.sum())):
        raise ScalingError(f"Thurstone scaling did not converge: {res.message}")
    return q - q.mean()


def thurstone_mle(
    counts: Any,
    *,
    prior: str = "unanimous",
    prior_strength: float = 0.5,
    reference: int | None = None,
    sigma: float = SIGMA,
    init: np.ndarray | None = None,
) -> tuple[np.ndarray, list[list[int]]]:
    """Case V scores (JOD) for a count matrix ``counts[i, j]`` = times ``i`` beat ``j``.

    Each connected component of the comparison graph is scaled on its own and anchored at zero
    mean, or with ``reference`` (a condition index) at 0 in that condition's component.
    Conditions never compared get score 0 in a component of their own. ``init`` is an optional
    starting point (e.g. the full-data scores when bootstrapping).

    Returns ``(scores, components)``. Raises :class:`ScalingError` when ``prior="none"`` and a
    component's maximum-likelihood estimate is infinite (unanimous answers not offset by others).
    """
    c = _check_counts(counts)
    n = c.shape[0]
    if n == 0:
        raise ScalingError("no conditions to scale")
    if reference is not None and not 0 <= reference < n:
        raise ScalingError(f"reference index {reference} out of range for {n} conditions")
    w = c + _pseudo_counts(c, prior, prior_strength)
    comps = comparison_components(c)
    q = np.zeros(n)
    for comp in comps:
        idx = np.asarray(comp)
        sub = w[np.ix_(idx, idx)]
        if len(comp) > 1 and prior == "none" and not _mle_exists(c[np.ix_(idx, idx)]):
            raise ScalingError(
                "the maximum-likelihood scores are infinite: some conditions were preferred "
                "unanimously and no other answers tie them back (Ford's condition fails); "
                "use a prior (prior='unanimous' or 'all')"
            )
        start = None if init is None else np.asarray(init)[idx]
        if prior == "pwcmp":
            q_comp = _fit_pwcmp(c[np.ix_(idx, idx)], sigma, start)
        else:
            q_comp = _fit_connected(sub, sigma, start)
        if reference is not None and reference in comp:
            q_comp = q_comp - q_comp[comp.index(reference)]
        q[idx] = q_comp
    return q, comps


def log_likelihood(counts: Any, scores: Any, sigma: float = SIGMA) -> float:
    """``sum_{i != j} C[i, j] log Phi((q_i - q_j) / sigma)`` (natural log)."""
    c = _check_counts(counts)
    q = np.asarray(scores, dtype=float)
    d = (q[:, None] - q[None, :]) / sigma
    return float(np.sum(np.where(c > 0, c * log_ndtr(d), 0.0)))


# --------------------------------------------------------------------------------------------
# long-format data
# --------------------------------------------------------------------------------------------
def parse_bool(value: Any, where: str = "") -> bool:
    """True for true/1/yes/y/t, False for false/0/no/n/f (case-insensitive); else an error."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, (float, np.floating)) and value in (0.0, 1.0):
        return bool(value)
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ScalingError(
        f"cannot read {value!r}{' ' + where if where else ''} as a yes/no answer "
        "(use true/false, 1/0 or yes/no)"
    )


@dataclass
class Trials:
    """Pairwise trials in long format: one row per answer.

    ``frame`` has columns ``observer``, ``a``, ``b``, ``winner`` (``a`` or ``b``'s condition) and
    ``item`` (what was judged: content and pair; answers on one item are compared for agreement).
    """

    frame: pd.DataFrame
    conditions: list[str]

    @classmethod
    def from_frame(
        cls,
        data: pd.DataFrame,
        *,
        observer: str | None = "observer",
        a: str = "a",
        b: str = "b",
        chosen: str | None = None,
        a_chosen: str | None = None,
        item: str | None = None,
        conditions: Sequence[str] | None = None,
    ) -> Trials:
        """Read a long table. Name the winner with ``chosen`` (a column holding the chosen
        condition) or ``a_chosen`` (a column that is true when ``a`` won)."""
        if (chosen is None) == (a_chosen is None):
            raise ScalingError("give exactly one of chosen= (winning condition) or a_chosen=")
        needed = [col for col in (observer, a, b, chosen, a_chosen, item) if col is not None]
        missing = [col for col in needed if col not in data.columns]
        if missing:
            raise ScalingError(
                f"column(s) {', '.join(map(repr, missing))} not in the table; "
                f"it has: {', '.join(map(str, data.columns))}"
            )
        if len(data) == 0:
            raise ScalingError("the table has no trials")
        col_a = data[a].astype(str).to_numpy()
        col_b = data[b].astype(str).to_numpy()
        if np.any(col_a == col_b):
            row = int(np.flatnonzero(col_a == col_b)[0])
            raise ScalingError(f"row {row + 1} compares condition {col_a[row]!r} with itself")
        if chosen is not None:
            ch = data[chosen].astype(str).to_numpy()
            bad = (ch != col_a) & (ch != col_b)
            if np.any(bad):
                row = int(np.flatnonzero(bad)[0])
                raise ScalingError(
                    f"row {row + 1}: chosen {ch[row]!r} is neither {col_a[row]!r} nor {col_b[row]!r}"
                )
            winner = ch
        else:
            flags = [
                parse_bool(v, f"in column {a_chosen!r}, row {k + 1}")
                for k, v in enumerate(data[a_chosen].tolist())
            ]
            winner = np.where(np.asarray(flags, dtype=bool), col_a, col_b)
        obs = (
            data[observer].astype(str).to_numpy()
            if observer is not None
            else np.arange(len(data)).astype(str)
        )
        if item is not None:
            it = data[item].astype(str).to_numpy()
        else:
            it = np.array(
                [" | ".join(sorted(p)) for p in zip(col_a, col_b, strict=True)], dtype=object
            )
        frame = pd.DataFrame(
            {"observer": obs, "a": col_a, "b": col_b, "winner": winner, "item": it}
        )
        present = sorted(set(col_a) | set(col_b))
        if conditions is None:
            conds = present
        else:
            conds = [str(x) for x in conditions]
            unknown = sorted(set(present) - set(conds))
            if unknown:
                raise ScalingError(f"conditions not in the given list: {', '.join(unknown)}")
        return cls(frame, conds)

    @classmethod
    def from_counts(cls, counts: Any, conditions: Sequence[str] | None = None) -> Trials:
        """Expand a count matrix into single trials, each from its own anonymous observer."""
        c = _check_counts(counts)
        if np.any(c != np.round(c)):
            raise ScalingError("a count matrix must hold whole numbers of answers")
        n = c.shape[0]
        conds = (
            [str(x) for x in conditions] if conditions is not None else [str(i) for i in range(n)]
        )
        if len(conds) != n:
            raise ScalingError(f"{len(conds)} condition names for a {n}x{n} count matrix")
        rows = []
        for i in range(n):
            for j in range(n):
                for _ in range(int(c[i, j])):
                    rows.append((conds[i], conds[j], conds[i]))
        frame = pd.DataFrame(rows, columns=["a", "b", "winner"])
        frame.insert(0, "observer", [f"trial{k}" for k in range(len(frame))])
        frame["item"] = [" | ".join(sorted(p)) for p in zip(frame["a"], frame["b"], strict=True)]
        return cls(frame, conds)

    @property
    def observers(self) -> list[str]:
        return list(dict.fromkeys(self.frame["observer"]))

    def _loser(self) -> np.ndarray:
        f = self.frame
        return np.where(f["winner"] == f["a"], f["b"], f["a"])

    def observer_counts(self) -> tuple[list[str], np.ndarray]:
        """Per-observer count matrices, shape ``(observers, n, n)``."""
        obs = self.observers
        o_index = {o: k for k, o in enumerate(obs)}
        c_index = {c: k for k, c in enumerate(self.conditions)}
        out = np.zeros((len(obs), len(self.conditions), len(self.conditions)))
        oi = self.frame["observer"].map(o_index).to_numpy()
        wi = self.frame["winner"].map(c_index).to_numpy()
        li = np.array([c_index[x] for x in self._loser()], dtype=int)
        np.add.at(out, (oi, wi, li), 1.0)
        return obs, out

    def counts(self) -> np.ndarray:
        """The count matrix ``C[i, j]``: how often ``i`` was preferred to ``j``."""
        c_index = {c: k for k, c in enumerate(self.conditions)}
        out = np.zeros((len(self.conditions), len(self.conditions)))
        wi = self.frame["winner"].map(c_index).to_numpy()
        li = np.array([c_index[x] for x in self._loser()], dtype=int)
        np.add.at(out, (wi, li), 1.0)
        return out


# --------------------------------------------------------------------------------------------
# the full analysis
# --------------------------------------------------------------------------------------------
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
    ll = out["loglik"].to_numpy(dtype=float)
    dist = np.full(len(out), np.nan)
    valid = np.isfinite(ll)
    if valid.sum() >= 4:
        q1, q3 = np.quantile(ll[valid], [0.25, 0.75])
        iqr = max(q3 - q1, 0.01)  # nats per answer: keeps near-identical observers unflagged
        dist[valid] = np.maximum(q1 - ll[valid], 0.0) / iqr
    out["outlier_distance"] = dist
    out["outlier"] = np.nan_to_num(dist, nan=0.0) > fence
    return out


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
