"""Zero-DCE++'s method class (see the package docstring for the settings)."""

from __future__ import annotations

from llbench.plugins._curves.method import CurveMethod
from llbench.plugins._curves.nets import CurveNet

from . import DEFAULT_CONFIG


class ZeroDCEPP(CurveMethod):
    """Depthwise separable curve network, one map shared by 8 iterations."""

    name = "zero-dce++"
    defaults = DEFAULT_CONFIG

    def build_net(self) -> CurveNet:
        return CurveNet("dsc", iterations=8, per_iteration_maps=False)
