"""Where the exported HiLLIE ranker lives (light: no torch), for the ``hillie-ranker`` metric."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "LLBENCH_HILLIE_RANKER"
FILE = "hillie-ranker.pt"


def ranker_path(home: Path | None = None) -> Path:
    """``$LLBENCH_HILLIE_RANKER``, else ``<home>/weights/hillie-ranker.pt``."""
    explicit = os.environ.get(ENV)
    if explicit:
        return Path(explicit).expanduser()
    from llbench import paths

    return paths.home(home) / "weights" / FILE


def ranker_missing(home: Path | None = None) -> str | None:
    path = ranker_path(home)
    if path.is_file():
        return None
    return (
        f"no HiLLIE ranker at {path}: train one (llbench run --method hillie ...), then "
        f"`llbench hillie export-ranker --run KEY`, or set {ENV} to a ranker file"
    )
