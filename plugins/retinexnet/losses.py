"""Retinex-Net's losses (Wei et al., BMVC 2018, Sec. 3.1-3.2, Eq. 1-5), as the official
TensorFlow code computes them (weichen582/RetinexNet, ``model.py``).

* Reconstruction (Eq. 2): ``sum_ij lambda_ij || R_i * I_j - S_j ||_1`` over low/normal ``i, j``,
  ``lambda_ii = 1``, ``lambda_ij = 0.001`` for ``i != j`` (the mutual reconstructions); every L1
  term is a mean over pixels and channels, ``I`` repeated over the three colour channels.
* Invariable reflectance (Eq. 3): ``|| R_low - R_normal ||_1`` (mean), weight ``lambda_ir = 0.01``.
* Structure-aware illumination smoothness (Eq. 4):
  ``|| grad I * exp(-lambda_g grad R) ||`` with ``lambda_g = 10``; weight ``lambda_is = 0.1`` in
  Decom-Net's loss and 3 in Enhance-Net's. In the code ``grad`` is the absolute response to the
  2x2 kernel ``[[0, 0], [-1, 1]]`` (x) or its transpose (y) with TensorFlow ``'same'`` padding
  (one zero row/column at the bottom/right), ``R`` is first turned to grey with TensorFlow's
  ``rgb_to_grayscale`` weights (0.2989, 0.5870, 0.1140), and its gradient is averaged over 3x3
  neighbourhoods (``average_pooling2d``, ``'same'``, padding excluded from the mean).
* Relighting (Sec. 3.2): ``|| R_low * I_delta - S_normal ||_1`` plus the smoothness of
  ``I_delta`` weighted by ``R_low``'s gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TF_GRAY = (0.2989, 0.5870, 0.1140)


def rgb_to_gray(image: torch.Tensor) -> torch.Tensor:
    """``tf.image.rgb_to_grayscale``: (N, 3, H, W) -> (N, 1, H, W)."""
    w = image.new_tensor(TF_GRAY).view(1, 3, 1, 1)
    return (image * w).sum(dim=1, keepdim=True)


def gradient(x: torch.Tensor, direction: str) -> torch.Tensor:
    """``|conv2d(x, [[0, 0], [-1, 1]])|`` (``"x"``) or with the transposed kernel (``"y"``), with
    TensorFlow ``'same'`` padding, i.e. ``|x[i+1, j+1] - x[i+1, j]|`` and
    ``|x[i+1, j+1] - x[i, j+1]|`` with zeros beyond the bottom/right border."""
    p = F.pad(x, (0, 1, 0, 1))
    if direction == "x":
        return (p[..., 1:, 1:] - p[..., 1:, :-1]).abs()
    if direction == "y":
        return (p[..., 1:, 1:] - p[..., :-1, 1:]).abs()
    raise ValueError(f"direction must be 'x' or 'y', got {direction!r}")


def ave_gradient(x: torch.Tensor, direction: str) -> torch.Tensor:
    """The gradient averaged over 3x3 windows (TF ``average_pooling2d``, ``'same'``)."""
    return F.avg_pool2d(gradient(x, direction), 3, stride=1, padding=1, count_include_pad=False)


def smoothness(illumination: torch.Tensor, reflectance: torch.Tensor, lam_g: float = 10.0):
    """Structure-aware smoothness (Eq. 4) of ``illumination`` (N, 1, H, W) guided by
    ``reflectance`` (N, 3, H, W)."""
    gray = rgb_to_gray(reflectance)
    wx = torch.exp(-lam_g * ave_gradient(gray, "x"))
    wy = torch.exp(-lam_g * ave_gradient(gray, "y"))
    return (gradient(illumination, "x") * wx + gradient(illumination, "y") * wy).mean()


def decom_terms(
    low: torch.Tensor,
    high: torch.Tensor,
    r_low: torch.Tensor,
    i_low: torch.Tensor,
    r_high: torch.Tensor,
    i_high: torch.Tensor,
    weights: dict[str, float],
    lam_g: float = 10.0,
) -> dict[str, torch.Tensor]:
    """Decom-Net's weighted loss terms (Eq. 1): reconstruction, mutual reconstruction,
    invariable reflectance, illumination smoothness. A weight of 0 drops a term."""
    raw = {
        "recon_low": lambda: (r_low * i_low - low).abs().mean(),
        "recon_high": lambda: (r_high * i_high - high).abs().mean(),
        "mutual_low": lambda: (r_high * i_low - low).abs().mean(),
        "mutual_high": lambda: (r_low * i_high - high).abs().mean(),
        "smooth_low": lambda: smoothness(i_low, r_low, lam_g),
        "smooth_high": lambda: smoothness(i_high, r_high, lam_g),
        "equal_r": lambda: (r_low - r_high).abs().mean(),
    }
    return {k: float(weights[k]) * f() for k, f in raw.items() if float(weights.get(k, 0.0))}


def relight_terms(
    high: torch.Tensor,
    r_low: torch.Tensor,
    i_delta: torch.Tensor,
    weights: dict[str, float],
    lam_g: float = 10.0,
) -> dict[str, torch.Tensor]:
    """Enhance-Net's weighted loss terms: relighting reconstruction and the smoothness of
    ``I_delta``."""
    raw = {
        "relight": lambda: (r_low * i_delta - high).abs().mean(),
        "smooth_delta": lambda: smoothness(i_delta, r_low, lam_g),
    }
    return {k: float(weights[k]) * f() for k, f in raw.items() if float(weights.get(k, 0.0))}
