"""Thurstone Case V scaling of pairwise-comparison (2AFC) data by maximum likelihood.

HiLLIE (Zhao et al., Sec. 4.4) scales its pairwise preferences with Thurstone's Case V model, in
JOD units as Perez-Ortiz & Mantiuk's ``pwcmp`` toolbox (2017). This module keeps the names of the
former single module importable; the code lives in:

* :mod:`llbench.study.case_v`: the model (``SIGMA``, :func:`preference_probability`), the
  maximum-likelihood fit (:func:`thurstone_mle`, :func:`log_likelihood`), the comparison graph
  (:func:`comparison_components`) and :class:`ScalingError`; the model, priors, gauge and
  disconnected graphs are described in its docstring;
* :mod:`llbench.study.priors`: the priors (``PRIORS``, pwcmp's ``gaussian`` prior);
* :mod:`llbench.study.trials`: :class:`Trials`, answers in long format, and :func:`parse_bool`;
* :mod:`llbench.study.scaling`: :func:`scale_pairwise` with bootstrap intervals,
  :class:`ScalingResult` and :class:`DisconnectedWarning`;
* :mod:`llbench.study.observers`: :func:`observer_statistics`, :func:`kendall_agreement` and
  :func:`simulate_trials`.
"""

from __future__ import annotations

from llbench.study.case_v import (
    SIGMA,
    ScalingError,
    comparison_components,
    log_likelihood,
    preference_probability,
    thurstone_mle,
)
from llbench.study.observers import kendall_agreement, observer_statistics, simulate_trials
from llbench.study.priors import PRIORS, _fit_pwcmp, _pseudo_counts  # noqa: F401 - re-exported
from llbench.study.scaling import DisconnectedWarning, ScalingResult, scale_pairwise
from llbench.study.trials import Trials, parse_bool

__all__ = [
    "PRIORS",
    "SIGMA",
    "DisconnectedWarning",
    "ScalingError",
    "ScalingResult",
    "Trials",
    "comparison_components",
    "kendall_agreement",
    "log_likelihood",
    "observer_statistics",
    "parse_bool",
    "preference_probability",
    "scale_pairwise",
    "simulate_trials",
    "thurstone_mle",
]
