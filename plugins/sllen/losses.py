"""SLLEN's losses (paper Sec. II-C, Eq. 7-11) and the SS stage's cross-entropy.

* SS stage: pixel-wise cross-entropy "the same as [29]" (U-Net), ignoring label 255 (VOC's
  border label); U-Net's border weight map is not used [R: it serves touching cells].
* ``L_s``: smooth L1 [30] between ``Y_hat`` and ``Y`` with ``beta = 1`` (PyTorch's
  ``smooth_l1_loss``, mean over elements) [R: beta lost]. On [0, 1] images it is half the MSE.
* ``L_p``: perceptual loss [31]: mean absolute difference of VGG-16 ``relu3_3`` features of
  ``Y_hat`` and ``Y`` (ImageNet normalisation; the target's features without gradient) [R:
  network, layer and norm lost]. Weights from the torch hub cache (:class:`PerceptualLoss`).
* ``L_kd`` (Eq. 7): ``(1/N) sum_i mean|sg(E_i) - D_i|`` over the ``N = 3`` same-shape
  encoder/decoder feature pairs; the encoder is the teacher [32], so its features are detached
  [R: the norm is lost; L1, averaged over elements].
* ``L_itv`` (Eq. 8-9): with the enhanced image as reflectance, Eq. 1 gives the illumination
  ``L = I / Y_hat`` (element-wise, per channel; ``Y_hat`` clamped at ``eps = 1e-3`` [R]);
  ``L_itv = mean|grad_h L| + mean|grad_v L|`` (forward differences, each averaged over its
  ``C x H x (W-1)`` or ``C x (H-1) x W`` elements).
* ``L_grad`` (Eq. 10): ``(1/B) sum_b |AG(Y_hat_b) - G|``, with the average gradient
  ``AG(x) = mean over c, i < H-1, j < W-1 of sqrt(((x[i,j+1]-x[i,j])^2 + (x[i+1,j]-x[i,j])^2)/2)``
  (the standard definition; a tiny ``1e-12`` inside the root keeps its derivative finite at 0).
  ``G`` is "the average gradient value among all the selected [normal-light] images" (Sec.
  III-B); its value is lost, so :func:`dataset_average_gradient` computes it from the
  normal-light training images in use.
* Total (Eq. 11): ``L_s + L_p + l1 L_kd + l2 L_itv + l3 L_grad``; the values of ``l1..l3`` are
  lost (see the package docstring for the defaults).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = 255


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy of the SS stage, label 255 ignored."""
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)


def smooth_l1(pred: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """``L_s``: smooth L1 (Huber with transition ``beta``), mean over all elements."""
    return F.smooth_l1_loss(pred, target, beta=beta)


def distillation(encoder: Sequence[torch.Tensor], decoder: Sequence[torch.Tensor]) -> torch.Tensor:
    """``L_kd`` (Eq. 7): mean over pairs of the mean absolute difference, teacher detached."""
    if len(encoder) != len(decoder) or not encoder:
        raise ValueError("distillation needs the same non-zero number of encoder/decoder features")
    terms = []
    for e, d in zip(encoder, decoder, strict=True):
        if e.shape != d.shape:
            raise ValueError(f"feature shapes differ: encoder {e.shape}, decoder {d.shape}")
        terms.append((e.detach() - d).abs().mean())
    return torch.stack(terms).mean()


def illumination(low: torch.Tensor, enhanced: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The illumination of Eq. 8: ``L = I / R`` with the enhanced image as reflectance ``R``."""
    return low / enhanced.clamp(min=eps)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV: mean absolute horizontal plus mean absolute vertical forward difference."""
    dh = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    dv = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    return dh + dv


def illumination_tv(low: torch.Tensor, enhanced: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``L_itv`` (Eq. 9): total variation of the Retinex illumination ``I / Y_hat``."""
    return total_variation(illumination(low, enhanced, eps))


def average_gradient(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Average gradient of each image of ``x`` (``N x C x H x W``) -> ``(N,)``."""
    base = x[..., :-1, :-1]
    dx = x[..., :-1, 1:] - base
    dy = x[..., 1:, :-1] - base
    return torch.sqrt((dx * dx + dy * dy) / 2.0 + eps).flatten(1).mean(dim=1)


def gradient_loss(enhanced: torch.Tensor, target: float | torch.Tensor) -> torch.Tensor:
    """``L_grad`` (Eq. 10): batch mean of ``|AG(Y_hat_b) - G|``."""
    return (average_gradient(enhanced) - target).abs().mean()


def dataset_average_gradient(files: Iterable[str | Path]) -> tuple[float, int]:
    """``G`` (Sec. III-B): the mean over images of ``AG`` of each whole RGB image in [0, 1]
    (8-bit values / 255), computed in float64. Returns ``(G, number of images)``."""
    from llbench.errors import DatasetError
    from llbench.io.images import read_image

    values = []
    for f in files:
        arr = read_image(f).astype(np.float64) / 255.0
        t = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
        values.append(float(average_gradient(t, eps=0.0)[0]))
    if not values:
        raise DatasetError("no normal-light training images to compute G of the gradient loss")
    return float(np.mean(values)), len(values)


class PerceptualLoss(nn.Module):
    """``L_p``: mean absolute difference of VGG features (``llbench.api.VGGFeatures``).

    ``weights``: a torchvision VGG checkpoint, or None for random features (the explicit
    ``vgg.if_missing = "random"`` choice; the caller seeds the initialisation).
    """

    def __init__(
        self,
        arch: str = "vgg16",
        layers: Sequence[str] = ("relu3_3",),
        weights: str | Path | None = None,
    ):
        super().__init__()
        from llbench.api import VGGFeatures

        self.vgg = VGGFeatures(arch, tuple(layers), weights=weights)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            ref = self.vgg(target)
        out = self.vgg(pred)
        return torch.stack([(out[k] - ref[k]).abs().mean() for k in self.vgg.layers]).mean()
