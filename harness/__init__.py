"""llbench: a benchmarking harness for low-light image enhancement.

The Python API mirrors the command line::

    import llbench
    result = llbench.run("lime", "synthetic")          # llbench run
    frame = llbench.results(datasets=["synthetic"])     # stored results as a DataFrame
    scores = llbench.score("out/", ["psnr", "ssim"], ref_dir="gt/")   # llbench score
    table = llbench.report()                            # llbench report (a Table)

Heavy modules (torch, pandas) are imported on first use, so ``import llbench`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "run",
    "run_grid",
    "score",
    "results",
    "report",
    "enhance",
    "build_method",
    "list_plugins",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from llbench.engine.enhancing import enhance_files as enhance
    from llbench.engine.grid import run_grid
    from llbench.engine.runner import run
    from llbench.engine.scoring import score
    from llbench.engine.weights import build_method
    from llbench.store.frames import results

_LAZY = {
    "run": ("llbench.engine.runner", "run"),
    "run_grid": ("llbench.engine.grid", "run_grid"),
    "score": ("llbench.engine.scoring", "score"),
    "results": ("llbench.store.frames", "results"),
    "enhance": ("llbench.engine.enhancing", "enhance_files"),
    "build_method": ("llbench.engine.weights", "build_method"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'llbench' has no attribute {name!r}")


def report(**kwargs: Any):
    """The results table (:class:`llbench.reports.tables.Table`); kwargs as ``report_table``."""
    from llbench.reports.report import report_table

    return report_table(**kwargs)[0]


def list_plugins():
    """Loaded plugins with what they provide and any load error."""
    from llbench.pluginhost.host import get_host

    return get_host().plugins()
