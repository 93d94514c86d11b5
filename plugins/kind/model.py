"""KinD's three networks in the official TensorFlow design (zhangyhuaee/KinD, ``model.py``).

All convolutions are 3x3 with bias and ``lrelu(x) = max(0.2 x, x)`` unless stated; TensorFlow
``'same'`` padding; 2x2 max pooling with ``'same'`` padding (``ceil_mode``); upsampling is a 2x2
stride-2 transposed convolution without bias whose output is cut to the skip feature's size,
then concatenated with it (``upsample_and_concat``).

* :class:`DecomNet` (``DecomNet_simple``; Zhang et al., ACM MM 2019, Sec. 3.1): a small U-Net
  (32-64-128) for the reflectance (``g_conv10``: a 1x1 convolution, sigmoid; the code's comment:
  1x1 replaces the paper's 3x3) and a branch for the illumination from the first-level features
  and the last decoder features (``l_conv1_2``, concat, 1x1 ``l_conv1_4``, sigmoid).
  235,876 parameters.
* :class:`RestorationNet` (``Restoration_net``, Sec. 3.2): ``[R, I]`` -> a five-level U-Net
  (32-64-128-256-512, two convolutions per level) -> 3x3 convolution to 3 channels, sigmoid.
  7,760,739 parameters. Its decoder stages (:class:`DecoderStage`, ``dec6..dec9`` =
  ``up_k`` + ``de_conv{k}_1`` + ``de_conv{k}_2``) are the decoder sites.
* :class:`AdjustNet` (``Illumination_adjust_net``, Sec. 3.3): ``[I, ratio map]`` -> three
  convolutions of width 32 -> a convolution to 1 channel with ``lrelu`` *and then* a sigmoid (as
  the code). 19,393 parameters.

Total 8,016,008 (8.0160 M). TF name -> state-dict key: ``DecomNet/g_conv1_1`` ->
``decom.g_conv1_1``, ``g_up_1`` -> ``decom.g_up_1.weight``, ``Restoration_net/de_conv{l}_{j}``
-> ``restoration.enc{l}.conv{j}`` for levels 1-5, ``up_{k}`` -> ``restoration.dec{k}.up.weight``,
``de_conv{k}_{j}`` -> ``restoration.dec{k}.conv{j}`` for 6-9, ``de_conv10`` ->
``restoration.out``, ``Illumination_adjust_net/en_conv_{i}`` -> ``adjust.en_conv_{i}``; kernels
``[kh, kw, in, out] -> [out, in, kh, kw]``, transposed kernels ``[kh, kw, out, in] -> [in, out,
kh, kw]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


def pool(x: torch.Tensor) -> torch.Tensor:
    """``slim.max_pool2d([2, 2], stride 2, padding='SAME')``: output ``ceil(size / 2)``."""
    return F.max_pool2d(x, 2, stride=2, ceil_mode=True)


class UpConcat(nn.Module):
    """``upsample_and_concat``: 2x2 stride-2 transposed convolution (no bias) of ``x`` to the
    size of ``skip``, then ``[up, skip]``. ``weight`` is (in, out, 2, 2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cin, cout, 2, 2))
        # tf.get_variable's default initializer: Glorot-uniform over [2, 2, out, in]
        fan_in, fan_out = 4 * cout, 4 * cin
        bound = (6.0 / (fan_in + fan_out)) ** 0.5
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.conv_transpose2d(x, self.weight, stride=2)
        h, w = skip.shape[-2:]
        return torch.cat([up[..., :h, :w], skip], dim=1)


