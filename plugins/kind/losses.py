"""KinD's losses (Zhang et al., ACM MM 2019, Sec. 3.1-3.3, Eq. 1-8) as the official code computes
them (zhangyhuaee/KinD: ``utils.py``, ``decomposition_net_train.py``, ``adjustment_net_train.py``,
``reflectance_restoration_net_train.py``).

Gradients (``utils.gradient``): the absolute response to ``[[0, 0], [-1, 1]]`` (x) or its
transpose (y) with TensorFlow ``'same'`` padding, then min-max normalised over the *whole batch
tensor*, ``(g - min) / (max - min + 1e-4)``. Grey levels use TensorFlow's ``rgb_to_grayscale``.

* Decomposition (Eq. 1-4): ``L1(R_l I_l, S_l) + L1(R_h I_h, S_h)`` (reconstruction),
  ``0.01 L1(R_l, R_h)`` (reflectance similarity), ``0.2 mean(M exp(-10 M))`` with
  ``M = |grad I_l| + |grad I_h|`` per direction (mutual consistency), and
  ``0.15 mean(|grad I / max(grad gray(S), 0.01)|)`` for the low and the normal image
  (illumination smoothness).
* Restoration (Eq. 5): ``MSE(R_hat, R_h) + MSE(grad gray(R_hat), grad gray(R_h))
  + (1 - SSIM(R_hat, R_h))``, SSIM the mean of per-channel SSIMs with an 11x11 Gaussian window
  (sigma 1.5), ``'valid'`` filtering, ``L = 1`` (``utils.tf_ssim``). The target is the normal
  image's decomposed reflectance raised to the power 1.2 (the code: "to improve the contrast").
* Adjustment (Eq. 8): ``MSE(I_hat, I_t) + MSE(grad I_hat, grad I_t)`` (x and y summed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llbench.plugins.retinexnet.losses import gradient as tf_gradient
from llbench.plugins.retinexnet.losses import rgb_to_gray


def gradient(x: torch.Tensor, direction: str) -> torch.Tensor:
    """``utils.gradient``: the TF gradient magnitude min-max normalised over the whole tensor."""
    g = tf_gradient(x, direction)
    lo, hi = g.min(), g.max()
    return (g - lo) / (hi - lo + 1e-4)


def mutual_i_loss(i_low: torch.Tensor, i_high: torch.Tensor) -> torch.Tensor:
    gx = gradient(i_low, "x") + gradient(i_high, "x")
    gy = gradient(i_low, "y") + gradient(i_high, "y")
    return (gx * torch.exp(-10 * gx) + gy * torch.exp(-10 * gy)).mean()


def mutual_i_input_loss(illumination: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    gray = rgb_to_gray(image)
    x = (gradient(illumination, "x") / gradient(gray, "x").clamp_min(0.01)).abs()
    y = (gradient(illumination, "y") / gradient(gray, "y").clamp_min(0.01)).abs()
    return (x + y).mean()


def grad_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``mean((grad_x a - grad_x b)^2 + (grad_y a - grad_y b)^2)``."""
    return (
        (gradient(a, "x") - gradient(b, "x")).square()
        + (gradient(a, "y") - gradient(b, "y")).square()
    ).mean()


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """``_tf_fspecial_gauss``: normalised 2-D Gaussian on ``-(size//2) .. size//2``."""
    r = torch.arange(size, dtype=torch.float64) - (size // 2)
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return (g / g.sum()).float()


def ssim(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """``utils.tf_ssim`` of single-channel images (N, 1, H, W): mean of the SSIM map with
    ``'valid'`` Gaussian filtering, ``C1 = 0.01^2``, ``C2 = 0.03^2``."""
    w = gaussian_window(size, sigma).to(a)[None, None]
    c1, c2 = 0.01**2, 0.03**2
    mu1, mu2 = F.conv2d(a, w), F.conv2d(b, w)
    s11 = F.conv2d(a * a, w) - mu1 * mu1
    s22 = F.conv2d(b * b, w) - mu2 * mu2
    s12 = F.conv2d(a * b, w) - mu1 * mu2
    num = (2 * mu1 * mu2 + c1) * (2 * s12 + c2)
    den = (mu1 * mu1 + mu2 * mu2 + c1) * (s11 + s22 + c2)
    return (num / den).mean()


def _weighted(raw: dict, weights: dict[str, float]) -> dict[str, torch.Tensor]:
    return {k: float(weights[k]) * f() for k, f in raw.items() if float(weights.get(k, 0.0))}


def decomposition_terms(
    low: torch.Tensor,
    high: torch.Tensor,
    r_low: torch.Tensor,
    i_low: torch.Tensor,
    r_high: torch.Tensor,
    i_high: torch.Tensor,
    weights: dict[str, float],
) -> dict[str, torch.Tensor]:
    raw = {
        "recon_low": lambda: (r_low * i_low - low).abs().mean(),
        "recon_high": lambda: (r_high * i_high - high).abs().mean(),
        "equal_r": lambda: (r_low - r_high).abs().mean(),
        "i_mutual": lambda: mutual_i_loss(i_low, i_high),
        "i_input_low": lambda: mutual_i_input_loss(i_low, low),
        "i_input_high": lambda: mutual_i_input_loss(i_high, high),
    }
    return _weighted(raw, weights)


def restoration_terms(
    restored: torch.Tensor, target: torch.Tensor, weights: dict[str, float]
) -> dict[str, torch.Tensor]:
    raw = {
        "square": lambda: (restored - target).square().mean(),
        "grad": lambda: grad_mse(rgb_to_gray(restored), rgb_to_gray(target)),
        "ssim": lambda: (
            1.0 - sum(ssim(restored[:, c : c + 1], target[:, c : c + 1]) for c in range(3)) / 3.0
        ),
    }
    return _weighted(raw, weights)


def adjustment_terms(
    adjusted: torch.Tensor, target: torch.Tensor, weights: dict[str, float]
) -> dict[str, torch.Tensor]:
    raw = {
        "square": lambda: (adjusted - target).square().mean(),
        "grad": lambda: grad_mse(adjusted, target),
    }
    return _weighted(raw, weights)
