"""The ``clahe`` method: contrast-limited adaptive histogram equalization of the luma.

See :mod:`llbench.plugins.clahe.method` for the algorithm (Zuiderveld 1994, in OpenCV's form).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llbench.api import MethodSpec, hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from llbench.api.methods import Method

DEFAULT_CONFIG: dict[str, Any] = {
    # OpenCV's defaults, the setting LLIE papers use for their CLAHE rows:
    # cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).
    "clip_limit": 2.0,  # a bin may hold at most clip_limit x the mean count of a tile's bins
    "tile_grid": [8, 8],  # [rows, columns] of contextual regions
    "luma": "bt601",  # full-range YCbCr luma coefficients, as for `he`
}


def _build(config: Mapping[str, Any], device: torch.device) -> Method:
    from .method import CLAHE

    return CLAHE(config, device)


SPEC = MethodSpec(
    name="clahe",
    build=_build,
    summary="Contrast-limited adaptive histogram equalization of the 8-bit BT.601 luma "
    "(clip limit 2.0, 8x8 tiles, as OpenCV), chroma kept; own torch implementation.",
    paper="K. Zuiderveld, Contrast Limited Adaptive Histogram Equalization, "
    "Graphics Gems IV, Academic Press, 1994, pp. 474-485",
    supervision="none",
    trains=False,
    default_config=DEFAULT_CONFIG,
)


@hookimpl
def register_methods(register):
    register(SPEC)
