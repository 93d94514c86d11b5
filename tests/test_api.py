"""The public Python API stays callable after its implementation modules are imported."""

from __future__ import annotations

import importlib

import llbench


def test_public_names_are_functions_even_after_submodule_imports(home):
    for module in (
        "llbench.engine.runner",
        "llbench.engine.scoring",
        "llbench.store.frames",
        "llbench.engine.enhancing",
        "llbench.reports.report",
        "llbench.plugins.lime",
    ):
        importlib.import_module(module)
    for name in ("run", "score", "results", "report", "enhance", "build_method", "list_plugins"):
        assert callable(getattr(llbench, name)), name
    assert llbench.results().empty and llbench.results().empty
    assert any(p.name == "lime" for p in llbench.list_plugins())
