"""The ``gamma`` method: a global per-pixel power curve, fixed or chosen per image.

See :mod:`llbench.plugins.gamma.method` for the definition and the config keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llbench.api import MethodSpec, hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from llbench.api.methods import Method

DEFAULT_CONFIG: dict[str, Any] = {
    # out = in ** (1 / gamma); 2.2 is the usual display gamma (sRGB is close to it).
    "gamma": 2.2,
    # adaptive: choose gamma per image so the mean of the output (over pixels and RGB channels)
    # equals target_mean; gamma is searched in [min_gamma, max_gamma].
    "adaptive": False,
    "target_mean": 0.5,
    "min_gamma": 0.05,
    "max_gamma": 20.0,
}


def _build(config: Mapping[str, Any], device: torch.device) -> Method:
    from .method import GammaCorrection

    return GammaCorrection(config, device)


SPEC = MethodSpec(
    name="gamma",
    build=_build,
    summary="Gamma correction out = in^(1/gamma) (default gamma 2.2; adaptive mode picks gamma "
    "per image so the mean brightness reaches a target).",
    paper="Power-law (gamma) transformation, Gonzalez & Woods, Digital Image Processing, "
    "3rd ed., Sec. 3.2.3, Eq. (3.2-3)",
    supervision="none",
    trains=False,
    default_config=DEFAULT_CONFIG,
)


@hookimpl
def register_methods(register):
    register(SPEC)
