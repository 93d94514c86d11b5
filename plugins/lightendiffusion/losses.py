"""LightenDiffusion's losses.

Stage 2 (the authors' ``DenoisingDiffusion.noise_estimation_loss``, Sec. 3.3-3.4):

* :func:`noise_loss`: ``||eps - eps_theta(cat(F_low, x_t), t)||^2`` (mean squared error, Eq. 5)
  with ``x_0 = R_low * L_high``, the low-light image's reflectance lit by the normal-light
  image's illumination, both in [-1, 1] scale.
* :func:`scc_loss`: the self-constrained consistency loss (Eq. 8-9): the latent sampled by the
  full DDIM chain from the low-light condition, mapped back to [0, 1] (and clamped), against
  the pseudo target ``R_low * L_low ** gamma`` (``gamma = 0.2``), mean absolute error, weighted
  ``0.001`` in the total. It keeps the sampled result's content the low-light image's
  (normal-light content does not leak in through ``L_high``).

Stage 1 (encoder, decoder and CTDN). The authors did not release this stage's code (issues #1,
#16, #18 of JianghaiSCU/LightenDiffusion); the author's answer in issue #12 is that stage 1
trains only the decomposition network and the autoencoder, with ``R * L`` fed to the decoder.
Our rebuild, recorded in the method's docstring:

* :func:`image_reconstruction`: ``||D(R_i * L_i; skips_i) - I_i||_1`` for the low- and
  normal-light images ``i``;
* :func:`retinex_reconstruction`: ``||R_i * L_i - F_i||_1``, the Retinex model in the latent
  space (Eq. 1 applied to ``F``);
* :func:`illumination_prior` and :func:`latent_anchor`: ``L`` near ``max_c F`` and ``F``
  near the image averaged over 8x8 blocks (our additions; see their docstrings);
* :func:`illumination_smoothness`: RetinexNet's structure-aware smoothness (Wei et al. 2018,
  Eq. 4), ``mean(|grad L| * exp(-lambda_g |grad R|))`` with ``lambda_g = 10``, so that the
  illumination stays content-free.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] (the authors' ``data_transform``)."""
    return 2.0 * x - 1.0


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (the authors' ``inverse_data_transform``)."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def noise_loss(eps_pred: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(eps_pred, eps)


def scc_target(refl: torch.Tensor, illum: torch.Tensor, gamma: float = 0.2) -> torch.Tensor:
    """The self-constrained pseudo target ``R_low * L_low ** gamma`` (Eq. 8)."""
    return refl * illum.pow(gamma)


def scc_loss(
    sampled: torch.Tensor, refl: torch.Tensor, illum: torch.Tensor, gamma: float = 0.2
) -> torch.Tensor:
    """Mean absolute error between the sampled latent (in [0, 1]) and the pseudo target."""
    return F.l1_loss(sampled, scc_target(refl, illum, gamma))


def image_reconstruction(decoded: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(decoded, image)


def retinex_reconstruction(
    refl: torch.Tensor, illum: torch.Tensor, latent: torch.Tensor
) -> torch.Tensor:
    return F.l1_loss(refl * illum, latent)


def illumination_prior(illum: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """``||L - max_c F||_1``: the illumination stays near its initial estimate (Eq. 2's
    ``L0``), the usual Retinex-decomposition fidelity term; without it ``L`` may saturate at 1
    and carry no light at all."""
    return F.l1_loss(illum[:, :1], latent.max(dim=1, keepdim=True).values)


def latent_anchor(latent: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``||F - avgpool_8(I)||_1``: keeps the 3-channel latent image-like at 1/8 scale (the
    decoder's skip features of the input would otherwise let the latent drift away from the
    image's light, and ``R_low * L_high`` would not brighten anything)."""
    return F.l1_loss(latent, F.adaptive_avg_pool2d(image, latent.shape[-2:]))


def _grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along x and y, zero in the last column/row (same size as ``x``)."""
    gx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1, 0, 0))
    gy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return gx, gy


def illumination_smoothness(
    illum: torch.Tensor, refl: torch.Tensor, lambda_g: float = 10.0
) -> torch.Tensor:
    """``mean(|d L| exp(-lambda_g |d R|))`` over both directions; ``L``'s first channel and the
    channel mean of ``R`` are used (the latent has no RGB meaning)."""
    lx, ly = _grads(illum[:, :1])
    rx, ry = _grads(refl.mean(dim=1, keepdim=True))
    return (lx.abs() * torch.exp(-lambda_g * rx.abs())).mean() + (
        ly.abs() * torch.exp(-lambda_g * ry.abs())
    ).mean()
