"""Statistics of report tables against known cases: interval coverage, the paired test's size
and power, Holm's correction, seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llbench.reports import statistics as st


def test_bootstrap_interval_covers_a_known_mean_at_the_nominal_rate():
    """95 % percentile intervals of the mean of 30 skewed values (exponential, mean 1) cover
    the true mean in about 95 % of 400 simulated test sets (percentile intervals run a little
    short with skew at n = 30: 0.90-0.97 is accepted)."""
    rng = np.random.default_rng(1)
    hits = 0
    n_sim = 400
    for i in range(n_sim):
        x = rng.exponential(1.0, 30)
        lo, hi = st.bootstrap_ci(x, n_boot=1000, seed=i)
        hits += lo <= 1.0 <= hi
    assert 0.90 <= hits / n_sim <= 0.97


def test_bootstrap_interval_edge_cases_and_reproducibility():
    assert st.bootstrap_ci([2.0]) == (2.0, 2.0)
    assert st.bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)
    assert all(math.isnan(v) for v in st.bootstrap_ci([]))
    x = np.arange(20.0)
    assert st.bootstrap_ci(x, seed=5) == st.bootstrap_ci(x, seed=5)
    lo, hi = st.bootstrap_ci(np.r_[x, np.nan])
    assert lo < x.mean() < hi


def test_paired_test_on_identical_methods_gives_no_significance():
    a = {f"i{k}": float(v) for k, v in enumerate(np.linspace(10, 30, 15))}
    res = st.paired_test(a, dict(a))
    assert res.p == 1.0 and res.mean_diff == 0.0 and not res.significant()
    assert res.ci == (0.0, 0.0)


def test_paired_test_size_and_power():
    """Under the null (no shift) about 5 % of tests reject; a real shift is detected."""
    rng = np.random.default_rng(2)
    rejections = 0
    n_sim = 300
    for _ in range(n_sim):
        base = rng.normal(20, 2, 25)
        other = base + rng.normal(0, 1, 25)
        res = st.paired_test(dict(enumerate(other)), dict(enumerate(base)))
        rejections += res.p < 0.05
    assert rejections / n_sim <= 0.09
    base = rng.normal(20, 2, 25)
    res = st.paired_test(
        dict(enumerate(base + 0.8 + rng.normal(0, 0.5, 25))), dict(enumerate(base))
    )
    assert res.significant() and res.mean_diff > 0 and res.ci[0] > 0


def test_paired_test_uses_common_images_only():
    a = {"x": 1.0, "y": 2.0, "z": 3.0}
    b = {"y": 1.0, "z": 2.5, "w": 9.0}
    res = st.paired_test(a, b)
    assert res.n == 2 and res.mean_diff == pytest.approx(0.75)
    assert st.paired_test({"x": 1.0}, {"x": 2.0}) is None


def test_wilcoxon_matches_a_hand_computed_exact_p():
    # five positive differences of distinct sizes: the exact two-sided p is 2 / 2^5
    assert st.wilcoxon_p(np.array([1.0, 2.0, 3.0, 4.0, 5.0])) == pytest.approx(2 / 32)


def test_holm_correction():
    assert st.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = st.holm([0.2, math.nan, 0.01])
    assert out[0] == pytest.approx(0.2) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_seed_summary_and_average():
    mean, std = st.seed_summary([20.0, 21.0, 22.0])
    assert mean == 21.0 and std == pytest.approx(1.0)
    assert st.seed_summary([5.0]) == (5.0, 0.0)
    avg = st.average_over_seeds([{"a": 1.0, "b": 2.0}, {"a": 3.0}])
    assert avg == {"a": 2.0}
