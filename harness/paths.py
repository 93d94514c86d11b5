"""Where llbench keeps things.

* home (``--home`` / ``LLBENCH_HOME``, default ``~/.llbench``): the results database
  ``llbench.db``, run outputs under ``runs/``, trained weights under ``weights/``, training
  checkpoints under ``train/``, studies under ``studies/``.
* data root (``--data-root`` / ``LLBENCH_DATA``, default ``<home>/data``): one folder per dataset.
* cache (``LLBENCH_CACHE``, default ``<home>/cache``): downloads and official checkpoints.
"""

from __future__ import annotations

import os
from pathlib import Path


def home(override: str | os.PathLike | None = None) -> Path:
    p = override or os.environ.get("LLBENCH_HOME") or Path.home() / ".llbench"
    return Path(p).expanduser().resolve()


def data_root(override: str | os.PathLike | None = None, home_dir: Path | None = None) -> Path:
    p = override or os.environ.get("LLBENCH_DATA")
    if p:
        return Path(p).expanduser().resolve()
    return (home_dir or home()) / "data"


def cache_dir(home_dir: Path | None = None) -> Path:
    p = os.environ.get("LLBENCH_CACHE")
    if p:
        return Path(p).expanduser().resolve()
    return (home_dir or home()) / "cache"
