"""HiLLIE's dense data selection (Sec. 3.2.1, Eq. 1).

At stage ``n >= 1`` every training input ``x_i`` gives one pair ``(y_i^(n-1), y_i^(n))`` of the
outputs of two adjacent enhancers. The ``k`` pairs (k = 300 in Sec. 4.1) with the largest score
gap under the previous ranker, ``|g^(n-1)(y_i^(n-1)) - g^(n-1)(y_i^(n))|``, go to the annotators:
``S^(n) = T_k(|...|)``. Ties in the gap are broken by the input's position, so the selection is
deterministic; ``k`` larger than the number of pairs selects them all.
"""

from __future__ import annotations

from collections.abc import Sequence

from llbench.errors import ConfigError


def score_gaps(scores_prev: Sequence[float], scores_new: Sequence[float]) -> list[float]:
    """``|g(y^(n-1)) - g(y^(n))|`` per pair."""
    if len(scores_prev) != len(scores_new):
        raise ValueError("score lists of different lengths")
    return [abs(float(a) - float(b)) for a, b in zip(scores_prev, scores_new, strict=True)]


def top_k(gaps: Sequence[float], k: int) -> list[int]:
    """Indices of the ``k`` largest gaps, largest first (Eq. 1); NaN gaps are never chosen."""
    if k < 1:
        raise ConfigError(f"hillie: k (pairs per stage) must be >= 1, got {k}")
    valid = [i for i, g in enumerate(gaps) if g == g]
    order = sorted(valid, key=lambda i: (-float(gaps[i]), i))
    return order[:k]
