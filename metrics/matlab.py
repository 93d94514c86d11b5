"""SSIM as MATLAB computes it: Wang et al.'s reference ``ssim.m`` on MATLAB's ``rgb2gray``.

``llbench.metrics.matlab`` holds the definitions that follow MATLAB's own functions (used by the
``ssim_matlab`` variant and by CEIQ):

* :data:`MATLAB_GRAY` and :func:`matlab_rgb2gray` -- ``rgb2gray`` of uint8 images;
* :func:`matlab_downsample_factor` and :func:`matlab_downsample` -- the automatic low-pass and
  decimation of ``ssim.m`` (``f = max(1, round(min(H, W) / 256))``);
* :func:`ssim_matlab` -- ``ssim.m`` (2009 version) itself.

Large images are processed in bands of rows (see :mod:`llbench.metrics.functional`): each
downsampled row is the mean of the same ``f x f`` block as on the whole image.
"""

from __future__ import annotations

import math

from llbench._lazy import torch  # imported on first use (light plugin loading)
from llbench.metrics.functional import (
    _SSIM_WIN,
    MetricInputError,
    _check,
    ssim_banded,
    to_levels,
    work_dtype,
)

__all__ = [
    "MATLAB_GRAY",
    "matlab_rgb2gray",
    "matlab_downsample",
    "matlab_downsample_factor",
    "ssim_matlab",
]

#: MATLAB's ``rgb2gray`` weights: the first row of ``inv(NTSC)``, which its documentation rounds
#: to 0.2989, 0.5870, 0.1140 (1.3 % of the 2^24 colours round differently with those).
MATLAB_GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def matlab_rgb2gray(levels: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2gray`` of uint8 RGB levels: ``N x 1 x H x W`` float levels 0..255 (integers),
    ``floor(0.298936 R + 0.587043 G + 0.114021 B + 0.5)`` as MATLAB rounds to uint8.

    Computed in float64 (float32 on MPS), which decides every colour as MATLAB does: no colour lies
    closer than 4.6e-6 to a rounding tie.
    """
    dt = work_dtype(levels.device)
    r, g, b = levels.to(dt).unbind(1)
    y = r * MATLAB_GRAY[0] + g * MATLAB_GRAY[1] + b * MATLAB_GRAY[2]
    return y.add_(0.5).floor_().unsqueeze(1)


def matlab_downsample_factor(h: int, w: int) -> int:
    """``f = max(1, round(min(H, W) / 256))`` of Wang's ``ssim.m`` (MATLAB rounds halves up)."""
    return max(1, math.floor(min(h, w) / 256 + 0.5))


def _symmetric_index(size: int, f: int, device: torch.device) -> torch.Tensor:
    """Rows ``i - a + j`` (``i = 0, f, 2f, ...``, ``j < f``, ``a = (f - 1) // 2``, MATLAB's kernel
    centre ``floor((f + 1) / 2)``) reflected into ``0..size-1`` as 'symmetric' padding does."""
    start = torch.arange(0, size, f, device=device).unsqueeze(1) - (f - 1) // 2
    t = start + torch.arange(f, device=device)
    t = torch.where(t < 0, -t - 1, t)
    return torch.where(t >= size, 2 * size - 1 - t, t)


def matlab_downsample(x: torch.Tensor, f: int) -> torch.Tensor:
    """``imfilter(x, ones(f) / f^2, 'symmetric', 'same')`` then ``x(1:f:end, 1:f:end)``, the
    low-pass and decimation of ``ssim.m``: each kept pixel is the mean of an f x f block."""
    if f == 1:
        return x
    h, w = x.shape[-2:]
    ri, ci = _symmetric_index(h, f, x.device), _symmetric_index(w, f, x.device)
    return _block_means(x, ri, ci, f)


def _block_means(x: torch.Tensor, ri: torch.Tensor, ci: torch.Tensor, f: int) -> torch.Tensor:
    rows = x[..., ri.flatten(), :].unflatten(-2, tuple(ri.shape)).sum(dim=-2)
    blocks = rows[..., ci.flatten()].unflatten(-1, tuple(ci.shape)).sum(dim=-1)
    return blocks / float(f * f)


def _gray_rows(img: torch.Tensor, f: int):
    """``rows(a, b)``: rows ``a .. b-1`` of ``matlab_downsample(matlab_rgb2gray(img), f)``,
    computed from the ``f`` source rows of each (as float64 grey levels)."""
    h, w = img.shape[-2:]
    dt = work_dtype(img.device)
    ri, ci = _symmetric_index(h, f, img.device), _symmetric_index(w, f, img.device)

    def rows(a: int, b: int) -> torch.Tensor:
        src = ri[a:b]
        g = matlab_rgb2gray(to_levels(img[..., src.flatten(), :])).to(dt)
        if f == 1:
            return g
        local = torch.arange(src.numel(), device=img.device).view(src.shape)
        return _block_means(g, local, ci, f)

    return rows


def ssim_matlab(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """SSIM as Wang et al.'s reference MATLAB ``ssim.m`` (2009 version) on
    ``rgb2gray`` of the 8-bit images: grey = :func:`matlab_rgb2gray`; both downsampled by
    ``f = max(1, round(min(H, W) / 256))`` (:func:`matlab_downsample`; f = 2 for 600 x 400);
    11 x 11 Gaussian window (sigma 1.5), K = (0.01, 0.03), L = 255, 'valid' windows, population
    statistics, no clamping (Eq. 13 of Wang et al., TIP 2004); mean of the SSIM map.
    Needs at least 11 x 11 pixels after the downsampling."""
    _check("ssim_matlab", pred, ref, min_size=_SSIM_WIN)
    ref = ref.to(pred.device)
    n, _, h, w = pred.shape
    f = matlab_downsample_factor(h, w)
    hs, ws = h // f + (h % f > 0), w // f + (w % f > 0)
    if min(hs, ws) < _SSIM_WIN:
        raise MetricInputError(
            f"ssim_matlab: {w} x {h} (W x H) downsampled by {f} is smaller than the 11 x 11 window"
        )
    g1, g2 = _gray_rows(pred, f), _gray_rows(ref, f)
    # a downsampled row reads f source rows of 3 channels (levels, then grey in float64)
    per_row = n * (5 * ws + 6 * f * w)
    return ssim_banded(lambda a, b: (g1(a, b), g2(a, b)), (n, 1, hs, ws), False, per_row)
