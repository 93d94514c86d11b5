"""The latent space and the content-transfer decomposition network (LightenDiffusion Sec. 3.1-3.2).

Layer for layer the network of the authors' ``models/decom.py`` (class ``CTDN``), attribute names
included, so their checkpoints load with ``strict=True``:

* ``ReconNet`` holds the encoder and the decoder. The encoder (``pyramid``) is two 5x5
  convolutions, then three (residual block, stride-2 3x3 convolution) levels of width ``c``,
  ``2c``, ``4c``; ``channel_down`` (three 3x3 convolutions and a sigmoid) maps the 1/8 level to
  the 3-channel latent feature ``F`` in (0, 1). The decoder maps a latent back: ``channel_up``
  (3 -> c -> 2c -> 4c), then three stages of two residual blocks and a transposed convolution
  (x2), each stage adding the encoder's feature of the *low-light input* at the same scale
  (the authors: "the low-light feature only helps the decoder", issue #12), then a 3x3 and a
  1x1 convolution to RGB (no output activation).
* ``retinex`` (``Retinex_decom``) decomposes a latent ``F`` (Eq. 2-3): initial illumination
  ``L0 = max_c F`` and reflectance ``R0 = F / L0``; two residual branches embed them; a
  cross-attention takes queries from the illumination and keys/values from the reflectance
  (attention over channels within each row, scaled by ``sqrt(c / 8)``), a self-attention on the
  illumination (Restormer-style channel attention, 8 heads, L2-normalised queries and keys)
  extracts its content, which is added to the reflectance and removed from the illumination;
  ``R = sigmoid(...)`` (3 channels), ``L = sigmoid(...)`` (1 channel, repeated to 3).

Every tensor here is ``N x C x H x W``; the input's sides must be multiples of 8 (the method
pads to multiples of 64 for the diffusion UNet).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """conv3x3 - LeakyReLU - conv3x3 plus a 1x1 projection of the input (``Res_block``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(), nn.Conv2d(cout, cout, 3, padding=1)
        )
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.conv(x)


class Up(nn.Module):
    """Transposed 3x3 convolution, stride 2 (exactly doubles the size), then LeakyReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)
        self.relu = nn.LeakyReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class ChannelDown(nn.Module):
    """``4c -> 2c -> c -> 3`` 3x3 convolutions with LeakyReLU between, sigmoid at the end."""

    def __init__(self, c: int):
        super().__init__()
        self.conv0 = nn.Conv2d(4 * c, 2 * c, 3, padding=1)
        self.conv1 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, 3, 3, padding=1)
        self.relu = nn.LeakyReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv2(self.relu(self.conv1(self.relu(self.conv0(x))))))


class ChannelUp(nn.Module):
    """``3 -> c -> 2c -> 4c`` 3x3 convolutions with LeakyReLU between, linear output."""

    def __init__(self, c: int):
        super().__init__()
        self.conv0 = nn.Conv2d(3, c, 3, padding=1)
        self.conv1 = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.conv2 = nn.Conv2d(2 * c, 4 * c, 3, padding=1)
        self.relu = nn.LeakyReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.conv1(self.relu(self.conv0(x)))))


class Pyramid(nn.Module):
    """The encoder's feature pyramid: features at 1/2, 1/4 and 1/8 of the input size."""

    def __init__(self, c: int):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(3, c, 5, padding=2), nn.Conv2d(c, c, 5, padding=2))
        self.block0 = ResBlock(c, c)
        self.down0 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.block1 = ResBlock(c, 2 * c)
        self.down1 = nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1)
        self.block2 = ResBlock(2 * c, 4 * c)
        self.down2 = nn.Conv2d(4 * c, 4 * c, 3, stride=2, padding=1)
        self.relu = nn.LeakyReLU()  # present (and unused) in the official module

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d2 = self.down0(self.block0(self.convs(x)))
        d4 = self.down1(self.block1(d2))
        d8 = self.down2(self.block2(d4))
        return d2, d4, d8


