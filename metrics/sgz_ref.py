"""PSNR, SSIM and MSE exactly as SGZ's evaluation script computes them: ``psnr_sgz``,
``ssim_sgz``, ``mse_sgz``.

SGZ (Zheng & Gupta, "Semantic-guided zero-shot learning for low-light image/video enhancement",
WACV 2022 workshops) reports PSNR, SSIM and MSE (Tables 2, 3, 4, 6) from the authors' ``REF.py``
(github.com/ShenZheng2000/Semantic-Guided-Low-Light-Image-Enhancement, commit ``ddaa95a``), which
differs from every common protocol. For each pair of PNG files it:

1. reads both as **greyscale** with ``cv2.imread(path, cv2.IMREAD_GRAYSCALE)``. For an RGB PNG,
   OpenCV asks libpng for ``png_set_rgb_to_gray(png, 1, 0.299, 0.587)``: libpng turns the
   coefficients into 15-bit fixed point by truncation (``0.299 -> 9797``, ``0.587 -> 19234``,
   blue ``32768 - 9797 - 19234 = 3737``) and, for 8-bit pixels without gamma handling, computes
   ``(9797 R + 19234 G + 3737 B) >> 15`` (truncated), passing grey pixels (``R = G = B``) through
   unchanged (:func:`gray_png`; checked against OpenCV 5.0 on random images: identical);
2. **min-max normalises each image** to ``[0, 1]`` in float32 with ``cv2.normalize(..., alpha=0,
   beta=1, NORM_MINMAX, CV_32F)``: ``scale = 1 / (max - min)``, ``shift = -min * scale`` in
   double, applied as ``float32(x * float32(scale) + float32(shift))`` with one rounding (the
   fused multiply-add of OpenCV's SIMD conversion; identical to OpenCV 5.0 on random images; a
   build without FMA differs by at most one float32 ulp). A constant image becomes all zeros
   (:func:`minmax_float32`);
3. scores the two float32 images with the scikit-image 0.16-era ``compare_mse``, ``compare_psnr``
   and ``compare_ssim`` defaults: MSE = mean (float64) of the float32 squared differences;
   PSNR = ``10 log10(1 / MSE)`` (data range 1: the dtype's maximum, the images being >= 0);
   SSIM with a 7x7 uniform window, sample covariance, ``K = (0.01, 0.03)`` and data range **2**
   (float32's ``dtype_range`` is ``(-1, 1)``), so ``C1``, ``C2`` are 4x those of data range 1,
   the mean over the windows inside the image.

The dataset score is the mean over images, as ``REF.py`` prints. ``REF.py`` pairs the two folders'
``glob`` lists by position without sorting; llbench pairs by name, which is what the authors
meant. These numbers are not comparable with ``psnr``/``ssim``/``mse`` (RGB, no normalisation).
"""

from __future__ import annotations

from llbench._lazy import torch  # imported on first use (light plugin loading)
from llbench.metrics.functional import _check, bands, to_levels

__all__ = ["gray_png", "minmax_float32", "mse_sgz", "psnr_sgz", "ssim_sgz"]

#: libpng's 15-bit fixed-point weights for ``png_set_rgb_to_gray(png, 1, 0.299, 0.587)``.
PNG_GRAY_WEIGHTS = (9797, 19234, 3737)
_WIN = 7
_K1, _K2, _RANGE = 0.01, 0.03, 2.0


def gray_png(levels: torch.Tensor) -> torch.Tensor:
    """OpenCV's greyscale PNG read of 8-bit RGB ``levels`` (``N x 3 x H x W``, integer values):
    ``(9797 R + 19234 G + 3737 B) >> 15``, grey pixels unchanged; ``N x H x W`` int32."""
    v = levels.to(torch.int32)
    r, g, b = v[:, 0], v[:, 1], v[:, 2]
    wr, wg, wb = PNG_GRAY_WEIGHTS
    mixed = torch.bitwise_right_shift(r * wr + g * wg + b * wb, 15)
    return torch.where((r == g) & (g == b), r, mixed)


def minmax_float32(gray: torch.Tensor) -> torch.Tensor:
    """``cv2.normalize(gray, alpha=0, beta=1, NORM_MINMAX, CV_32F)`` per image of ``gray``
    (``N x H x W`` integer levels) -> float32 ``N x H x W`` (module docstring, step 2)."""
    x = gray.to(torch.float64)
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    spread = hi - lo
    scale = torch.where(spread > 2.220446049250313e-16, 1.0 / spread, torch.zeros_like(spread))
    shift = -lo * scale
    s32 = scale.to(torch.float32).to(torch.float64)
    h32 = shift.to(torch.float32).to(torch.float64)
    return (x * s32 + h32).to(torch.float32)  # exact product and sum, one rounding: an FMA


def _normalised(name: str, pred: torch.Tensor, ref: torch.Tensor, min_size: int = 1):
    _check(name, pred, ref, min_size=min_size)
    ref = ref.to(pred.device)
    return tuple(minmax_float32(gray_png(to_levels(t))) for t in (pred, ref))


def mse_sgz(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``compare_mse`` of the normalised greyscale images: the float64 mean of the float32
    squared differences; ``(N,)`` float64."""
    a, b = _normalised("mse_sgz", pred, ref)
    return (a - b).square().sum(dim=(-2, -1), dtype=torch.float64) / (a.shape[-2] * a.shape[-1])


def psnr_sgz(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``compare_psnr`` of the normalised greyscale images: ``10 log10(1 / MSE)`` in dB
    (``inf`` for identical images, as REF.py's NumPy gives); ``(N,)`` float64."""
    return 10.0 * torch.log10(1.0 / mse_sgz(pred, ref))


def ssim_sgz(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``compare_ssim`` of the normalised greyscale images with its defaults for float32 input
    (7x7 uniform window, sample covariance, data range 2), in float64, in bands of rows; the
    mean over the windows inside the image; ``(N,)`` float64."""
    a, b = _normalised("ssim_sgz", pred, ref, min_size=_WIN)
    n, h, w = a.shape
    ho, wo = h - _WIN + 1, w - _WIN + 1
    c1, c2 = (_K1 * _RANGE) ** 2, (_K2 * _RANGE) ** 2
    cov = _WIN * _WIN / (_WIN * _WIN - 1.0)
    total = torch.zeros(n, dtype=torch.float64, device=a.device)
    for r0, r1 in bands(ho, 8 * n * w):
        rows = slice(r0, r1 + _WIN - 1)
        x = a[:, rows].to(torch.float64).unsqueeze(1)
        y = b[:, rows].to(torch.float64).unsqueeze(1)
        stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
        ux, uy, uxx, uyy, uxy = torch.nn.functional.avg_pool2d(stack, _WIN, stride=1).unbind(1)
        vx, vy, vxy = cov * (uxx - ux * ux), cov * (uyy - uy * uy), cov * (uxy - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        total += s.sum(dim=(-2, -1))
    return total / (ho * wo)
