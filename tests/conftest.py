"""Shared fixtures: an isolated llbench home per test and small thread counts.

The suite never reads or writes the developer's own folders: ``HOME``, ``TORCH_HOME`` (torch hub
and pyiqa weights) and the XDG folders (Chromium's profile, crash reports and caches, matplotlib's
cache) point into one temporary folder per session, set here at import, before any test module
imports torch or pyiqa (pyiqa fixes its folder at import), and inherited by every subprocess.
Tests that need weights place them there or in their own ``TORCH_HOME``; tests of the "weights
missing" messages find none.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

SESSION_HOME = Path(tempfile.mkdtemp(prefix="llbench-tests-home-"))
ISOLATED = {
    "HOME": SESSION_HOME,
    "TORCH_HOME": SESSION_HOME / "torch",
    "XDG_CONFIG_HOME": SESSION_HOME / "config",
    "XDG_CACHE_HOME": SESSION_HOME / "cache",
    "XDG_DATA_HOME": SESSION_HOME / "share",
    "XDG_STATE_HOME": SESSION_HOME / "state",
}
for _var, _path in ISOLATED.items():
    _path.mkdir(parents=True, exist_ok=True)
    os.environ[_var] = str(_path)

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["COLUMNS"] = "250"  # wide rich tables in CLI output


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh llbench home (and data root inside it) for one test."""
    h = tmp_path / "home"
    monkeypatch.setenv("LLBENCH_HOME", str(h))
    monkeypatch.setenv("LLBENCH_DATA", str(h / "data"))
    monkeypatch.setenv("LLBENCH_CACHE", str(h / "cache"))
    from llbench.pluginhost import host as plugin_host

    plugin_host.reset_host()
    yield h
    plugin_host.reset_host()


@pytest.fixture(scope="session", autouse=True)
def isolated_user_folders():
    """Keep the session's own HOME, TORCH_HOME and XDG folders (set at import) for every test,
    and remove them at the end."""
    for var, path in ISOLATED.items():
        os.environ[var] = str(path)
    yield SESSION_HOME
    shutil.rmtree(SESSION_HOME, ignore_errors=True)
