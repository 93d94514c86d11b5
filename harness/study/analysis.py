"""Reading a study's answers back: tables, exports, scores, majority votes.

* :func:`answers_frame`: one row per stored answer (what :func:`export_csv` writes).
* :func:`score_study`: Thurstone Case V scores (pairwise, HiLLIE Sec. 4.4) or mean opinion
  scores (rating) with bootstrap intervals and per-observer statistics.
* :func:`majority_vote`: per item, the answers of the annotators and the majority winner, for
  HiLLIE's ranking labels (three annotators, majority voting; Sec. 3.2.1 and Appendix B).
* :func:`study_results_frame`: the global scores of every study, for ``llbench report``.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llbench.errors import LLBenchError
from llbench.study.model import StudyError
from llbench.study.mos import MosResult, mos_scores
from llbench.study.scaling import ScalingResult, scale_pairwise
from llbench.study.store import StudyStore
from llbench.study.trials import Trials

ANSWER_COLUMNS = [
    "study",
    "participant",
    "item",
    "content",
    "condition_a",
    "condition_b",
    "left",
    "right",
    "side",
    "chosen",
    "a_chosen",
    "rating",
    "batch",
    "shown_at",
    "answered_at",
    "response_s",
]
RESULT_COLUMNS = [
    "study",
    "kind",
    "condition",
    "score",
    "ci_low",
    "ci_high",
    "unit",
    "observers",
    "answers",
]


def _iso(t: float | None) -> str:
    if t is None or (isinstance(t, float) and np.isnan(t)):
        return ""
    return _dt.datetime.fromtimestamp(float(t), tz=_dt.UTC).isoformat(timespec="milliseconds")


def answers_frame(home: str | Path, name: str) -> pd.DataFrame:
    """Every answer of study ``name`` with its item, as a table (columns ``ANSWER_COLUMNS``)."""
    sstore = StudyStore(home)
    sstore.require_study(name)
    rows = []
    for r in sstore.answers(name):
        cond_b = r["cond_b"] or ""
        left = r["left_condition"]
        right = "" if not cond_b else (r["cond_a"] if left == cond_b else cond_b)
        rows.append(
            {
                "study": name,
                "participant": r["participant"],
                "item": r["item"],
                "content": r["content"],
                "condition_a": r["cond_a"],
                "condition_b": cond_b,
                "left": left,
                "right": right,
                "side": r["side"] or "",
                "chosen": r["chosen"] or "",
                "a_chosen": (int(r["chosen"] == r["cond_a"]) if r["chosen"] else pd.NA),
                "rating": r["rating"] if r["rating"] is not None else pd.NA,
                "batch": r["batch"] or "",
                "shown_at": _iso(r["shown"]),
                "answered_at": _iso(r["answered"]),
                "response_s": (
                    round(float(r["answered"]) - float(r["shown"]), 3)
                    if r["shown"] is not None
                    else np.nan
                ),
            }
        )
    frame = pd.DataFrame(rows, columns=ANSWER_COLUMNS)
    frame["a_chosen"] = frame["a_chosen"].astype("Int64")
    frame["rating"] = frame["rating"].astype("Int64")
    return frame


def export_csv(home: str | Path, name: str, path: str | Path) -> Path:
    """Write every answer of ``name`` to ``path`` (one row per answer)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    answers_frame(home, name).to_csv(path, index=False)
    return path