Skips = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class ReconNet(nn.Module):
    """Encoder ``E`` (:meth:`encode`) and decoder ``D`` (:meth:`decode`) of the latent space."""

    def __init__(self, c: int):
        super().__init__()
        self.pyramid = Pyramid(c)
        self.channel_down = ChannelDown(c)
        self.channel_up = ChannelUp(c)
        self.block_up0 = ResBlock(4 * c, 4 * c)
        self.block_up1 = ResBlock(4 * c, 4 * c)
        self.up_sampling0 = Up(4 * c, 2 * c)
        self.block_up2 = ResBlock(2 * c, 2 * c)
        self.block_up3 = ResBlock(2 * c, 2 * c)
        self.up_sampling1 = Up(2 * c, c)
        self.block_up4 = ResBlock(c, c)
        self.block_up5 = ResBlock(c, c)
        self.up_sampling2 = Up(c, c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.conv3 = nn.Conv2d(c, 3, 1)
        self.relu = nn.LeakyReLU()

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, Skips]:
        """``(F, skips)``: the 3-channel latent at 1/8 size and the pyramid the decoder reuses."""
        skips = self.pyramid(image)
        return self.channel_down(skips[2]), skips

    def decode(self, latent: torch.Tensor, skips: Skips) -> torch.Tensor:
        """Decode ``latent`` with the pyramid ``skips`` of the (low-light) input image."""
        d2, d4, d8 = skips
        h = self.channel_up(latent)
        h = self.up_sampling0(self.block_up1(self.block_up0(h) + d8))
        h = self.up_sampling1(self.block_up3(self.block_up2(h) + d4))
        h = self.up_sampling2(self.block_up5(self.block_up4(h) + d2))
        return self.conv3(self.relu(self.conv2(h)))


class DepthConv(nn.Module):
    """Depthwise 3x3 then pointwise 1x1 convolution (``Depth_conv``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depth_conv = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
        self.point_conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class CrossAttention(nn.Module):
    """Queries from ``x``, keys and values from ``ctx``; per image row, a softmax over channels
    of ``q k^T / sqrt(dim / heads)`` (the official ``Cross_Attention``: the head split is only
    used in the scale)."""

    def __init__(self, dim: int, heads: int = 8):
        super().__init__()
        if dim % heads:
            raise ValueError(f"CTDN width {dim} must be a multiple of {heads} attention heads")
        self.head_dim = dim // heads
        self.query = DepthConv(dim, dim)
        self.key = DepthConv(dim, dim)
        self.value = DepthConv(dim, dim)
        self.dropout = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        q = self.query(x).transpose(1, 2)  # N x H x C x W
        k = self.key(ctx).transpose(1, 2)
        v = self.value(ctx).transpose(1, 2)
        attn = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        out = self.dropout(attn.softmax(dim=-1)) @ v
        return out.transpose(1, 2).contiguous()


class SelfAttention(nn.Module):
    """Channel self-attention with ``heads`` heads (``Self_Attention``): 1x1 then depthwise 3x3
    projections to q, k, v; L2-normalised q and k over pixels; softmax over channels."""

    def __init__(self, dim: int, heads: int = 8):
        super().__init__()
        if dim % heads:
            raise ValueError(f"CTDN width {dim} must be a multiple of {heads} attention heads")
        self.num_heads = heads
        self.qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim)
        self.project_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(n, self.num_heads, c // self.num_heads, h * w) for t in (q, k, v))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        out = (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v
        return self.project_out(out.reshape(n, c, h, w))


class RetinexDecom(nn.Module):
    """Latent Retinex decomposition ``F -> (R, L)`` (Sec. 3.2; official ``Retinex_decom``)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv0 = nn.Conv2d(3, c, 3, padding=1)
        self.blocks0 = nn.Sequential(ResBlock(c, c), ResBlock(c, c))
        self.conv1 = nn.Conv2d(1, c, 3, padding=1)
        self.blocks1 = nn.Sequential(ResBlock(c, c), ResBlock(c, c))
        self.cross_attention = CrossAttention(c, heads=8)
        self.self_attention = SelfAttention(c, heads=8)
        self.conv0_1 = nn.Sequential(ResBlock(c, c), nn.Conv2d(c, 3, 3, padding=1))
        self.conv1_1 = nn.Sequential(ResBlock(c, c), nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        l0 = feat.max(dim=1, keepdim=True).values
        r0 = feat / l0
        refl = self.blocks0(self.conv0(r0))
        illum = self.blocks1(self.conv1(l0))
        content = self.self_attention(illum)
        refl = self.conv0_1(self.cross_attention(illum, refl) + content)
        illum = self.conv1_1(illum - content)
        return torch.sigmoid(refl), torch.sigmoid(illum).expand(-1, 3, -1, -1)


class CTDN(nn.Module):
    """Encoder, decoder and latent Retinex decomposition (official class ``CTDN``)."""

    def __init__(self, channels: int = 64):
        super().__init__()
        self.ReconNet = ReconNet(channels)
        self.retinex = RetinexDecom(channels)

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, Skips]:
        return self.ReconNet.encode(image)

    def decompose(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.retinex(latent)

    def decode(self, latent: torch.Tensor, skips: Skips) -> torch.Tensor:
        return self.ReconNet.decode(latent, skips)
