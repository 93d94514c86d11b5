"""User-study scores in reports: stored when ``llbench study score`` computes them, read here.

``llbench study score NAME`` (with its ``--exclude``, ``--prior``, ``--seed`` ...) stores the
global scores with their intervals and, for every pair of conditions, the difference with its
bootstrap interval (:func:`store_study_result`). ``llbench report`` reads them
(:func:`study_table`): it does not rescale studies on every call. A study with answers but no
stored scores is scaled once with the default settings and stored; one whose stored scores
predate newer answers gets a note saying to score it again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from llbench import paths
from llbench.store.database import Store


def result_rows(result: Any, kind: str) -> list[dict[str, Any]]:
    frame = result.to_frame()
    answers = int(result.n_trials) if kind == "pairwise" else int(np.nansum(result.n_ratings))
    return [
        {
            "condition": r.condition,
            "kind": kind,
            "score": float(r.score),
            "ci_low": float(r.ci_low),
            "ci_high": float(r.ci_high),
            "unit": "JOD" if kind == "pairwise" else "MOS",
            "observers": int(result.n_observers),
            "answers": answers,
        }
        for r in frame.itertuples()
    ]


def pair_rows(result: Any, level: float | None = None) -> list[dict[str, Any]]:
    """Every pair's score difference with the percentile bootstrap interval of the difference
    (significant where it excludes 0)."""
    boot = getattr(result, "bootstrap", None)
    conds = list(result.conditions)
    level = level if level is not None else float(getattr(result, "ci", 0.95))
    out = []
    for i, a in enumerate(conds):
        for j, b in enumerate(conds):
            if j <= i:
                continue
            diff = float(result.scores[i] - result.scores[j])
            lo = hi = math.nan
            if boot is not None and len(boot) > 1:
                d = np.asarray(boot)[:, i] - np.asarray(boot)[:, j]
                d = d[np.isfinite(d)]
                if d.size:
                    lo, hi = np.quantile(d, [(1 - level) / 2, 1 - (1 - level) / 2])
            out.append({"a": a, "b": b, "diff": diff, "ci_low": float(lo), "ci_high": float(hi)})
    return out


def store_study_result(
    home: str | Path,
    name: str,
    kind: str,
    result: Any,
    settings: Mapping[str, Any],
    answers_seen: int,
) -> None:
    """Keep the scores of study ``name`` as computed (with the settings that made them)."""
    Store(paths.home(home)).save_study_scores(
        name, result_rows(result, kind), settings, answers_seen, pair_rows(result)
    )


def study_table(home: str | Path | None = None, *, compute_missing: bool = True):
    """A :class:`~llbench.reports.tables.Table` of every study's stored scores (rows:
    conditions; one column per study), or None when no study has answers."""
    from llbench.reports.records import Cell
    from llbench.reports.tables import Table

    home_dir = paths.home(home)
    if not (home_dir / "llbench.db").exists():
        return None
    store = Store(home_dir)
    notes: list[str] = []
    try:
        from llbench.study.store import StudyStore

        sstore = StudyStore(home_dir)
        studies = [s for s in sstore.list_studies() if sstore.count_answers(s.name) > 0]
    except Exception:  # noqa: BLE001 - no study tables yet
        return None
    if not studies:
        return None
    values: dict = {}
    cells: dict = {}
    columns = []
    rows: list[str] = []
    for study in studies:
        n_now = sstore.count_answers(study.name)
        stored = store.study_scores(study.name)
        if not stored and compute_missing:
            if not _compute(home_dir, study.name, study.kind, n_now):
                continue
            stored = store.study_scores(study.name)
        if not stored:
            continue
        seen = stored[0]["answers_seen"]
        if seen is not None and seen != n_now:
            notes.append(
                f"study {study.name}: scored with {seen} answers, it has {n_now} now; run "
                f"`llbench study score {study.name}` to update."
            )
        unit = stored[0]["unit"] or ("JOD" if study.kind == "pairwise" else "MOS")
        col = (study.name, unit)
        columns.append(col)
        for r in stored:
            cond = r["condition"]
            if cond not in rows:
                rows.append(cond)
            values[(cond, col)] = r["score"]
            cells[(cond, col)] = Cell(
                value=r["score"],
                ci=(r["ci_low"], r["ci_high"]) if r["ci_low"] is not None else None,
            )
        pairs = store.study_pairs(study.name)
        sig = [
            f"{p['a']} vs {p['b']}: {p['diff']:+.2f} [{p['ci_low']:.2f}, {p['ci_high']:.2f}]"
            for p in pairs
            if p["ci_low"] is not None and (p["ci_low"] > 0 or p["ci_high"] < 0)
        ]
        settings = stored[0]["settings"] or "{}"
        notes.append(
            f"study {study.name} ({study.kind}, {stored[0]['observers']} observers, "
            f"{stored[0]['answers']} answers, settings {settings}); pairs whose difference "
            f"interval excludes 0: {'; '.join(sig) if sig else 'none'}."
        )
    if not columns:
        return None
    table = Table(rows, columns, values, {c[1]: True for c in columns}, cells=cells)
    table.caption = (
        "User studies: 2AFC studies in just-objectionable differences (Thurstone Case V, JOD), "
        "rating studies as mean opinion scores (MOS); [lo, hi]: the bootstrap interval stored "
        "with the scores. Higher is better"
    )
    table.notes = notes
    return table


def _compute(home: Path, name: str, kind: str, n_answers: int) -> bool:
    from llbench.errors import LLBenchError
    from llbench.study.analysis import score_study

    settings = {"n_bootstrap": 1000, "seed": 0, "prior": "unanimous", "exclude": []}
    try:
        res = score_study(home, name, n_bootstrap=1000, seed=0, observer_stats=False)
    except LLBenchError:
        return False
    store_study_result(home, name, kind, res, settings, n_answers)
    return True
