"""DRBN's training loss: negative SSIM at three scales (authors' ``trainer.py``).

The code (``DRBL-stage1/src/trainer.py`` with its ``pytorch_ssim``) minimises
``-SSIM(y1, x1) - SSIM(y2, x2) - SSIM(y4, x4)``, where ``y_s`` are the band estimates at full,
1/2 and 1/4 size and ``x_s = x[:, :, ::s, ::s]`` the normal-light image subsampled by striding.
SSIM there: an 11 x 11 Gaussian window (sigma 1.5) per channel, zero padding of 5 pixels,
``C1 = 0.01^2``, ``C2 = 0.03^2`` (data range 1), the map averaged over pixels, channels and batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_window(size: int = 11, sigma: float = 1.5, channels: int = 3) -> torch.Tensor:
    """The separable Gaussian window, normalised to sum 1, as a depthwise conv kernel."""
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    w = (g[:, None] @ g[None, :]).float()
    return w.expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of ``a`` and ``b`` (N, C, H, W) in [0, 1], ``pytorch_ssim``'s definition."""
    c = a.shape[1]
    w = gaussian_window(window, sigma, c).to(a.device, a.dtype)
    pad = window // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, padding=pad, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).mean()


def band_targets(high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The normal-light image at full, 1/2 and 1/4 size, subsampled by striding (the code's)."""
    return high, high[:, :, 0::2, 0::2], high[:, :, 0::4, 0::4]


def drbn_loss_terms(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], high: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``{"ssim1": -SSIM(y1, x1), "ssim2": ..., "ssim4": ...}`` (their sum is the loss)."""
    targets = band_targets(high)
    return {f"ssim{s}": -ssim(y, x) for s, y, x in zip((1, 2, 4), outputs, targets, strict=True)}
