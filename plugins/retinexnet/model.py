"""Retinex-Net's two networks in the official TensorFlow design (weichen582/RetinexNet, ``model.py``).

* :class:`DecomNet` (Wei et al., BMVC 2018, Sec. 3.1): the image and its channel maximum
  (4 channels, max first as in ``concat([input_max, input_im])``) -> a 9x9 convolution without
  activation (``shallow_feature_extraction``) -> five 3x3 convolutions of width 64 with ReLU
  (``activated_layer_0..4``) -> a 3x3 convolution to 4 channels (``recon_layer``); sigmoid on the
  first three gives the reflectance ``R``, on the fourth the illumination ``I``. 207,748 parameters.
* :class:`RelightNet`, the paper's Enhance-Net (Sec. 3.2): ``[R, I]`` (R first) -> ``conv0``
  (3x3, no activation) -> three stride-2 3x3 convolutions with ReLU (the encoder) -> three decoder
  stages, each a nearest-neighbour resize to the size of its skip feature, a 3x3 convolution with
  ReLU, and the *sum* with that skip feature (``deconv1..3``; the popular PyTorch port concatenates
  instead and has 347,457 parameters) -> multi-scale fusion: the three decoder outputs resized
  to full resolution and concatenated, a 1x1 convolution (``feature_fusion``) and a 3x3
  convolution to the adjusted illumination ``I_delta`` (``output``), without activation.
  236,865 parameters.

Padding follows TensorFlow's ``'same'``: symmetric for the stride-1 convolutions, and for the
stride-2 ones the extra row/column goes to the bottom/right (:class:`SameConv2d`), so that
converted TensorFlow weights give the same features. Nearest resizing matches TF1's
``resize_nearest_neighbor`` (``floor(dst * in / out)``), which is PyTorch's ``"nearest"``.

The decoder stages are separate submodules (:class:`UpStage`) that return one tensor each: they
are the decoder sites frameworks such as SKF refine (:meth:`RetinexNet.decoder_sites
<llbench.plugins.retinexnet.method.RetinexNet.decoder_sites>`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's ``padding='same'`` for any stride: output size
    ``ceil(in / stride)``, the odd padding pixel on the bottom/right."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1):
        super().__init__(cin, cout, kernel_size, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
        ):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if pads[0] == pads[1] and pads[2] == pads[3]:  # symmetric: let the convolution pad
            return F.conv2d(x, self.weight, self.bias, self.stride, (pads[2], pads[0]))
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride)


def init_tf(module: nn.Module) -> None:
    """TensorFlow's defaults for ``tf.layers.conv2d``: Glorot-uniform kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class DecomNet(nn.Module):
    """Decom-Net: ``I -> (R, I)``, reflectance (N, 3, H, W) and illumination (N, 1, H, W)."""

    def __init__(self, channels: int = 64, kernel_size: int = 3, layers: int = 5):
        super().__init__()
        k9 = kernel_size * 3
        self.shallow_feature_extraction = SameConv2d(4, channels, k9)
        self.activated_layers = nn.ModuleList(
            SameConv2d(channels, channels, kernel_size) for _ in range(layers)
        )
        self.recon_layer = SameConv2d(channels, 4, kernel_size)
        init_tf(self)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([image.amax(dim=1, keepdim=True), image], dim=1)
        x = self.shallow_feature_extraction(x)
        for conv in self.activated_layers:
            x = F.relu(conv(x))
        x = self.recon_layer(x)
        return torch.sigmoid(x[:, :3]), torch.sigmoid(x[:, 3:4])


class UpStage(nn.Module):
    """One decoder stage of Enhance-Net: ``ReLU(conv(resize_nearest(x, size(skip)))) + skip``."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv = SameConv2d(channels, channels, kernel_size)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return F.relu(self.conv(up)) + skip


class RelightNet(nn.Module):
    """Enhance-Net: ``(I, R) -> I_delta`` (N, 1, H, W), the adjusted illumination."""

    def __init__(self, channels: int = 64, kernel_size: int = 3):
        super().__init__()
        c, k = channels, kernel_size
        self.conv0 = SameConv2d(4, c, k)
        self.conv1 = SameConv2d(c, c, k, stride=2)
        self.conv2 = SameConv2d(c, c, k, stride=2)
        self.conv3 = SameConv2d(c, c, k, stride=2)
        self.deconv1 = UpStage(c, k)
        self.deconv2 = UpStage(c, k)
        self.deconv3 = UpStage(c, k)
        self.feature_fusion = SameConv2d(3 * c, c, 1)
        self.output = SameConv2d(c, 1, 3)
        init_tf(self)

    def forward(self, illumination: torch.Tensor, reflectance: torch.Tensor) -> torch.Tensor:
        conv0 = self.conv0(torch.cat([reflectance, illumination], dim=1))
        conv1 = F.relu(self.conv1(conv0))
        conv2 = F.relu(self.conv2(conv1))
        conv3 = F.relu(self.conv3(conv2))
        deconv1 = self.deconv1(conv3, conv2)
        deconv2 = self.deconv2(deconv1, conv1)
        deconv3 = self.deconv3(deconv2, conv0)
        size = deconv3.shape[-2:]
        gathered = torch.cat(
            [
                F.interpolate(deconv1, size=size, mode="nearest"),
                F.interpolate(deconv2, size=size, mode="nearest"),
                deconv3,
            ],
            dim=1,
        )
        return self.output(self.feature_fusion(gathered))


class RetinexNetModel(nn.Module):
    """Both networks; ``forward(low)`` returns ``R_low``, ``I_low``, ``I_delta`` and the enhanced
    image ``S = R_low * I_delta`` (unclamped, as the official graph's ``output_S``)."""

    def __init__(self, channels: int = 64, kernel_size: int = 3, decom_layers: int = 5):
        super().__init__()
        self.decom = DecomNet(channels, kernel_size, decom_layers)
        self.relight = RelightNet(channels, kernel_size)

    def forward(self, low: torch.Tensor) -> dict[str, torch.Tensor]:
        r_low, i_low = self.decom(low)
        i_delta = self.relight(i_low, r_low)
        return {"R_low": r_low, "I_low": i_low, "I_delta": i_delta, "S": r_low * i_delta}
