"""DRBN's recursive band network (stage 1), with the authors' layer names.

Yang, Wang, Fang, Wang, Liu, "From Fidelity to Perceptual Quality: A Semi-Supervised Approach for
Low-Light Image Enhancement", CVPR 2020, Sec. 3.1 and Fig. 2; rebuilt from the authors' public
code (github.com/flyywh/CVPR-2020-Semi-Low-Light, ``DRBL-stage1/src/model/drbn.py``), whose
released ``pretrain/model_s1.pt`` loads into :class:`DRBN` unchanged (same parameter names).

One recurrence (:class:`DRBNBand`, the code's ``DRBN_BU``) is a small U-shaped network of
residual dense blocks (RDBs; ``C = 4`` densely connected 3x3 conv + ReLU layers of growth ``G``
and a 1x1 local fusion) over three scales, full, 1/2 and 1/4 resolution (``G0``, ``G0`` and
``2 G0`` channels). It takes ``[previous estimate, low-light input]`` (6 channels; the first
recurrence sees the input twice) and returns band estimates at the three scales, each coarser
one upsampled (bilinear) and added to the next finer one (the "band" representation, Eq. 1-3),
plus its decoder features, which the next recurrence adds to its own (the recursion, Eq. 4).
Four recurrences; the output is the last full-resolution estimate.

Every recurrence names its three decoder features after the recursive additions with identity
modules ``site_s4``, ``site_s2``, ``site_s1`` (no parameters, so official checkpoints still
load): these are the decoder sites of :meth:`DRBNMethod.decoder_sites`, where SKF inserts its SE
modules, exactly where the SKF authors' ``DRBN_SKF/src/model/drbn.py`` calls ``fuseblk_1..3``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RDBConv(nn.Module):
    """One densely connected layer: 3x3 conv + ReLU, its output concatenated to its input."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, growth, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.conv(x)), 1)


class RDB(nn.Module):
    """Residual dense block: ``layers`` dense layers, 1x1 local feature fusion, residual."""

    def __init__(self, g0: int, growth: int, layers: int):
        super().__init__()
        self.convs = nn.Sequential(*[RDBConv(g0 + i * growth, growth) for i in range(layers)])
        self.LFF = nn.Conv2d(g0 + layers * growth, g0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LFF(self.convs(x)) + x


class DRBNBand(nn.Module):
    """One recurrence of the band network (the code's ``DRBN_BU``)."""

    def __init__(self, g0: int = 16, growth: int = 8, layers: int = 4, colors: int = 3):
        super().__init__()
        self.SFENet1 = nn.Conv2d(2 * colors, g0, 3, padding=1)
        self.SFENet2 = nn.Conv2d(g0, g0, 3, padding=1)
        self.RDBs = nn.ModuleList(
            [
                RDB(g0, growth, layers),
                RDB(g0, growth, layers),
                RDB(2 * g0, 2 * growth, layers),
                RDB(2 * g0, 2 * growth, layers),
                RDB(g0, growth, layers),
                RDB(g0, growth, layers),
            ]
        )
        self.UPNet = nn.Sequential(
            nn.Conv2d(g0, g0, 3, padding=1), nn.Conv2d(g0, colors, 3, padding=1)
        )
        self.UPNet2 = nn.Sequential(
            nn.Conv2d(g0, g0, 3, padding=1), nn.Conv2d(g0, colors, 3, padding=1)
        )
        self.UPNet4 = nn.Sequential(
            nn.Conv2d(2 * g0, g0, 3, padding=1), nn.Conv2d(g0, colors, 3, padding=1)
        )
        self.Down1 = nn.Conv2d(g0, g0, 3, padding=1, stride=2)
        self.Down2 = nn.Conv2d(g0, 2 * g0, 3, padding=1, stride=2)
        self.Up1 = nn.ConvTranspose2d(g0, g0, 4, stride=2, padding=1)
        self.Up2 = nn.ConvTranspose2d(2 * g0, g0, 4, stride=2, padding=1)
        self.site_s4 = nn.Identity()
        self.site_s2 = nn.Identity()
        self.site_s1 = nn.Identity()

    @staticmethod
    def _up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(
        self, x: torch.Tensor, prev: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, ...]:
        """``x``: ``[estimate, input]`` (N, 6, H, W), H and W multiples of 4; ``prev``: the
        previous recurrence's decoder features (s1, s2, s4) or None for the first one.
        Returns ``(res1, res2, res4, f_s1, f_s2, f_s4)``."""
        f_first = F.relu(self.SFENet1(x))
        f_s1 = F.relu(self.SFENet2(f_first))
        f_s2 = self.Down1(self.RDBs[0](f_s1))
        f_s4 = self.Down2(self.RDBs[1](f_s2))
        f_s4 = f_s4 + self.RDBs[3](self.RDBs[2](f_s4))
        if prev is not None:
            f_s4 = f_s4 + prev[2]
        f_s4 = self.site_s4(f_s4)
        f_s2 = f_s2 + self.RDBs[4](self.Up2(f_s4))
        if prev is not None:
            f_s2 = f_s2 + prev[1]
        f_s2 = self.site_s2(f_s2)
        f_s1 = f_s1 + self.RDBs[5](self.Up1(f_s2)) + f_first
        if prev is not None:
            f_s1 = f_s1 + prev[0]
        f_s1 = self.site_s1(f_s1)
        res4 = self.UPNet4(f_s4)
        res2 = self.UPNet2(f_s2) + self._up(res4)
        res1 = self.UPNet(f_s1) + self._up(res2)
        return res1, res2, res4, f_s1, f_s2, f_s4


class DRBN(nn.Module):
    """Four recurrences (``recur1..4``); returns the estimates at full, 1/2 and 1/4 size."""

    def __init__(self, g0: int = 16, growth: int = 8, layers: int = 4, recurrences: int = 4):
        super().__init__()
        self.recurrences = int(recurrences)
        for i in range(1, self.recurrences + 1):
            self.add_module(f"recur{i}", DRBNBand(g0, growth, layers))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.recur1(torch.cat((x, x), 1))
        for i in range(2, self.recurrences + 1):
            band = getattr(self, f"recur{i}")
            out = band(torch.cat((out[0], x), 1), (out[3], out[4], out[5]))
        return out[0], out[1], out[2]