def init_tf(module: nn.Module) -> None:
    """TF-slim's ``conv2d`` defaults: Xavier (Glorot-uniform) kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class DecomNet(nn.Module):
    """Layer decomposition net: image -> (R (N, 3, H, W), I (N, 1, H, W))."""

    def __init__(self):
        super().__init__()
        self.g_conv1_1 = conv(3, 32)
        self.g_conv2_1 = conv(32, 64)
        self.g_conv3_1 = conv(64, 128)
        self.g_up_1 = UpConcat(128, 64)
        self.g_conv8_1 = conv(128, 64)
        self.g_up_2 = UpConcat(64, 32)
        self.g_conv9_1 = conv(64, 32)
        self.g_conv10 = conv(32, 3, 1)
        self.l_conv1_2 = conv(32, 32)
        self.l_conv1_4 = conv(64, 1, 1)
        init_tf(self)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c1 = lrelu(self.g_conv1_1(image))
        c2 = lrelu(self.g_conv2_1(pool(c1)))
        c3 = lrelu(self.g_conv3_1(pool(c2)))
        c8 = lrelu(self.g_conv8_1(self.g_up_1(c3, c2)))
        c9 = lrelu(self.g_conv9_1(self.g_up_2(c8, c1)))
        r = torch.sigmoid(self.g_conv10(c9))
        l2 = lrelu(self.l_conv1_2(c1))
        i = torch.sigmoid(self.l_conv1_4(torch.cat([l2, c9], dim=1)))
        return r, i


class EncoderLevel(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = conv(cin, cout)
        self.conv2 = conv(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lrelu(self.conv2(lrelu(self.conv1(x))))


class DecoderStage(nn.Module):
    """``up_k`` + ``de_conv{k}_1`` + ``de_conv{k}_2``: upsample, concatenate the skip, two
    convolutions. Returns one tensor (a decoder site)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = UpConcat(cin, cout)
        self.conv1 = conv(2 * cout, cout)
        self.conv2 = conv(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return lrelu(self.conv2(lrelu(self.conv1(self.up(x, skip)))))


class RestorationNet(nn.Module):
    """Reflectance restoration net: ``(R_low, I_low)`` -> restored reflectance (N, 3, H, W)."""

    def __init__(self):
        super().__init__()
        self.enc1 = EncoderLevel(4, 32)
        self.enc2 = EncoderLevel(32, 64)
        self.enc3 = EncoderLevel(64, 128)
        self.enc4 = EncoderLevel(128, 256)
        self.enc5 = EncoderLevel(256, 512)
        self.dec6 = DecoderStage(512, 256)
        self.dec7 = DecoderStage(256, 128)
        self.dec8 = DecoderStage(128, 64)
        self.dec9 = DecoderStage(64, 32)
        self.out = conv(32, 3)
        init_tf(self)

    def forward(self, reflectance: torch.Tensor, illumination: torch.Tensor) -> torch.Tensor:
        c1 = self.enc1(torch.cat([reflectance, illumination], dim=1))
        c2 = self.enc2(pool(c1))
        c3 = self.enc3(pool(c2))
        c4 = self.enc4(pool(c3))
        c5 = self.enc5(pool(c4))
        x = self.dec6(c5, c4)
        x = self.dec7(x, c3)
        x = self.dec8(x, c2)
        x = self.dec9(x, c1)
        return torch.sigmoid(self.out(x))


class AdjustNet(nn.Module):
    """Illumination adjustment net: ``(I, ratio map)`` -> adjusted illumination (N, 1, H, W)."""

    def __init__(self):
        super().__init__()
        self.en_conv_1 = conv(2, 32)
        self.en_conv_2 = conv(32, 32)
        self.en_conv_3 = conv(32, 32)
        self.en_conv_4 = conv(32, 1)
        init_tf(self)

    def forward(self, illumination: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        x = lrelu(self.en_conv_1(torch.cat([illumination, ratio], dim=1)))
        x = lrelu(self.en_conv_2(x))
        x = lrelu(self.en_conv_3(x))
        return torch.sigmoid(lrelu(self.en_conv_4(x)))


def ratio_map(illumination: torch.Tensor, ratio: torch.Tensor | float) -> torch.Tensor:
    """A constant map per image: ``ratio`` is a float or one value per image (N,)."""
    r = torch.as_tensor(ratio, dtype=illumination.dtype, device=illumination.device)
    return torch.ones_like(illumination) * r.reshape(-1, 1, 1, 1)


class KinDModel(nn.Module):
    """The three sub-networks under one module (``decom``, ``restoration``, ``adjust``)."""

    def __init__(self):
        super().__init__()
        self.decom = DecomNet()
        self.restoration = RestorationNet()
        self.adjust = AdjustNet()

    def forward(self, image: torch.Tensor, ratio: torch.Tensor | float) -> torch.Tensor:
        """``R_restored * I_adjusted`` for the light ``ratio`` (no test-time post-processing)."""
        r, i = self.decom(image)
        return self.restoration(r, i) * self.adjust(i, ratio_map(i, ratio))
