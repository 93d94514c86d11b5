"""What a run records about where its numbers came from."""

from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from llbench import __version__

PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-image", "pillow", "pyiqa", "pluggy")


@lru_cache(maxsize=1)
def git_sha() -> str | None:
    """The commit llbench runs from, when it runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = subprocess.run(
        ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def base_provenance() -> dict[str, Any]:
    return {
        "llbench": __version__,
        "git_sha": git_sha(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
    }
