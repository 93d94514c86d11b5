"""What makes runs one row (:func:`identity`) and how the row reads (:func:`row_label`,
:func:`config_diff`); the rules are in :mod:`llbench.reports.rows`."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from llbench.reports.names import dataset_name, method_name
from llbench.reports.records import RunRecord
from llbench.store.database import REFERENCES


# -- identity and labels ---------------------------------------------------------------------------
def identity(rec: RunRecord, shared: Collection[tuple] = ()) -> tuple:
    """What makes runs one row. Runs trained on their own test dataset's training split share a
    row across datasets ("trained per dataset"), unless their training also served runs on
    other datasets (``shared``: ``(train_dataset, train_manifest)``), whose row they join."""
    if rec.reference is not None:
        return ("reference", rec.reference)
    trained_on = (rec.train_dataset, rec.train_manifest)
    if (
        rec.weights_kind == "trained"
        and rec.train_dataset == rec.dataset
        and trained_on not in shared
    ):
        weights: tuple = ("trained", "own training split")
    elif rec.weights_kind == "trained":
        weights = ("trained", rec.train_dataset, rec.train_manifest)
    elif rec.weights_kind in ("official", "file"):
        weights = (rec.weights_kind, rec.weights_hash)
    else:
        weights = ("none",)
    return (
        rec.method,
        weights,
        rec.preset,
        json.dumps(rec.config, sort_keys=True, default=str),
        rec.limit,
    )


def config_diff(config: Mapping[str, Any], default: Mapping[str, Any] | None) -> list[str]:
    """``key=value`` for every (dotted) config entry that differs from ``default``."""
    if default is None:
        return []
    a, b = _flat(config), _flat(default)
    return [f"{k}={_short(a[k])}" for k in sorted(a) if k not in b or a[k] != b[k]]


def row_label(
    runs: Sequence[RunRecord],
    default_config: Mapping[str, Any] | None,
    split_size: int | None = None,
) -> tuple[str, set[str]]:
    """The readable label of a row and its flags (``quick``, ``limited``, ``config``)."""
    first = runs[0]
    if first.reference is not None:
        return REFERENCES[first.reference], set()
    parts: list[str] = []
    flags: set[str] = set()
    if first.weights_kind == "official":
        parts.append("official")
    elif first.weights_kind == "trained" and first.train_dataset:
        own = all(r.train_dataset == r.dataset for r in runs)
        if own and len({r.dataset for r in runs}) > 1:
            parts.append("trained per dataset")
        else:
            parts.append(dataset_name(first.train_dataset))
    elif first.weights_kind == "file":
        stem = Path(first.weights or "weights").stem
        parts.append(f"{stem} {str(first.weights_hash or '')[:6]}".strip())
    if first.preset:
        parts.append(first.preset)
        if first.preset == "quick":
            flags.add("quick")
    diff = config_diff(first.config, default_config)
    if diff:
        parts.append(", ".join(diff))
        flags.add("config")
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    if len(seeds) > 1:
        parts.append(_seed_text(seeds))
    elif seeds and seeds[0] != 0:
        parts.append(f"seed {seeds[0]}")
    if first.limit is not None:
        total = f" of {split_size}" if split_size else ""
        parts.append(f"{first.n_images}{total} images")
        flags.add("limited")
    name = method_name(first.method)
    return (f"{name} ({', '.join(parts)})" if parts else name), flags


def _seed_text(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ",".join(map(str, seeds))


# -- small helpers ---------------------------------------------------------------------------------
def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    text = json.dumps(v, default=str) if not isinstance(v, str) else v
    return text if len(text) <= 24 else text[:21] + "..."
