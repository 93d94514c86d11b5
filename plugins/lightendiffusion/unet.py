"""The latent diffusion UNet (LightenDiffusion Sec. 3.3; the authors' ``models/unet.py``).

The DDPM UNet of Ho et al. in the form of ermongroup/ddim and WeatherDiffusion, with the official
attribute names (``temb.dense``, ``conv_in``, ``down[i].block[j]``, ``down[i].attn[j]``,
``down[i].downsample``, ``mid.block_1/attn_1/block_2``, ``up[i]...``, ``norm_out``,
``conv_out``) so the released state dicts load with ``strict=True``. Input: the condition (the
low-light latent, scaled to [-1, 1]) concatenated with the noisy latent, ``2 x 3`` channels;
output: the predicted noise (3 channels). Sinusoidal timestep embedding of width ``ch`` and two
linear layers to ``4 ch``; residual blocks with GroupNorm(32), swish and the embedding added
after the first convolution; spatial self-attention after every residual block of resolution
level ``attn_level`` (2 in the official code, hard-wired there) and in the middle; strided-conv
downsampling with (0, 1, 0, 1) zero padding; nearest upsampling followed by a 3x3 convolution.

Paper/code defaults (``configs/unsupervised.yml``): ``ch = 64``, ``ch_mult = (1, 2, 3, 4)``,
two residual blocks per level, dropout 0. The latent's sides must be multiples of
``2 ** (len(ch_mult) - 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the timesteps ``t`` (shape ``N``): ``[sin, cos]`` of
    ``t * 10000^(-k / (dim/2 - 1))``, zero-padded to ``dim`` when it is odd (DDPM, Fairseq)."""
    half = dim // 2
    freqs = torch.exp(
        torch.arange(half, dtype=torch.float32, device=t.device) * -(math.log(10000) / (half - 1))
    )
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([args.sin(), args.cos()], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def group_norm(channels: int) -> nn.GroupNorm:
    if channels % 32:
        raise ValueError(f"UNet widths must be multiples of 32 (GroupNorm(32)); got {channels}")
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb_ch: int, dropout: float):
        super().__init__()
        self.in_channels, self.out_channels = cin, cout
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb_ch, cout)
        self.norm2 = group_norm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = h + self.temb_proj(swish(temb))[:, :, None, None]
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with a residual connection."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = group_norm(c)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        y = self.norm(x)
        q = self.q(y).reshape(n, c, h * w).transpose(1, 2)  # N x HW x C
        k = self.k(y).reshape(n, c, h * w)
        v = self.v(y).reshape(n, c, h * w)
        attn = torch.softmax((q @ k) * c**-0.5, dim=2)  # N x HW(query) x HW(key)
        out = (v @ attn.transpose(1, 2)).reshape(n, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DiffusionUNet(nn.Module):
    """Noise predictor ``eps(cat(condition, x_t), t)``."""

    def __init__(
        self,
        *,
        ch: int = 64,
        ch_mult: Sequence[int] = (1, 2, 3, 4),
        num_res_blocks: int = 2,
        in_channels: int = 6,
        out_ch: int = 3,
        dropout: float = 0.0,
        attn_level: int = 2,
    ):
        super().__init__()
        self.ch = ch
        self.num_resolutions = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        temb_ch = 4 * ch
        self.temb = nn.Module()
        self.temb.dense = nn.ModuleList([nn.Linear(ch, temb_ch), nn.Linear(temb_ch, temb_ch)])
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)

        in_mult = (1, *ch_mult)
        self.down = nn.ModuleList()
        block_in = ch
        for level, mult in enumerate(ch_mult):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            block_in = ch * in_mult[level]
            for _ in range(num_res_blocks):
                stage.block.append(ResnetBlock(block_in, ch * mult, temb_ch, dropout))
                block_in = ch * mult
                if level == attn_level:
                    stage.attn.append(AttnBlock(block_in))
            if level != self.num_resolutions - 1:
                stage.downsample = Downsample(block_in)
            self.down.append(stage)

        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, temb_ch, dropout)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in, temb_ch, dropout)

        ups: list[nn.Module] = []
        for level in reversed(range(self.num_resolutions)):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            out = ch * ch_mult[level]
            for i in range(num_res_blocks + 1):
                skip = ch * (in_mult[level] if i == num_res_blocks else ch_mult[level])
                stage.block.append(ResnetBlock(block_in + skip, out, temb_ch, dropout))
                block_in = out
                if level == attn_level:
                    stage.attn.append(AttnBlock(block_in))
            if level != 0:
                stage.upsample = Upsample(block_in)
            ups.insert(0, stage)
        self.up = nn.ModuleList(ups)
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, padding=1)

    @property
    def multiple(self) -> int:
        """The latent's sides must be multiples of this."""
        return 2 ** (self.num_resolutions - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.temb.dense[1](swish(self.temb.dense[0](timestep_embedding(t, self.ch))))
        hs = [self.conv_in(x)]
        for level, stage in enumerate(self.down):
            for i, block in enumerate(stage.block):
                h = block(hs[-1], temb)
                if len(stage.attn):
                    h = stage.attn[i](h)
                hs.append(h)
            if level != self.num_resolutions - 1:
                hs.append(stage.downsample(hs[-1]))
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(hs[-1], temb)), temb)
        for level in reversed(range(self.num_resolutions)):
            stage = self.up[level]
            for i, block in enumerate(stage.block):
                h = block(torch.cat([h, hs.pop()], dim=1), temb)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if level != 0:
                h = stage.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))
