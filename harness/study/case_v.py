"""Thurstone Case V model of pairwise-comparison (2AFC) data and its maximum-likelihood fit.

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

Known answer: conditions 1-2 and 2-3 each compared 100 times with 25/75 answers (1-3 not compared)
give ``q = (-1, 0, 1)`` with zero mean, because ``Phi(-1 / 1.4826) = 0.25`` (to the 7 digits of
pwcmp's rounded constant: the exact answer is ``1.4826 * Phi^-1(0.75) = 0.9999985``).

The answers of a study (one row per answer, :mod:`llbench.study.trials`) are scaled with bootstrap
intervals by :func:`llbench.study.scaling.scale_pairwise`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, sparse
from scipy.sparse import csgraph
from scipy.special import log_ndtr, ndtr, ndtri

from llbench.errors import LLBenchError
from llbench.study.priors import _fit_pwcmp, _pseudo_counts

SIGMA = 1.4826
"""Case V noise scale: ``Phi(1 / SIGMA) = 0.75``, so one unit is one JOD."""


class ScalingError(LLBenchError):
    """Preference data that cannot be scaled as asked (empty, malformed, infinite MLE)."""


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
