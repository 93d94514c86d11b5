"""A stand-in for a module that is imported on first use.

Plugin modules are imported whenever llbench loads its plugins, also for commands that compute
nothing (``llbench --help``, ``llbench metrics``). Modules that plugins import at load time (the metric modules, ``llbench.api.segmenters``, the segmenters plugin) name ``torch`` through
:data:`torch`, which imports the real module the first time one of its attributes is read, so
registering the metrics never imports torch. Attributes read once are cached on the stand-in.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """``LazyModule("torch").Tensor`` imports torch, then behaves as ``torch.Tensor``."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_lazy_name", name)

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self._lazy_name), attr)
        object.__setattr__(self, attr, value)  # later reads skip __getattr__
        return value

    def __repr__(self) -> str:
        return f"<lazily imported module {self._lazy_name!r}>"


torch: Any = LazyModule("torch")
