"""Non-reference losses of Zero-DCE, Zero-DCE++ and SGZ.

Each loss is written once here and parameterized by the variants the papers and the official
code use. ``form="code"`` reproduces the authors' released training code (``Myloss.py`` of
Zero-DCE, Zero-DCE++ and SGZ), which trained the released checkpoints; ``form="paper"`` follows
the equations as printed. Where they differ the docstring says how.

Notation: ``low`` is the input image ``I``, ``enhanced`` the output ``Y``, both N x 3 x H x W in
[0, 1]; ``maps`` the curve parameter maps ``A``. Every loss returns a scalar tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_AXIAL = ((0, -1), (0, 1), (-1, 0), (1, 0))  # left, right, up, down
_DIAGONAL = ((-1, -1), (-1, 1), (1, -1), (1, 1))  # up-left, up-right, low-left, low-right


def _neighbour_differences(p: torch.Tensor, offsets) -> list[torch.Tensor]:
    """``p[i] - p[i + offset]`` for each offset, with zero padding outside the map.

    Zero padding matches the official ``F.conv2d(pool, kernel, padding=1)`` difference kernels.
    """
    h, w = p.shape[-2:]
    padded = F.pad(p, (1, 1, 1, 1))
    return [p - padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in offsets]


def spatial_consistency(
    low: torch.Tensor,
    enhanced: torch.Tensor,
    *,
    patch: int = 4,
    diagonal_weight: float = 0.0,
    form: str = "code",
) -> torch.Tensor:
    """Spatial consistency loss: Zero-DCE Eq. 4, SGZ Eq. 2.

    Images are averaged over channels and over non-overlapping ``patch x patch`` regions (SGZ's
    ``A = 4``). For each region ``i`` and neighbour ``j`` the loss compares the region
    differences of the enhanced image with those of the input; ``diagonal_weight`` (SGZ's
    ``alpha = 0.5``) adds the four non-adjacent (diagonal) neighbours ``psi(i)`` of SGZ Eq. 2;
    ``0`` gives Zero-DCE's four-neighbour loss. The mean is taken over regions and images.

    * ``form="paper"``: ``(|Y_i - Y_j| - |I_i - I_j|)^2`` as printed.
    * ``form="code"``: ``((I_i - I_j) - (Y_i - Y_j))^2``, signed differences without the
      absolute values (official ``L_spa`` / SGZ ``L_spa8``), which also penalizes inverted
      local contrast.
    """
    if form not in ("code", "paper"):
        raise ValueError(f"unknown form {form!r}")
    org = F.avg_pool2d(low.mean(1, keepdim=True), patch)
    enh = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch)
    offsets = _AXIAL + (_DIAGONAL if diagonal_weight else ())
    d_org = _neighbour_differences(org, offsets)
    d_enh = _neighbour_differences(enh, offsets)
    total = torch.zeros_like(org)
    for k, (a, b) in enumerate(zip(d_org, d_enh, strict=True)):
        term = (b.abs() - a.abs()) ** 2 if form == "paper" else (a - b) ** 2
        total = total + (term if k < 4 else diagonal_weight * term)
    return total.mean()


def exposure_control(
    enhanced: torch.Tensor, *, level: float = 0.6, patch: int = 16, norm: str = "l2"
) -> torch.Tensor:
    """Exposure control / brightness loss: Zero-DCE Eq. 5, SGZ Eq. 4.

    The grey image is averaged over non-overlapping ``patch x patch`` regions (16 in every
    official script) and compared with the well-exposedness level ``E`` (0.6).
    ``norm="l1"``: ``mean |Y_k - E|`` as both papers print it; ``norm="l2"``:
    ``mean (Y_k - E)^2`` as the official ``L_exp`` computes it.
    """
    mean = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch)
    diff = mean - level
    if norm == "l2":
        return (diff**2).mean()
    if norm == "l1":
        return diff.abs().mean()
    raise ValueError(f"unknown norm {norm!r}; use 'l1' or 'l2'")


def _channel_means(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    m = x.mean(dim=(2, 3))
    return m[:, 0], m[:, 1], m[:, 2]


def color_constancy(enhanced: torch.Tensor) -> torch.Tensor:
    """Color constancy loss of the official code (Zero-DCE Eq. 6 as implemented).

    With ``D_pq = (J^p - J^q)^2`` for the channel means ``J``, the official ``L_color`` returns
    ``sqrt(D_rg^2 + D_rb^2 + D_gb^2)`` per image (the paper prints ``sum D_pq``); the mean is taken
    over the batch.
    """
    r, g, b = _channel_means(enhanced)
    d_rg, d_rb, d_gb = (r - g) ** 2, (r - b) ** 2, (b - g) ** 2
    return torch.sqrt(d_rg**2 + d_rb**2 + d_gb**2).mean()


def charbonnier_rgb(enhanced: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """SGZ Eq. 3, the RGB loss: ``sum over (i, j) in {(R,G), (R,B), (G,B)} of
    sqrt((Y^i - Y^j)^2 + eps^2)`` with ``Y^i`` the mean of channel ``i`` and ``eps = 1e-6``;
    the mean is taken over the batch. (The official SGZ training script uses
    :func:`color_constancy` instead.)
    """
    r, g, b = _channel_means(enhanced)
    e2 = eps * eps
    loss = (
        torch.sqrt((r - g) ** 2 + e2)
        + torch.sqrt((r - b) ** 2 + e2)
        + torch.sqrt((g - b) ** 2 + e2)
    )
    return loss.mean()


def illumination_smoothness(maps: torch.Tensor) -> torch.Tensor:
    """Illumination smoothness of the curve maps ``A`` (Zero-DCE Eq. 7 as implemented).

    The official ``L_TV``: ``2 * (sum (dA/dy)^2 / ((H-1) W) + sum (dA/dx)^2 / (H (W-1))) / N``,
    squared finite differences summed over all maps and channels. The paper prints
    ``(|grad_x A| + |grad_y A|)^2``; the released checkpoints were trained with this form.
    """
    n, _, h, w = maps.shape
    dy = (maps[:, :, 1:, :] - maps[:, :, :-1, :]).pow(2).sum()
    dx = (maps[:, :, :, 1:] - maps[:, :, :, :-1]).pow(2).sum()
    return 2 * (dy / ((h - 1) * w) + dx / (h * (w - 1))) / n


def total_variation_rgb(enhanced: torch.Tensor) -> torch.Tensor:
    """SGZ Eq. 5: total variation of the enhanced image with the inter-channel term.

    The extracted Eq. 5 keeps only ``(grad_x Y)^2 + (grad_y Y)^2`` averaged over ``C x H x W``;
    the prose says the loss "additionally consider[s] inter-channel (R, G, and B) relations". We
    rebuild that term as the squared differences between channels over the pairs
    ``{(R,G), (R,B), (G,B)}`` of Eq. 3 (a gradient along the channel axis), so
    ``L_tv = 1/(CHW) sum [(grad_x Y)^2 + (grad_y Y)^2 + (grad_c Y)^2]``, averaged over images.
    The official SGZ training script instead applies :func:`illumination_smoothness` to ``A``.
    """
    n, c, h, w = enhanced.shape
    dy = (enhanced[:, :, 1:, :] - enhanced[:, :, :-1, :]).pow(2).sum()
    dx = (enhanced[:, :, :, 1:] - enhanced[:, :, :, :-1]).pow(2).sum()
    r, g, b = enhanced[:, 0], enhanced[:, 1], enhanced[:, 2]
    dc = ((r - g).pow(2) + (r - b).pow(2) + (g - b).pow(2)).sum()
    return (dx + dy + dc) / (n * c * h * w)


def focal_semantic(
    logits: torch.Tensor, *, beta: float = 1.0, gamma: float = 2.0, eps: float = 1e-7
) -> torch.Tensor:
    """SGZ Eq. 6, the label-free semantic loss (focal loss of Lin et al. with
    ``beta = 1, gamma = 2``).

    With no labels, the target of each pixel is the segmentation network's own most likely
    class (official ``get_NoGT_target``: argmax, no gradient), so ``p`` is the largest softmax
    probability; ``L = mean over pixels of -beta (1 - p)^gamma log p`` with ``p`` clamped to
    ``[eps, 1 - eps]`` (official ``FocalLoss``). The loss falls as the segmentation becomes
    more confident.
    """
    probs = F.softmax(logits, dim=1)
    target = logits.detach().argmax(dim=1, keepdim=True)
    p = probs.gather(1, target).squeeze(1).clamp(eps, 1.0 - eps)
    return (-beta * (1.0 - p).pow(gamma) * p.log()).mean()
