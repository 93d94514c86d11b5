"""Losses of CRNet and the Multi-Consistency Mean Teacher (Lee, Jang, Kim 2023, Sec. 4.2).

The paper's formulas did not survive extraction; they are rebuilt from the prose:

* Progressive enhancement loss (Sec. 4.2.1.2): ``L_PE = L_E + lambda_ms L_ms`` with the
  enhancement loss ``L_E = -SSIM(I_hat, I_gt)`` and the mid-step loss
  ``L_ms = 1/(N-1) sum_{i=1}^{N-1} || H_i(I) - I_gt ||_1`` over the outputs of LMRGs 1..N-1
  (``||.||_1`` as the mean absolute error), ``lambda_ms = 1``.
* SSIM (Wang et al. 2004): 11 x 11 Gaussian window, sigma 1.5, ``K = (0.01, 0.03)``, data range
  1, per RGB channel, ``valid`` windows only (no padding), mean over windows, channels and
  images. The paper does not give its SSIM settings; these are Wang et al.'s.
* Consistency loss of the Mean Teacher (Sec. 4.2.2.1): ``L_C = || f_theta(x) - f_theta'(x + eta)
  ||^2`` (mean squared error), with the teacher's output as a constant target.
* Multi-consistency regularization (Sec. 4.2.2.2): ``L_MCR = L_C + lambda_mc L_mc`` with
  ``L_mc = 1/(N-1) sum_i || H_i^s(x) - H_i^t(x + eta) ||^2``, ``lambda_mc = 1``.
* Total (Sec. 4.2.3): ``L_SSL = L_PE(labelled) + lambda_MCR L_MCR(labelled + unlabelled)``.
* Teacher update (Sec. 4.2.2.1): ``theta'_t = alpha theta'_{t-1} + (1 - alpha) theta_t``,
  ``alpha = 0.99``, after each optimizer step of the student.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K = (0.01, 0.03)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """The normalised ``size x size`` Gaussian window (float64)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of ``x`` and ``y`` (N x C x H x W in [0, 1]); see the module docstring."""
    if x.shape != y.shape:
        raise ValueError(f"ssim: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels")
    c = x.shape[1]
    w = gaussian_window().to(x.device, x.dtype).expand(c, 1, SSIM_WINDOW, SSIM_WINDOW)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    c1, c2 = SSIM_K[0] ** 2, SSIM_K[1] ** 2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean()


def enhancement_loss(final: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``L_E = -SSIM(I_hat, I_gt)``."""
    return -ssim(final, target)


def mid_step_loss(mids: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """``L_ms = mean_i mean|H_i - I_gt|`` over the intermediate LMRG outputs (0 if none)."""
    if not mids:
        return target.new_zeros(())
    return torch.stack([(h - target).abs().mean() for h in mids]).mean()


def consistency_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``L_C = mean (f_s - f_t)^2``; the teacher's output is a constant target."""
    return F.mse_loss(student, teacher.detach())


def mid_consistency_loss(
    student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]
) -> torch.Tensor:
    """``L_mc = mean_i mean (H_i^s - H_i^t)^2`` (0 if there are no intermediate outputs)."""
    if len(student) != len(teacher):
        raise ValueError("student and teacher have different numbers of intermediate outputs")
    if not student:
        return torch.zeros(())
    return torch.stack(
        [consistency_loss(s, t) for s, t in zip(student, teacher, strict=True)]
    ).mean()


def progressive_terms(
    final: torch.Tensor, mids: Sequence[torch.Tensor], target: torch.Tensor, lambda_ms: float
) -> dict[str, torch.Tensor]:
    """The weighted terms of ``L_PE``: ``enhance`` (``L_E``) and, when ``lambda_ms > 0`` and
    there are intermediate outputs, ``mid_step`` (``lambda_ms L_ms``)."""
    terms = {"enhance": enhancement_loss(final, target)}
    if lambda_ms > 0 and mids:
        terms["mid_step"] = lambda_ms * mid_step_loss(mids, target)
    return terms


def mcr_terms(
    student: tuple[torch.Tensor, Sequence[torch.Tensor]],
    teacher: tuple[torch.Tensor, Sequence[torch.Tensor]],
    lambda_mc: float,
    lambda_mcr: float,
) -> dict[str, torch.Tensor]:
    """The weighted terms of ``lambda_MCR L_MCR``: ``consistency`` (``lambda_MCR L_C``) and,
    when ``lambda_mc > 0``, ``mid_consistency`` (``lambda_MCR lambda_mc L_mc``)."""
    terms = {"consistency": lambda_mcr * consistency_loss(student[0], teacher[0])}
    if lambda_mc > 0 and student[1]:
        terms["mid_consistency"] = (
            lambda_mcr * lambda_mc * mid_consistency_loss(student[1], teacher[1])
        )
    return terms


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """``theta' <- decay theta' + (1 - decay) theta`` for every parameter; buffers are copied."""
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)
    for t, s in zip(teacher.buffers(), student.buffers(), strict=True):
        t.copy_(s)


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB of ``x`` clamped to [0, 1] against ``y`` (peak 1), for training logs."""
    mse = F.mse_loss(x.detach().clamp(0, 1).float(), y.float()).item()
    return float("inf") if mse == 0 else -10.0 * torch.log10(torch.tensor(mse)).item()
