"""Shared fixtures: an isolated llbench home per test and small thread counts."""

from __future__ import annotations

import os

import pytest

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
