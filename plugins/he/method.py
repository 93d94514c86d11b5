"""Global histogram equalization on luminance.

The image is converted to full-range YCbCr (BT.601 luma coefficients by default, see
:mod:`llbench.plugins.he.luma`), its luma is quantized to 8 bits (``round(255 Y)``), the 256-bin
histogram of the whole image is equalized with the discrete transform of Gonzalez & Woods,
*Digital Image Processing*, 3rd ed., Eq. (3.3-8), in OpenCV ``equalizeHist``'s form (darkest
occupied level -> 0, ``lut[k] = round(255 (cdf[k] - cdf_min) / (N - cdf_min))``), and RGB is
rebuilt from the equalized luma and the original Cb, Cr, then clipped to [0, 1]. A grey input
gives a grey output whose 8-bit histogram is as flat as the input's levels allow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from llbench.api import Method
from llbench.errors import ConfigError, ImageError

from . import DEFAULT_CONFIG
from .luma import (
    LUMA_COEFFICIENTS,
    apply_lut,
    equalization_lut,
    histograms_u8,
    rgb_to_ycbcr,
    to_u8,
    ycbcr_to_rgb,
)


def check_luma(method: str, luma: Any) -> str:
    if luma not in LUMA_COEFFICIENTS:
        raise ConfigError(
            f"method {method!r}: luma must be one of {sorted(LUMA_COEFFICIENTS)}, got {luma!r}"
        )
    return luma


def equalize(rgb: torch.Tensor, luma: str = "bt601") -> torch.Tensor:
    """Histogram-equalize the luma of ``rgb`` (``N x 3 x H x W`` float in [0, 1]), per image."""
    ycc = rgb_to_ycbcr(rgb, luma)
    y8 = to_u8(ycc[:, 0])
    y_eq = apply_lut(y8, equalization_lut(histograms_u8(y8))) / 255
    return ycbcr_to_rgb(torch.cat((y_eq[:, None], ycc[:, 1:]), 1), luma).clamp(0, 1)


class HistogramEqualization(Method):
    """Global HE of the 8-bit luma with chroma kept; see the module docstring."""

    def __init__(self, config: Mapping[str, Any], device: torch.device):
        unknown = sorted(set(config) - set(DEFAULT_CONFIG))
        if unknown:
            raise ConfigError(
                f"method 'he': unknown config key(s) {unknown}; known keys: {sorted(DEFAULT_CONFIG)}"
            )
        cfg = {**DEFAULT_CONFIG, **config}
        check_luma("he", cfg["luma"])
        super().__init__(cfg, device)

    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        if low.ndim != 4 or low.shape[1] != 3:
            raise ImageError(f"'he' expects an N x 3 x H x W batch, got shape {tuple(low.shape)}")
        return equalize(low.float().clamp(0, 1), self.config["luma"]).to(low.dtype)
