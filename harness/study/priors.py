"""Priors of the Thurstone Case V scaling (:mod:`llbench.study.scaling`).

* Pseudo-count priors (``prior="unanimous"``, the default, ``"all"`` and ``"none"``): each
  chosen pair's likelihood is multiplied by ``[Phi(d / sigma) * Phi(-d / sigma)] ** a``
  (``d = q_i - q_j``), ``a = prior_strength`` pseudo-answers on each side; :func:`_pseudo_counts`
  returns them as extra win counts (see the scaling module's docstring for when each applies).
* ``prior="pwcmp"`` (:func:`_fit_pwcmp`) reproduces the default ``gaussian`` prior of pwcmp's
  ``pw_scale`` (2017 revision), for users who want pwcmp's numbers. Over the ordered pairs
  ``m = (i, j)`` compared at least once, with ``n_m = C[i, j] + C[j, i]`` and ``k_m = C[i, j]``
  moved one answer towards the middle when the pair is unanimous (``k = 0 -> 1``,
  ``k = n -> n - 1``), and with ``P_m = Phi(d_m / sigma)``, ``d_m = q_i - q_j``::

      pi_m = sum_l P_m ** k_l * (1 - P_m) ** (n_l - k_l) / S_l,
      S_l  = sum_m P_m ** k_l * (1 - P_m) ** (n_l - k_l)

  i.e. how likely the distance ``d_m`` is under each compared pair's (shifted) answers,
  normalised over the current distances and summed; the scores maximise
  ``sum_m [C[i, j] log P_m + C[j, i] log(1 - P_m) + log(pi_m + 0.1)]`` (each pair enters twice,
  as ``(i, j)`` and ``(j, i)``, as in pwcmp); pwcmp's gauge term ``0.01 mean(q)^2`` only fixes
  the mean. ``prior_strength`` does not apply. Unlike pwcmp, disconnected components are not
  linked: each is scaled with the pairs inside it. On pwcmp's example data
  (``examples/ex3_tmo_cmp_data.csv``, all scenes and each scene) the scores equal
  ``pw_scale``'s, run in GNU Octave, within 1e-3 JOD.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize
from scipy.special import log_ndtr

PRIORS = ("unanimous", "all", "none", "pwcmp")


def _error(message: str) -> Exception:
    from llbench.study.case_v import ScalingError  # defined there; imported late (no cycle)

    return ScalingError(message)


def _pseudo_counts(counts: np.ndarray, prior: str, strength: float) -> np.ndarray:
    if prior not in PRIORS:
        raise _error(f"unknown prior {prior!r}; use one of {', '.join(PRIORS)}")
    if strength < 0 or not math.isfinite(strength):
        raise _error(f"the prior strength must be a non-negative number, got {strength}")
    compared = (counts + counts.T) > 0
    if prior in ("none", "pwcmp"):  # pwcmp's prior is not a pseudo-count: see _fit_pwcmp
        mask = np.zeros_like(compared)
    elif prior == "all":
        mask = compared
    else:
        mask = compared & ((counts == 0) | (counts.T == 0))
    np.fill_diagonal(mask, False)
    return np.where(mask, float(strength), 0.0)


def _pwcmp_objective(q: np.ndarray, counts: np.ndarray, sigma: float) -> tuple[float, np.ndarray]:
    """Negative log posterior of pwcmp's ``gaussian`` prior (module docstring) and its gradient.

    Computed in log space over the ordered compared pairs; the gauge is ``0.5 * (sum q)^2``.
    """
    rows, cols = np.nonzero((counts + counts.T) > 0)
    won, lost = counts[rows, cols], counts[cols, rows]
    n = won + lost
    k = np.where(lost == 0, n - 1, np.where(won == 0, 1.0, won))  # unanimous: one answer back
    u = (q[rows] - q[cols]) / sigma
    log_p, log_1p = log_ndtr(u), log_ndtr(-u)
    log_pdf = -0.5 * u * u - 0.5 * math.log(2 * math.pi)
    r_p, r_1p = np.exp(log_pdf - log_p), np.exp(log_pdf - log_1p)  # d/du of log P, -log(1-P)
    # log aux[m, l] = k_l log P_m + (n_l - k_l) log(1 - P_m); E = aux / S_l
    log_aux = log_p[:, None] * k[None, :] + log_1p[:, None] * (n - k)[None, :]
    log_s = np.logaddexp.reduce(log_aux, axis=0)
    e = np.exp(log_aux - log_s[None, :])
    pi = e.sum(axis=1)
    f = -float(np.sum(won * log_p + lost * log_1p) + np.sum(np.log(pi + 0.1)))
    # d f / d u_m: likelihood, then the prior through pi_m and through every S_l
    g_u = -(won * r_p - lost * r_1p)
    dlog_aux = k[None, :] * r_p[:, None] - (n - k)[None, :] * r_1p[:, None]  # d log aux / d u_m
    c = (e / (pi + 0.1)[:, None]).sum(axis=0)
    g_u -= np.sum(e * dlog_aux * (1.0 / (pi + 0.1))[:, None] - e * dlog_aux * c[None, :], axis=1)
    grad = np.zeros_like(q)
    np.add.at(grad, rows, g_u / sigma)
    np.add.at(grad, cols, -g_u / sigma)
    total = float(q.sum())
    return f + 0.5 * total * total, grad + total


def _fit_pwcmp(counts: np.ndarray, sigma: float, x0: np.ndarray | None = None) -> np.ndarray:
    """Zero-mean scores under pwcmp's ``gaussian`` prior on one connected component."""
    n = counts.shape[0]
    if n == 1:
        return np.zeros(1)
    # pwcmp starts from zero; the objective is not convex, so start where it does
    start = np.zeros(n) if x0 is None or not np.all(np.isfinite(x0)) else x0 - np.mean(x0)
    with np.errstate(over="ignore", under="ignore"):
        res = optimize.minimize(
            _pwcmp_objective,
            start,
            args=(counts, sigma),
            jac=True,
            method="BFGS",
            options={"gtol": 1e-9, "maxiter": 2000},
        )
    q = np.asarray(res.x, dtype=float)
    grad = _pwcmp_objective(q, counts, sigma)[1] if np.all(np.isfinite(q)) else None
    if grad is None or np.max(np.abs(grad)) > 1e-5 * max(1.0, float(counts.sum())):
        raise _error(f"Thurstone scaling (pwcmp prior) did not converge: {res.message}")
    return q - q.mean()
