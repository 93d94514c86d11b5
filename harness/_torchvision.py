"""Import torchvision even when its compiled operators do not match the installed torch.

A torchvision wheel built for another torch (e.g. a CUDA build beside a CPU torch) fails at import
in ``torchvision/_meta_registrations.py`` with "operator torchvision::nms does not exist". The
model definitions, transforms and weight loading llbench uses are pure Python, so we pre-register
that one submodule as empty, import torchvision, and say what no longer works.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from types import ModuleType

_STUB = "torchvision._meta_registrations"


def import_torchvision() -> ModuleType:
    """Return the ``torchvision`` module, working around a torch/torchvision build mismatch."""
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        if "does not exist" not in str(exc):
            raise
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules[_STUB] = types.ModuleType(_STUB)
        tv = importlib.import_module("torchvision")
        warnings.warn(
            "torchvision's compiled operators do not match this torch build "
            f"({exc}); llbench uses only its pure-Python parts (models, transforms). "
            "Install matching torch and torchvision builds to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
        return tv