def score_study(
    home: str | Path,
    name: str,
    *,
    reference: str | None = None,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    prior: str = "unanimous",
    exclude: list[str] | None = None,
    observer_stats: bool = True,
) -> ScalingResult | MosResult:
    """Scores of a study from its stored answers; ``exclude`` drops participants (outliers)."""
    sstore = StudyStore(home)
    study = sstore.require_study(name)
    frame = answers_frame(home, name)
    if exclude:
        unknown = sorted(set(exclude) - set(frame["participant"]))
        if unknown:
            raise StudyError(f"no answers from participant(s) {', '.join(unknown)} to exclude")
        frame = frame[~frame["participant"].isin(exclude)]
    if frame.empty:
        raise StudyError(
            f"study {name!r} has no answers yet; serve it with `llbench study serve {name}`"
        )
    if study.kind == "rating":
        return mos_scores(
            frame.assign(item_key=frame["content"] + "\x00" + frame["condition_a"]),
            observer="participant",
            condition="condition_a",
            rating="rating",
            item="item_key",
            n_bootstrap=n_bootstrap,
            ci=ci,
            seed=seed,
        )
    conditions = sorted(sstore.conditions(name))
    trials = Trials.from_frame(
        frame,
        observer="participant",
        a="condition_a",
        b="condition_b",
        chosen="chosen",
        item="item",
        conditions=[
            c for c in conditions if c in set(frame["condition_a"]) | set(frame["condition_b"])
        ],
    )
    return scale_pairwise(
        trials,
        reference=reference,
        n_bootstrap=n_bootstrap,
        ci=ci,
        seed=seed,
        prior=prior,
        observer_stats=observer_stats,
    )


def majority_vote(
    home: str | Path, name: str, *, min_votes: int = 3, batch: str | None = None
) -> pd.DataFrame:
    """Per pairwise item: votes for each condition and the majority winner.

    HiLLIE labels each selected pair by three annotators and keeps the majority (Sec. 3.2.1,
    Appendix B). ``winner`` is the condition with more votes once an item has at least
    ``min_votes`` answers and no tie, else empty; ``complete`` says whether it has them.
    """
    sstore = StudyStore(home)
    study = sstore.require_study(name)
    if study.kind != "pairwise":
        raise StudyError(f"study {name!r} is a {study.kind} study; majority votes need pairs")
    items = [it for it in sstore.items(name) if batch is None or it.batch == batch]
    answers = answers_frame(home, name)
    votes: dict[str, dict[str, int]] = {}
    for r in answers.itertuples():
        votes.setdefault(r.item, {}).setdefault(r.chosen, 0)
        votes[r.item][r.chosen] += 1
    rows = []
    for it in items:
        v = votes.get(it.item, {})
        va, vb = v.get(it.cond_a, 0), v.get(it.cond_b or "", 0)
        n = va + vb
        winner = ""
        if n >= min_votes and va != vb:
            winner = it.cond_a if va > vb else it.cond_b or ""
        rows.append(
            {
                "item": it.item,
                "content": it.content,
                "condition_a": it.cond_a,
                "condition_b": it.cond_b,
                "batch": it.batch,
                "votes_a": va,
                "votes_b": vb,
                "votes": n,
                "winner": winner,
                "complete": n >= min_votes,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "item",
            "content",
            "condition_a",
            "condition_b",
            "batch",
            "votes_a",
            "votes_b",
            "votes",
            "winner",
            "complete",
        ],
    )


def result_frame(study: str, kind: str, result: ScalingResult | MosResult) -> pd.DataFrame:
    f = result.to_frame()
    answers = result.n_trials if isinstance(result, ScalingResult) else int(result.n_ratings.sum())
    return pd.DataFrame(
        {
            "study": study,
            "kind": kind,
            "condition": f["condition"],
            "score": f["score"],
            "ci_low": f["ci_low"],
            "ci_high": f["ci_high"],
            "unit": "JOD" if kind == "pairwise" else "MOS",
            "observers": result.n_observers,
            "answers": answers,
        },
        columns=RESULT_COLUMNS,
    )


def study_results_frame(
    home: str | Path, *, n_bootstrap: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Global scores of every study with answers: ``study, kind, condition, score, ci_low,
    ci_high, unit, observers, answers`` (JOD for pairwise studies, MOS for rating studies),
    best first within each study. Empty (with these columns) when there is none."""
    home = Path(home)
    if not (home / "llbench.db").exists():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    sstore = StudyStore(home)
    parts = []
    for study in sstore.list_studies():
        if sstore.count_answers(study.name) == 0:
            continue
        try:
            res: Any = score_study(
                home, study.name, n_bootstrap=n_bootstrap, seed=seed, observer_stats=False
            )
        except LLBenchError:  # e.g. answers that cannot be scaled yet
            continue
        parts.append(
            result_frame(study.name, study.kind, res).sort_values("score", ascending=False)
        )
    if not parts:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return pd.concat(parts, ignore_index=True)
