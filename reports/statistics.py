"""Uncertainty of the numbers in a table: bootstrap intervals and a paired test.

No LLIE paper of the seed set reports either; llbench adds them to every table:

* **Interval of a mean** (:func:`bootstrap_ci`): the 95 % percentile bootstrap interval of the
  mean over the test images. Images are resampled with replacement ``n_boot`` times (default
  2000, seeded, so a table is reproducible); the interval is the 2.5th and 97.5th percentile of
  the resampled means. It describes how much the mean depends on which images the test set
  happens to hold, not the training randomness.
* **Several seeds**: a row trained with several seeds shows the mean over seeds of the per-seed
  means, ``+- `` their standard deviation (ddof 1); its interval and its paired test use the
  per-image values averaged over the seeds (images every seed scored).
* **Paired test against a baseline** (:func:`paired_test`): on the images both rows scored, the
  two-sided Wilcoxon signed-rank test of the per-image differences (scipy, zero differences
  dropped as in Wilcoxon's original method; the exact distribution below 50 pairs without ties,
  the normal approximation otherwise). The differences of image quality scores are rarely normal
  (a few failure images dominate), which rules out the paired t-test; the signed-rank test needs
  only symmetry of the differences. The p-values of one column are Holm-corrected over the rows
  compared with the baseline (:func:`holm`). A value is marked where the corrected p < 0.05,
  as better or worse than the baseline by the metric's direction. With identical outputs every
  difference is zero and the test gives p = 1.
* The paired bootstrap interval of the mean difference (:func:`paired_bootstrap`) comes with the
  test, for the HTML report and CSV exports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
LEVEL = 0.95
ALPHA = 0.05


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaN dropped).

    One value gives a zero-width interval at that value; none gives (nan, nan).
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (math.nan, math.nan)
    if x.size == 1 or np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = _resampled_means(x, n_boot, rng)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


def _resampled_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(x.size, 1))
    for start in range(0, n_boot, chunk):
        n = min(chunk, n_boot - start)
        idx = rng.integers(0, x.size, size=(n, x.size))
        out[start : start + n] = x[idx].mean(axis=1)
    return out


@dataclass(frozen=True)
class PairedResult:
    """A row against the baseline on ``n`` shared images."""

    n: int
    mean_diff: float
    ci: tuple[float, float]
    p: float
    p_holm: float = math.nan

    def significant(self, alpha: float = ALPHA) -> bool:
        p = self.p_holm if not math.isnan(self.p_holm) else self.p
        return not math.isnan(p) and p < alpha


def paired_test(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> PairedResult | None:
    """Wilcoxon signed-rank test of ``a - b`` over the images both map (None if fewer than 2)."""
    keys = sorted(k for k in set(a) & set(b) if _finite(a[k]) and _finite(b[k]))
    if len(keys) < 2:
        return None
    d = np.array([a[k] - b[k] for k in keys], dtype=float)
    return PairedResult(
        len(keys), float(d.mean()), paired_bootstrap(d, n_boot, level, seed), wilcoxon_p(d)
    )


def paired_bootstrap(
    diffs: np.ndarray, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of paired differences."""
    return bootstrap_ci(diffs, n_boot=n_boot, level=level, seed=seed)


def wilcoxon_p(diffs: np.ndarray) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test (1.0 when every difference is 0)."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0 or np.all(d == 0):
        return 1.0
    from scipy.stats import wilcoxon

    res = wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return float(res.pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN kept), in the input order."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    order = sorted(idx, key=lambda i: pvalues[i])
    m = len(order)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def seed_summary(means: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for one seed) of per-seed means."""
    x = np.asarray([m for m in means if _finite(m)], dtype=float)
    if x.size == 0:
        return (math.nan, math.nan)
    return (float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0)


def average_over_seeds(per_seed: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per image, the mean over the seeds that all scored it."""
    if not per_seed:
        return {}
    common = set.intersection(*(set(k for k, v in s.items() if _finite(v)) for s in per_seed))
    return {k: float(np.mean([s[k] for s in per_seed])) for k in sorted(common)}


def _finite(v: float | None) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)
