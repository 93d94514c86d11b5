"""How Python values become column values: JSON for containers, text for paths, NULL for
numbers that are not finite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _encode(v: Any) -> Any:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, sort_keys=True, default=str)
    if isinstance(v, Path):
        return str(v)
    return v


def _finite_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None
