"""Human studies: pairwise (2AFC) preference and mean-opinion-score studies, served as a web page.

Build a study from stored run outputs (:func:`create_study_from_runs`, HiLLIE Sec. 4.4) or from
any pairs (:func:`create_study_from_pairs`, :func:`add_pairs`: HiLLIE's annotation rounds), serve
it (:class:`StudyServer`, ``llbench study serve``), and scale the answers with Thurstone Case V
(:func:`scale_pairwise`, in JOD) or as mean opinion scores (:func:`mos_scores`).

Imports are lazy so that ``import llbench.study`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Item": "model",
    "PairSource": "model",
    "RatingSource": "model",
    "Study": "model",
    "StudyError": "model",
    "participant_schedule": "model",
    "select_images": "model",
    "StudyStore": "store",
    "add_pairs": "sources",
    "create_rating_study": "sources",
    "create_study_from_pairs": "sources",
    "create_study_from_runs": "sources",
    "StudyApp": "server",
    "StudyServer": "server",
    "SIGMA": "case_v",
    "ScalingError": "case_v",
    "ScalingResult": "scaling",
    "Trials": "trials",
    "kendall_agreement": "observers",
    "scale_pairwise": "scaling",
    "simulate_trials": "observers",
    "thurstone_mle": "case_v",
    "MosResult": "mos",
    "mos_scores": "mos",
    "plot_scores": "figures",
    "answers_frame": "analysis",
    "export_csv": "analysis",
    "majority_vote": "analysis",
    "score_study": "analysis",
    "study_results_frame": "analysis",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llbench.study' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
