"""The quadratic light-enhancement curve shared by Zero-DCE, Zero-DCE++ and SGZ.

Zero-DCE (Guo et al., CVPR 2020, Eq. 1-2) defines the curve ``LE(x) = x + a * x * (1 - x)`` and
applies it ``n = 8`` times with a pixel-wise parameter map ``A_n`` per iteration (Eq. 3). SGZ
(Zheng & Gupta, Eq. 1) writes the same recurrence as ``x_t = x_{t-1} + A * (x_{t-1}^2 - x_{t-1})``
with one enhancement-factor map ``A`` shared by every recurrence, as Zero-DCE++ (Li et al.,
TPAMI 2021) does.

The authors' code for all three uses the SGZ form ``x + r * (x^2 - x)``, i.e. ``r = -a``: a
negative map brightens. The sign convention is learned, so both describe the same family; we
keep the code's form and its order of floating-point operations (square, subtract, multiply,
add) so that released checkpoints give bit-identical outputs.
"""

from __future__ import annotations

import torch


def curve_step(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """One recurrence of SGZ Eq. 1 / Zero-DCE Eq. 2: ``x + r * (x^2 - x)``.

    For ``x`` in [0, 1] and ``r`` in [-1, 1] the result stays in [0, 1] (it lies between
    ``x^2`` and ``x * (2 - x)``) and the curve is monotonic in ``x``.
    """
    return x + r * (x.pow(2) - x)


def apply_curves(x: torch.Tensor, maps: torch.Tensor, iterations: int) -> torch.Tensor:
    """Apply the curve ``iterations`` times to ``x`` (N x 3 x H x W).

    ``maps`` holds either one 3-channel map used by every iteration (Zero-DCE++, SGZ) or
    ``3 * iterations`` channels, map ``i`` (channels ``3i .. 3i+2``) driving iteration ``i``
    (Zero-DCE Eq. 3, the official ``torch.split(x_r, 3, dim=1)`` order).

    Without autograd the iterations run in place in two buffers (same operations in the same
    order, hence the same bits), which saves most of the memory traffic on large images.
    """
    channels = maps.shape[1]
    if channels == 3:
        per_step = [maps] * iterations
    elif channels == 3 * iterations:
        per_step = list(torch.split(maps, 3, dim=1))
    else:
        raise ValueError(
            f"curve maps have {channels} channels; expected 3 (shared) or {3 * iterations}"
        )
    if torch.is_grad_enabled() and (x.requires_grad or maps.requires_grad):
        for r in per_step:
            x = curve_step(x, r)
        return x
    out = x.clone()
    tmp = torch.empty_like(out)
    for r in per_step:
        torch.pow(out, 2, out=tmp)
        tmp.sub_(out).mul_(r)
        out.add_(tmp)
    return out
