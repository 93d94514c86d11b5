"""Reading stored results as pandas DataFrames (what ``llbench report`` and notebooks use)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from llbench import paths
from llbench.store.database import DATASET_ROW, REFERENCES, Store

COLUMNS = [
    "method",
    "dataset",
    "split",
    "metric",
    "value",
    "n_images",
    "n_failed",
    "run_key",
    "status",
    "finished",
]


def results(
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    *,
    home: str | Path | None = None,
    latest: bool = True,
) -> pd.DataFrame:
    """One row per (run, metric): the mean over the run's images (or the split-level value).

    With ``latest`` (the default) each (method, dataset, split, metric) keeps one value: the one
    from the most recently finished run over the whole split, or, when every run that has the
    metric was limited (``--limit``), the most recent of those. So a quick ``--limit`` run or a
    run that only measured efficiency never hides the full-split numbers of other metrics.
    Failed images are excluded from means; the ``n_failed`` column says how many there were.
    """
    store = Store(paths.home(home))
    runs = pd.DataFrame(
        [
            dict(r)
            for r in store.query(
                "SELECT key, method, dataset, split, status, n_images, n_failed, finished, "
                "provenance FROM runs WHERE status = 'finished'"
            )
        ]
        + [
            {
                "key": r["key"],
                "method": REFERENCES[r["which"]],
                "dataset": r["dataset"],
                "split": r["split"],
                "status": "finished",
                "n_images": r["n_images"],
                "n_failed": 0,
                "finished": r["created"],
                "provenance": r["provenance"],
            }
            for r in store.query('SELECT * FROM "references"')
        ]
    )
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    runs = _filter(runs, methods, datasets)
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    runs["complete"] = [json.loads(p or "{}").get("limit") is None for p in runs["provenance"]]
    keys = list(runs["key"])
    marks = ",".join("?" * len(keys))
    per_image = pd.DataFrame(
        [
            dict(r)
            for r in store.query(
                f"SELECT s.run_key, s.metric, AVG(s.value) AS value FROM scores s "
                f"JOIN items i ON i.run_key = s.run_key AND i.image = s.image "
                f"WHERE s.run_key IN ({marks}) AND i.status = 'ok' AND s.value IS NOT NULL "
                f"GROUP BY s.run_key, s.metric",
                keys,
            )
        ]
    )
    split_level = pd.DataFrame(
        [
            dict(r)
            for r in store.query(
                f"SELECT run_key, metric, value FROM scores WHERE run_key IN ({marks}) AND image = ?",
                [*keys, DATASET_ROW],
            )
        ]
    )
    frames = [f for f in (per_image, split_level) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True).merge(
        runs.rename(columns={"key": "run_key"}), on="run_key"
    )
    if metrics:
        out = out[out["metric"].isin(list(metrics))]
    if latest and not out.empty:
        out = (
            out.sort_values(["complete", "finished"])
            .groupby(["method", "dataset", "split", "metric"], as_index=False)
            .tail(1)
        )
    return out[COLUMNS].sort_values(["dataset", "metric", "method"]).reset_index(drop=True)


def per_image_scores(run_key: str, *, home: str | Path | None = None) -> pd.DataFrame:
    """One row per image of a run: ``image``, ``status``, ``error`` and one column per metric."""
    store = Store(paths.home(home))
    items = pd.DataFrame(
        [
            dict(r)
            for r in store.query(
                "SELECT image, status, error, output FROM items WHERE run_key = ?", (run_key,)
            )
        ]
    )
    if items.empty:
        return items
    scores = pd.DataFrame(
        [
            dict(r)
            for r in store.query(
                "SELECT image, metric, value FROM scores WHERE run_key = ? AND image != ?",
                (run_key, DATASET_ROW),
            )
        ]
    )
    if not scores.empty:
        wide = scores.pivot(index="image", columns="metric", values="value").reset_index()
        items = items.merge(wide, on="image", how="left")
    return items.sort_values("image").reset_index(drop=True)


def scores_frame(
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    *,
    home: str | Path | None = None,
    latest: bool = True,
) -> pd.DataFrame:
    """Every stored score in long form: ``method, dataset, split, run_key, image, metric, value``
    (image ``*`` for split-level values), then what identifies each run (``seed, preset, limit,
    weights_kind, weights_hash, train_dataset``), for the same runs :func:`results` summarizes.
    Reference rows (no run) have those columns empty."""
    summary = results(methods, datasets, metrics, home=home, latest=latest)
    cols = ["method", "dataset", "split", "run_key", "image", "metric", "value"]
    if summary.empty:
        return pd.DataFrame(
            columns=cols
            + ["seed", "preset", "limit", "weights_kind", "weights_hash", "train_dataset"]
        )
    runs = summary.drop_duplicates("run_key")[["run_key", "method", "dataset", "split"]]
    keys = list(runs["run_key"])
    store = Store(paths.home(home))
    rows = pd.DataFrame(
        [
            dict(r)
            for r in store.query(
                f"SELECT run_key, image, metric, value FROM scores "
                f"WHERE run_key IN ({','.join('?' * len(keys))})",
                keys,
            )
        ],
        columns=["run_key", "image", "metric", "value"],
    )
    if metrics:
        rows = rows[rows["metric"].isin(list(metrics))]
    out = rows.merge(runs, on="run_key")[cols]
    info = runs_frame(home=home)
    extra = ["seed", "preset", "limit", "weights_kind", "weights_hash", "train_dataset"]
    if not info.empty:
        info = info.rename(columns={"key": "run_key"})[["run_key", *extra]]
        out = out.merge(info, on="run_key", how="left")
    else:
        for c in extra:
            out[c] = None
    out = out[cols + extra]
    return out.sort_values(["dataset", "method", "image", "metric"]).reset_index(drop=True)


RUN_COLUMNS = [
    "key",
    "method",
    "dataset",
    "split",
    "status",
    "n_images",
    "n_failed",
    "seed",
    "preset",
    "limit",
    "weights_kind",
    "weights",
    "weights_hash",
    "train_dataset",
    "train_key",
    "config",
    "started",
    "finished",
    "error",
    "device",
    "done",
]


def run_fields(row: Mapping[str, Any], home: Path) -> dict[str, Any]:
    """What identifies a stored run beyond its key, parsed from its row and provenance:
    ``seed, preset, limit, weights_kind`` (``none``, ``official``, ``trained``, ``file``),
    ``weights``, ``weights_hash``, ``train_dataset``, ``train_key``, ``config`` (a dict)."""
    prov = _json(row["provenance"])
    training = prov.get("training") or {}
    weights = row["weights"] or prov.get("weights")
    if training:
        kind = "trained"
    elif not weights:
        kind = "none"
    elif Path(weights).parent == paths.cache_dir(home) / "weights" / row["method"]:
        kind = "official"
    else:
        kind = "file"
    return {
        "seed": row["seed"] if row["seed"] is not None else prov.get("seed"),
        "preset": prov.get("preset"),
        "limit": prov.get("limit"),
        "weights_kind": kind,
        "weights": weights,
        "weights_hash": row["weights_hash"] or prov.get("weights_hash"),
        "train_dataset": training.get("dataset"),
        "train_key": training.get("key"),
        "train_manifest": training.get("train_manifest"),
        "config": _json(row["config"]),
        "device": prov.get("device"),
        "provenance": prov,
    }


def runs_frame(*, home: str | Path | None = None) -> pd.DataFrame:
    """All runs with status, counts, times and what identifies them (:func:`run_fields`)."""
    home_dir = paths.home(home)
    store = Store(home_dir)
    rows = []
    for row in store.query("SELECT * FROM runs ORDER BY started"):
        r = dict(row)
        fields = run_fields(row, home_dir)
        prov = fields.pop("provenance")
        r.update(fields)
        r.pop("provenance", None)
        if r["status"] == "running" and _dead(prov.get("host"), prov.get("pid")):
            r["status"] = "interrupted"  # the process that ran it is gone; rerun to resume
        r["done"] = store.query(
            "SELECT COUNT(*) AS n FROM items WHERE run_key = ? AND status = 'ok'", (r["key"],)
        )[0]["n"]
        rows.append(r)
    if not rows:
        return pd.DataFrame(columns=RUN_COLUMNS)
    frame = pd.DataFrame(rows)
    return frame[RUN_COLUMNS + [c for c in frame.columns if c not in RUN_COLUMNS]]


def training_log(*, home: str | Path | None = None) -> pd.DataFrame:
    """Loss curves: ``method``, ``dataset``, ``train_key``, ``step``, ``name``, ``value``."""
    store = Store(paths.home(home))
    return pd.DataFrame(
        [
            dict(r)
            for r in store.query(
                "SELECT t.method, t.dataset, l.train_key, l.step, l.name, l.value FROM train_log l "
                "JOIN trainings t ON t.key = l.train_key ORDER BY l.train_key, l.step"
            )
        ],
        columns=["method", "dataset", "train_key", "step", "name", "value"],
    )


def _dead(host: str | None, pid: int | None) -> bool:
    """True when ``pid`` ran on this host and no longer exists."""
    import os
    import socket

    if host != socket.gethostname() or not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _filter(df: pd.DataFrame, methods, datasets) -> pd.DataFrame:
    """Rows of the named methods and datasets; names match case-insensitively."""
    if methods:
        df = df[df["method"].str.lower().isin([m.lower() for m in methods])]
    if datasets:
        df = df[df["dataset"].str.lower().isin([d.lower() for d in datasets])]
    return df
