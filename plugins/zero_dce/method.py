"""Zero-DCE's method class (see the package docstring for the settings)."""

from __future__ import annotations

from llbench.plugins._curves.method import CurveMethod
from llbench.plugins._curves.nets import CurveNet

from . import DEFAULT_CONFIG


class ZeroDCE(CurveMethod):
    """DCE-Net with one curve map per iteration (Zero-DCE Eq. 3), 8 iterations."""

    name = "zero-dce"
    defaults = DEFAULT_CONFIG

    def build_net(self) -> CurveNet:
        return CurveNet("plain", iterations=8, per_iteration_maps=True, scale_factor=1)
