"""Curve-estimation networks: DCE-Net (Zero-DCE) and its depthwise separable variant
(Zero-DCE++'s network, which SGZ calls the enhancement factor extraction network, EFE).

Both are seven 3x3 convolution blocks of width 32 with ReLU, no pooling or normalization, and
symmetric skip connections that concatenate block 3 with 4, 2 with 5 and 1 with 6 (Zero-DCE
Sec. 3.2; SGZ Sec. 3.1), ending in ``tanh``. Attribute names (``e_conv1`` ... ``e_conv7``, and
``depth_conv`` / ``point_conv`` inside a separable block) are those of the official
repositories, so their released ``Epoch99.pth`` state dicts load with ``strict=True``:

* Zero-DCE ``Zero-DCE_code/model.py``: plain ``Conv2d`` blocks, the last one with 24 outputs
  (8 iterations x 3 channels).
* Zero-DCE++ ``Zero-DCE++/model.py`` and SGZ ``modeling/model.py``: depthwise 3x3 (groups =
  channels) followed by pointwise 1x1 (``CSDN_Tem`` / ``DSC``), 3 outputs shared by all
  iterations. The two repositories define the same layers, so their key layouts are identical.

Test-time downsampling (Zero-DCE++ Sec. 3.3; SGZ ``test.py``): with ``scale_factor = s > 1`` the
network sees the input bilinearly downsampled by ``s`` (``F.interpolate(x, scale_factor=1/s,
mode="bilinear")``, ``align_corners=False``) and its curve maps are upsampled back with
``UpsamplingBilinear2d`` semantics (``align_corners=True``). The official test scripts first crop
the image to multiples of ``s`` (so a 400 x 600 image comes out 396 x 600). llbench must return
the input's size, so we estimate the maps exactly as the official code does on that crop, which
makes the crop region bit-identical to the official output, and extend the upsampled maps to the
remaining (< s) rows and columns by edge replication before applying the curve to the whole
image. Images smaller than ``s`` on a side are processed at full resolution.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .curve import apply_curves

ConvKind = Literal["plain", "dsc"]


class DSConv(nn.Module):
    """Depthwise separable 3x3 convolution (Howard et al., MobileNets): a per-channel 3x3
    ``depth_conv`` then a 1x1 ``point_conv``, both with bias (official layer names)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.depth_conv = nn.Conv2d(in_ch, in_ch, kernel_size=3, stride=1, padding=1, groups=in_ch)
        self.point_conv = nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


def _block(kind: ConvKind, in_ch: int, out_ch: int) -> nn.Module:
    if kind == "plain":
        return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1)
    if kind == "dsc":
        return DSConv(in_ch, out_ch)
    raise ValueError(f"unknown convolution kind {kind!r}; use 'plain' or 'dsc'")


class CurveNet(nn.Module):
    """A curve-estimation network plus the iterated curve.

    ``kind="plain", per_iteration_maps=True`` is Zero-DCE's DCE-Net (24 output channels, one
    map per iteration); ``kind="dsc", per_iteration_maps=False`` is Zero-DCE++'s network and
    SGZ's EFE (3 output channels, one map shared by the ``iterations`` recurrences of SGZ
    Eq. 1, the recurrent image enhancement RIE). ``forward`` returns ``(enhanced, maps)``
    with ``maps`` at the input's resolution.

    ``scale_factor`` is a plain attribute, not a buffer, so state dicts keep the official
    layout; methods set it to the training or test value.
    """

    def __init__(
        self,
        kind: ConvKind = "plain",
        *,
        iterations: int = 8,
        per_iteration_maps: bool = True,
        width: int = 32,
        scale_factor: int = 1,
    ):
        super().__init__()
        if iterations < 1:
            raise ValueError("iterations must be >= 1")
        self.kind = kind
        self.iterations = int(iterations)
        self.per_iteration_maps = bool(per_iteration_maps)
        self.scale_factor = int(scale_factor)
        out_ch = 3 * self.iterations if self.per_iteration_maps else 3
        self.e_conv1 = _block(kind, 3, width)
        self.e_conv2 = _block(kind, width, width)
        self.e_conv3 = _block(kind, width, width)
        self.e_conv4 = _block(kind, width, width)
        self.e_conv5 = _block(kind, width * 2, width)
        self.e_conv6 = _block(kind, width * 2, width)
        self.e_conv7 = _block(kind, width * 2, out_ch)

    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        """Curve parameter maps in [-1, 1] for ``x`` at ``x``'s resolution."""
        x1 = F.relu(self.e_conv1(x))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        return torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))

    def curve_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Maps for the full-resolution ``x``, estimated at ``1 / scale_factor`` resolution."""
        s = self.scale_factor
        h, w = x.shape[-2:]
        hc, wc = (h // s) * s, (w // s) * s
        if s == 1 or hc == 0 or wc == 0:
            return self.estimate(x)
        crop = x[..., :hc, :wc]
        small = F.interpolate(crop, scale_factor=1 / s, mode="bilinear")
        maps = self.estimate(small)
        maps = F.interpolate(maps, scale_factor=s, mode="bilinear", align_corners=True)
        if (hc, wc) != (h, w):
            maps = F.pad(maps, (0, w - wc, 0, h - hc), mode="replicate")
        return maps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.curve_maps(x)
        return apply_curves(x, maps, self.iterations), maps


def init_weights(net: nn.Module, scheme: str, std: float = 0.02) -> None:
    """Initialize ``net``'s convolutions.

    ``"normal"``: weights ~ N(0, std), biases left at PyTorch's default, as the official
    ``weights_init`` (Zero-DCE ``lowlight_train.py``; the Zero-DCE and SGZ papers state N(0, 0.02)).
    ``"default"``: PyTorch's default initialization, which the Zero-DCE++ and SGZ training
    scripts use (their ``weights_init`` call is commented out / never made).
    """
    if scheme == "default":
        return
    if scheme != "normal":
        raise ValueError(f"unknown init {scheme!r}; use 'normal' or 'default'")
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0.0, std)
