"""Luma/chroma conversion and 8-bit histogram helpers (batched torch, any device).

The colour space is full-range YCbCr (as JPEG and OpenCV's ``COLOR_RGB2YCrCb`` for 8-bit data)
with selectable luma coefficients ``(kr, kg, kb)``:

    Y  = kr R + kg G + kb B
    Cb = (B - Y) / (2 (1 - kb)) + 1/2
    Cr = (R - Y) / (2 (1 - kr)) + 1/2

Replacing Y by Y' and keeping Cb, Cr adds ``Y' - Y`` to each of R, G and B: hue and the colour
differences are kept, which is what "equalize the luminance, keep the chroma" means here.
"""

from __future__ import annotations

import torch

LUMA_COEFFICIENTS: dict[str, tuple[float, float, float]] = {
    "bt601": (0.299, 0.587, 0.114),
    "bt709": (0.2126, 0.7152, 0.0722),
}


def rgb_to_ycbcr(rgb: torch.Tensor, luma: str = "bt601") -> torch.Tensor:
    """``N x 3 x H x W`` RGB in [0, 1] -> ``N x 3 x H x W`` (Y, Cb, Cr), full range, in [0, 1]."""
    kr, kg, kb = LUMA_COEFFICIENTS[luma]
    r, g, b = rgb.unbind(1)
    y = kr * r + kg * g + kb * b
    cb = (b - y) / (2 * (1 - kb)) + 0.5
    cr = (r - y) / (2 * (1 - kr)) + 0.5
    return torch.stack((y, cb, cr), 1)


def ycbcr_to_rgb(ycc: torch.Tensor, luma: str = "bt601") -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (not clipped: out-of-gamut values may leave [0, 1])."""
    kr, kg, kb = LUMA_COEFFICIENTS[luma]
    y, cb, cr = ycc.unbind(1)
    r = y + 2 * (1 - kr) * (cr - 0.5)
    b = y + 2 * (1 - kb) * (cb - 0.5)
    g = (y - kr * r - kb * b) / kg
    return torch.stack((r, g, b), 1)


def to_u8(x: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] -> integer levels 0..255 (``round(255 x)``) as int64."""
    return (x.clamp(0, 1) * 255).round().long()


def histograms_u8(levels: torch.Tensor) -> torch.Tensor:
    """256-bin histograms of each image: ``levels`` ``N x ...`` int64 in 0..255 -> ``N x 256``."""
    n = levels.shape[0]
    flat = levels.reshape(n, -1)
    offsets = torch.arange(n, device=levels.device)[:, None] * 256
    return torch.bincount((flat + offsets).reshape(-1), minlength=n * 256).view(n, 256)


def equalization_lut(hist: torch.Tensor) -> torch.Tensor:
    """Histogram-equalization look-up tables, ``N x 256`` counts -> ``N x 256`` levels (float).

    The discrete transform ``s_k = (L - 1) sum_{j<=k} p(r_j)`` (Gonzalez & Woods, Eq. (3.3-8))
    with the cumulative histogram shifted so the darkest occupied level maps to 0, as in OpenCV's
    ``equalizeHist``: ``lut[k] = round(255 (cdf[k] - cdf_min) / (total - cdf_min))``. A
    single-level image (``total == cdf_min``) is left unchanged.
    """
    cdf = hist.cumsum(1)
    total = cdf[:, -1:]
    cdf_min = cdf.masked_fill(cdf == 0, torch.iinfo(cdf.dtype).max).amin(1, keepdim=True)
    denom = total - cdf_min
    # float32 arithmetic as OpenCV (scale = 255.f / (total - cdf_min)); no float64, so it runs on
    # every torch device
    scale = 255.0 / denom.clamp_min(1).float()
    lut = ((cdf - cdf_min).float() * scale).round().clamp(0, 255)
    levels = torch.arange(256, device=hist.device, dtype=torch.float32).expand_as(lut)
    return torch.where(denom > 0, lut, levels)


def apply_lut(levels: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """``levels`` ``N x ...`` int64, ``lut`` ``N x 256`` -> ``lut[n, levels[n, ...]]``."""
    n = levels.shape[0]
    return lut.gather(1, levels.reshape(n, -1)).view(levels.shape)
