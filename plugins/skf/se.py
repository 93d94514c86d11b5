"""The semantic-aware embedding (SE) module of SKF (Wu et al., CVPR 2023, Sec. 3.2, Eq. 4-5).

Rebuilt from the authors' ``DRBN_SKF/src/model/Fuseblock.py`` (``TransformerBlock``, a
Restormer-style block whose attention takes queries from the semantic features), with its
parameter names so the authors' DRBN-SKF checkpoints map onto it:

* ``conv1``: the semantic feature ``F_s``, resized (nearest) to the image feature ``F_i``, is
  projected by a 1x1 convolution (with bias) to ``C`` channels;
* ``norm1``: one layer normalisation over channels (with bias) applied to both ``F_i`` and the
  projected ``F_s`` (shared, as in the code);
* ``attn`` (Eq. 4, transposed attention): ``q = W_q(LN(F_s))`` (1x1 then 3x3 convolution; the code
  names the 3x3 ``q_dwconv`` but it is a full convolution, which the published parameter counts
  confirm), ``k, v = W_k, W_v(LN(F_i))`` (1x1 to ``2C`` then a depthwise 3x3), ``heads = 2``;
  ``q`` and ``k`` L2-normalised over pixels; ``A = softmax(q k^T * tau)`` of size
  ``C/heads x C/heads`` per head, ``tau`` learnable (initialised to 1); output ``W_p(A v)``;
  no biases;
* Eq. 5: ``F_mid = LN(F_i) + attn`` (the residual starts from the *normalised* image feature, as
  in the code), ``F_out = F_mid + FFN(LN2(F_mid))``, FFN the gated depthwise feed-forward network
  (GDFN): 1x1 to ``2 * int(2.66 C)``, depthwise 3x3, ``GELU(x1) * x2`` with the tanh
  approximation of GELU (the code's ``my_gelu``), 1x1 back to ``C``; no biases.

Parameters: ``C_s C + C`` (``conv1``) ``+ 4C`` (norms) ``+ heads + 2C^2 + 18C + C^2 + 9C^2 + C^2``
(attention) ``+ 3 C h + 18 h`` with ``h = int(2.66 C)`` (FFN); e.g. 26,812 for ``C = 32``,
``C_s = 96``; 7,238 for ``C = 16``, ``C_s = 48``; 7,414 for ``C = 16``, ``C_s = 59``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.Module):
    """Layer normalisation over the channels of each pixel (the code's ``WithBias_LayerNorm``:
    biased variance, eps 1e-5). Parameters live in ``body`` like the code's ``LayerNorm``."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Module()
        self.body.weight = nn.Parameter(torch.ones(channels))
        self.body.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = x.var(1, keepdim=True, unbiased=False)
        y = (x - mu) / torch.sqrt(var + 1e-5)
        return y * self.body.weight.view(1, -1, 1, 1) + self.body.bias.view(1, -1, 1, 1)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU with the tanh approximation (the code's ``my_gelu.GELU``)."""
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


class SemanticAttention(nn.Module):
    """Transposed cross attention: queries from semantics, keys and values from the image."""

    def __init__(self, channels: int, heads: int = 2):
        super().__init__()
        if channels % heads:
            raise ValueError(f"SE: {channels} channels do not split into {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.kv = nn.Conv2d(channels, 2 * channels, 1, bias=False)
        self.kv_dwconv = nn.Conv2d(
            2 * channels, 2 * channels, 3, padding=1, groups=2 * channels, bias=False
        )
        self.q = nn.Conv2d(channels, channels, 1, bias=False)
        self.q_dwconv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.project_out = nn.Conv2d(channels, channels, 1, bias=False)

    def attention(self, image: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        """The attention map ``A`` (N, heads, C/heads, C/heads) of Eq. 4."""
        n, c, h, w = image.shape
        k, _ = self.kv_dwconv(self.kv(image)).chunk(2, dim=1)
        q = self.q_dwconv(self.q(semantic))
        q = F.normalize(q.reshape(n, self.heads, c // self.heads, h * w), dim=-1)
        k = F.normalize(k.reshape(n, self.heads, c // self.heads, h * w), dim=-1)
        return ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)

    def forward(self, image: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        n, c, h, w = image.shape
        _, v = self.kv_dwconv(self.kv(image)).chunk(2, dim=1)
        attn = self.attention(image, semantic)
        out = attn @ v.reshape(n, self.heads, c // self.heads, h * w)
        return self.project_out(out.reshape(n, c, h, w))


class GatedFeedForward(nn.Module):
    """GDFN of Restormer (Zamir et al., CVPR 2022), expansion 2.66, tanh GELU."""

    def __init__(self, channels: int, expansion: float = 2.66):
        super().__init__()
        hidden = int(channels * expansion)
        self.project_in = nn.Conv2d(channels, 2 * hidden, 1, bias=False)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=False)
        self.project_out = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(gelu_tanh(x1) * x2)


class SEModule(nn.Module):
    """``F_out = SE(F_i, F_s)`` (Eq. 4-5); ``F_i`` keeps its shape."""

    def __init__(
        self, semantic_channels: int, channels: int, heads: int = 2, ffn_expansion: float = 2.66
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(semantic_channels, channels, 1)
        self.norm1 = ChannelLayerNorm(channels)
        self.attn = SemanticAttention(channels, heads)
        self.norm2 = ChannelLayerNorm(channels)
        self.ffn = GatedFeedForward(channels, ffn_expansion)

    def forward(self, image: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        semantic = F.interpolate(semantic, size=image.shape[-2:], mode="nearest")
        semantic = self.norm1(self.conv1(semantic))
        mid = self.norm1(image)
        mid = mid + self.attn(mid, semantic)
        return mid + self.ffn(self.norm2(mid))
