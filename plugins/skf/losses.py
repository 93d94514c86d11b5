"""SKF's semantic-guided colour histogram (SCH) loss (Wu et al., CVPR 2023, Sec. 3.3, Eq. 6-10).

Soft histogram (Eq. 7-9, the authors' ``SoftHistogram``): for bin ``k`` of ``B = 256`` on [0, 1]
(width ``D = 1/B``, centre ``c_k = (k + 0.5) D``) a pixel value ``x`` adds
``sigmoid(a (x - c_k + D/2)) - sigmoid(a (x - c_k - D/2))`` with ``a = 400``; counts are not
normalised. As ``a`` grows the kernel tends to the indicator of the bin, i.e. the hard histogram.
With ``a = 400`` on a [0, 1] scale each pixel spreads over about three bins (the paper's "the
difference is 1 when x equals the bin" holds on a 0-255 scale only); the code's value is kept.

SCH (Eq. 10, the code's ``hist_loss``): the class of each pixel is the argmax of the frozen
segmenter's output on the enhanced image; per image, class and RGB channel, the soft histograms of
the output's and of the reference's pixels of that class are compared with the mean absolute
difference over bins; the sum over images, classes and channels is divided by ``N K H W 3``
(``normalization = "classes"``, DRBN-SKF's code, ``K`` the number of classes) or ``N H W``
(``"pixels"``, SNR-SKF's and LLFlow-SKF's code). ``semantic = False`` is Table 4's "w/o S"
(one class: the global colour histogram). ``erode > 0`` leaves out pixels within that many pixels
of a class boundary, the paper's refinement ``P'`` (Sec. 3.3) that the code does not do (0 by
default, as the code).

Computation: the kernel is negligible beyond a few bins (below 1e-8 at 12 bins for ``a = 400``),
so each pixel contributes to the ``2 r + 1`` bins around its own (``radius = r``, default 12)
through ``scatter_add``; :func:`soft_histogram` is the exact all-bins form (tests compare them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bin_centers(bins: int, device=None, dtype=torch.float32) -> torch.Tensor:
    return (torch.arange(bins, device=device, dtype=dtype) + 0.5) / bins


def soft_histogram(x: torch.Tensor, bins: int = 256, alpha: float = 400.0) -> torch.Tensor:
    """Exact soft histogram (all bins) of the values in the last dimension: ``(..., bins)``."""
    delta = 1.0 / bins
    d = x.unsqueeze(-1) - bin_centers(bins, x.device, x.dtype)
    k = torch.sigmoid(alpha * (d + delta / 2)) - torch.sigmoid(alpha * (d - delta / 2))
    return k.sum(dim=-2)


def class_soft_histograms(
    image: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    bins: int = 256,
    alpha: float = 400.0,
    radius: int = 12,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """Soft histograms per image, class and channel: ``(N, K, C, bins)``.

    ``image`` (N, C, H, W); ``labels`` (N, H, W) int64 in ``[0, K)``; ``keep`` (N, H, W) bool
    drops pixels (boundaries). Each pixel contributes to the ``2 radius + 1`` bins nearest its
    value (``radius >= bins`` gives the exact form).
    """
    n, c, h, w = image.shape
    x = image.reshape(n, c, h * w)
    lab = labels.reshape(n, 1, h * w)
    delta = 1.0 / bins
    if radius >= bins:
        offsets = torch.arange(bins, device=image.device)
        idx = offsets.view(1, 1, 1, -1).expand(n, c, h * w, bins)
    else:
        own = torch.floor(x.detach() * bins).long()
        offsets = torch.arange(-radius, radius + 1, device=image.device)
        idx = own.unsqueeze(-1) + offsets
    centers = (idx.to(x.dtype) + 0.5) * delta
    d = x.unsqueeze(-1) - centers
    val = torch.sigmoid(alpha * (d + delta / 2)) - torch.sigmoid(alpha * (d - delta / 2))
    valid = (idx >= 0) & (idx < bins)
    if keep is not None:
        valid = valid & keep.reshape(n, 1, h * w, 1)
    val = val * valid
    flat = lab.unsqueeze(-1) * bins + idx.clamp(0, bins - 1)
    out = torch.zeros(n, c, num_classes * bins, device=image.device, dtype=val.dtype)
    out = out.scatter_add(2, flat.reshape(n, c, -1), val.reshape(n, c, -1))
    return out.reshape(n, c, num_classes, bins).transpose(1, 2)


def boundary_keep(labels: torch.Tensor, erode: int) -> torch.Tensor:
    """True where every pixel within ``erode`` pixels has the same label."""
    if erode <= 0:
        return torch.ones_like(labels, dtype=torch.bool)
    lab = labels.unsqueeze(1).float()
    k = 2 * erode + 1
    hi = F.max_pool2d(lab, k, stride=1, padding=erode)
    lo = -F.max_pool2d(-lab, k, stride=1, padding=erode)
    return (hi == lo)[:, 0]


def sch_loss(
    output: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    bins: int = 256,
    alpha: float = 400.0,
    semantic: bool = True,
    normalization: str = "classes",
    erode: int = 0,
    radius: int = 12,
) -> torch.Tensor:
    """SCH loss (see the module docstring); ``labels`` (N, H, W) from the segmentation."""
    n, c, h, w = output.shape
    if not semantic:
        labels = torch.zeros_like(labels)
        num_classes = 1
    keep = boundary_keep(labels, erode) if erode > 0 else None
    ho = class_soft_histograms(output, labels, num_classes, bins, alpha, radius, keep)
    ht = class_soft_histograms(target, labels, num_classes, bins, alpha, radius, keep)
    total = (ho - ht).abs().mean(dim=-1).sum()
    if normalization == "classes":
        return total / (n * num_classes * h * w * c)
    if normalization == "pixels":
        return total / (n * h * w)
    raise ValueError(f"SCH normalization must be 'classes' or 'pixels', got {normalization!r}")
