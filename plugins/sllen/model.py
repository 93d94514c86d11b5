"""SLLEN's networks (paper Sec. II-A, Fig. 2 and 4): the shared encoder, SSaN and LLEmN.

No code was released and the extraction of the paper lost most sizes, so the layout below is a
reconstruction from the prose; every choice marked [R] is ours. ``w`` is the base width
(``width``, 64 by default, the U-Net of Ronneberger et al. [29] that the paper names).

* Shared encoder ``E_s`` = LLEmN's encoder ``E_L`` [R: U-Net encoder]: double 3x3 convolutions
  with ReLU (no normalisation [R]: batch statistics would mix the two data domains the encoder
  sees) at ``w``@H, ``2w``@H/2, ``4w``@H/4, ``8w``@H/8, 2x2 max pooling between them. Its last
  stage is the low-level feature ``F_l = E_L(I)`` (Eq. 2), ``8w`` x H/8 x W/8.
* SSaN (upper part of Fig. 2): ``E_s``, one SS-only stage (``16w``@H/16), a U-Net decoder
  ``D_S`` (2x2 up-convolution, concatenation with the encoder's skip, double convolution) and a
  1x1 classifier. ``S = softmax(logits)`` is the high-level semantic map. The intermediate
  embedding feature ``F_e`` is the output of ``D_S``'s first up-stage, ``8w``@H/8 [R: the paper
  says only "the intermediate layer"; this one has ``F_l``'s shape, which Eq. 5 combines it
  with]. It is a fixed layer: "random" in the paper describes its channels, not a sampling.
* HSEB (Eq. 3): three [3x3 convolution, ReLU, 2x2 max pooling] layers with 32, 128 and 512
  filters (``w/2, 2w, 8w``) map ``S`` to ``F_h``, ``8w``@H/8.
* HSBAB (Eq. 4, Fig. 4a): ``Q = W_q F_h``, ``K = W_k F_h`` (1x1 convolutions to ``d``
  channels, ``attention_dim`` [R] 64), ``V = W_v F_l`` (1x1, ``8w``); over the ``L = H/8 * W/8``
  positions ``F_a = softmax(Q K^T / sqrt(d)) V`` (scaled dot-product attention, Vaswani et al.
  [28]); no residual [R: Eq. 4 has none]. Queries are processed in chunks of
  ``attention_chunk`` so memory stays ``O(chunk * L)`` on large images.
* RSAEB (Eq. 5, Fig. 4b): a trunk ``conv(8w -> 4w) - LeakyReLU(0.1) - conv(4w -> 4w) -
  LeakyReLU(0.1)`` on ``F_e`` and two 3x3 heads give ``gamma`` and ``beta`` (``8w``@H/8 each);
  ``F_r = F_l * (1 + gamma) + beta`` [R: the SFT form of Wang et al.; the paper's "non-linear
  transformation" is read as the non-linear convolutional mapping from ``F_e`` to the two maps].
* FFB (Eq. 6, Fig. 4c): ``C_a = conv-ReLU-conv(F_a)``, ``C_r = conv-ReLU-conv(F_r)``,
  ``W = sigmoid(conv([F_a, F_r]))`` and ``F_f = W * C_a + (1 - W) * C_r`` [R].
* ``D_L``: a U-Net decoder from ``F_f`` with the encoder's skips (``4w``@H/4, ``2w``@H/2,
  ``w``@H), a 1x1 convolution to RGB and a sigmoid [R] give ``Y_hat``. Its three stages pair
  with the encoder's first three for the distillation loss (Eq. 7, ``N = 3``).

All convolutions are 3x3 except the 1x1 projections and classifiers (the paper: "the
convolution operators used in SLLEN are all set to be [3x3]"). Inputs are padded to a multiple
of 16 (reflection; replication for tiny images) and outputs cropped back. Weights are drawn as
U-Net [29] draws them (Sec. 3 there: Gaussian with standard deviation ``sqrt(2 / N)``, ``N`` the
inputs of one output unit, zero biases) [R]: PyTorch's default initialisation lets the signal
fade through this many ReLU layers without normalisation, and thin networks then start dead.
RSAEB's ``gamma``/``beta`` heads start at zero, so ``F_r = F_l`` at the start [R, as SFT].

Ablations (Table II): ``blocks.hsbab = False`` feeds ``F_l`` to the FFB in place of ``F_a``
(SLLEN-1), ``blocks.rsaeb = False`` in place of ``F_r`` (SLLEN-2); both give SLLEN-3, a U-Net
whose bottleneck is the FFB over ``F_l`` alone (the blocks are not built, so the parameter count
shows the ablation). ``shared_encoder = False`` gives SSaN its own encoder (SLLEN-4, trained
independently: see :mod:`.training`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

MULTIPLE = 16  # four 2x2 poolings (SSaN's deepest stage is at H/16)


def conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class DoubleConv(nn.Sequential):
    """U-Net's stage: two 3x3 convolutions, each followed by ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__(conv3(cin, cout), nn.ReLU(inplace=True), conv3(cout, cout), nn.ReLU(True))


class UpStage(nn.Module):
    """U-Net's decoder stage: 2x2 up-convolution halving the channels, concatenation with the
    encoder's skip feature, double convolution."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv = DoubleConv(2 * cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class SharedEncoder(nn.Module):
    """``E_s = E_L``: four stages ``w, 2w, 4w, 8w`` (strides 1, 2, 4, 8); returns all four."""

    def __init__(self, width: int = 64):
        super().__init__()
        w = width
        self.stage1 = DoubleConv(3, w)
        self.stage2 = DoubleConv(w, 2 * w)
        self.stage3 = DoubleConv(2 * w, 4 * w)
        self.stage4 = DoubleConv(4 * w, 8 * w)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        e1 = self.stage1(x)
        e2 = self.stage2(F.max_pool2d(e1, 2))
        e3 = self.stage3(F.max_pool2d(e2, 2))
        e4 = self.stage4(F.max_pool2d(e3, 2))
        return [e1, e2, e3, e4]


class SSaN(nn.Module):
    """The SS auxiliary network's own parts: the H/16 stage, ``D_S`` and the classifier.

    ``forward(features)`` takes the encoder's four features and returns ``(logits, F_e)``.
    With ``own_encoder`` (SLLEN-4) it holds a private encoder and takes the image instead.
    """

    def __init__(self, width: int = 64, num_classes: int = 21, own_encoder: bool = False):
        super().__init__()
        w = width
        self.encoder = SharedEncoder(width) if own_encoder else None
        self.bottom = DoubleConv(8 * w, 16 * w)
        self.up4 = UpStage(16 * w, 8 * w)  # output: the intermediate embedding feature F_e
        self.up3 = UpStage(8 * w, 4 * w)
        self.up2 = UpStage(4 * w, 2 * w)
        self.up1 = UpStage(2 * w, w)
        self.head = nn.Conv2d(w, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (``C``@H) and the decoder's features coarse to fine: bottom (H/16), ``F_e``
        (H/8), H/4, H/2, H."""
        e1, e2, e3, e4 = features
        b = self.bottom(F.max_pool2d(e4, 2))
        f_e = self.up4(b, e4)
        d3 = self.up3(f_e, e3)
        d2 = self.up2(d3, e2)
        d1 = self.up1(d2, e1)
        return self.head(d1), [b, f_e, d3, d2, d1]


class HSEB(nn.Module):
    """High-level semantic extraction block (Eq. 3): ``S`` (C@H) -> ``F_h`` (``8w``@H/8)."""

    def __init__(self, num_classes: int, channels: tuple[int, int, int] = (32, 128, 512)):
        super().__init__()
        layers: list[nn.Module] = []
        cin = num_classes
        for cout in channels:
            layers += [conv3(cin, cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = cout
        self.body = nn.Sequential(*layers)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.body(s)


def spatial_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk: int = 4096
) -> torch.Tensor:
    """``softmax(Q K^T / sqrt(d)) V`` over spatial positions (Eq. 4).

    ``q``, ``k``: ``(N, d, H, W)``; ``v``: ``(N, c, H, W)``; returns ``(N, c, H, W)``. Queries go
    in chunks of ``chunk`` positions, so peak memory is ``chunk x H*W`` scores.
    """
    n, d, h, w = q.shape
    qs = q.flatten(2).transpose(1, 2)  # N x L x d
    ks = k.flatten(2).transpose(1, 2)
    vs = v.flatten(2).transpose(1, 2)  # N x L x c
    length = qs.shape[1]
    step = max(1, int(chunk)) if chunk and chunk > 0 else length
    outs = [
        F.scaled_dot_product_attention(qs[:, i : i + step], ks, vs) for i in range(0, length, step)
    ]
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
    return out.transpose(1, 2).reshape(n, v.shape[1], h, w)


class HSBAB(nn.Module):
    """High-level semantic based attention block (Eq. 4): ``Q, K`` from ``F_h``, ``V`` from
    ``F_l``; returns ``F_a``."""

    def __init__(self, channels: int = 512, dim: int = 64, chunk: int = 4096):
        super().__init__()
        self.query = nn.Conv2d(channels, dim, 1)
        self.key = nn.Conv2d(channels, dim, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.chunk = int(chunk)

    def forward(self, f_h: torch.Tensor, f_l: torch.Tensor) -> torch.Tensor:
        return spatial_attention(self.query(f_h), self.key(f_h), self.value(f_l), self.chunk)


class RSAEB(nn.Module):
    """Random semantic aware enhancement block (Eq. 5): ``F_r = F_l * (1 + gamma) + beta`` with
    ``gamma, beta`` predicted from ``F_e``."""

    def __init__(self, channels: int = 512, hidden: int = 256):
        super().__init__()
        self.trunk = nn.Sequential(
            conv3(channels, hidden),
            nn.LeakyReLU(0.1, inplace=True),
            conv3(hidden, hidden),
            nn.LeakyReLU(0.1, inplace=True),
        )
        self.gamma = conv3(hidden, channels)
        self.beta = conv3(hidden, channels)

    def forward(self, f_e: torch.Tensor, f_l: torch.Tensor) -> torch.Tensor:
        t = self.trunk(f_e)
        return f_l * (1.0 + self.gamma(t)) + self.beta(t)


class FFB(nn.Module):
    """Feature fusion block (Eq. 6): ``F_f = W * C_a + (1 - W) * C_r``."""

    def __init__(self, channels: int = 512):
        super().__init__()
        c = channels
        self.branch_a = nn.Sequential(conv3(c, c), nn.ReLU(inplace=True), conv3(c, c))
        self.branch_r = nn.Sequential(conv3(c, c), nn.ReLU(inplace=True), conv3(c, c))
        self.weight = conv3(2 * c, c)

    def forward(self, f_a: torch.Tensor, f_r: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.weight(torch.cat([f_a, f_r], dim=1)))
        return w * self.branch_a(f_a) + (1.0 - w) * self.branch_r(f_r)


class LLEmN(nn.Module):
    """LLEmN's own parts: HSEB, HSBAB, RSAEB, FFB and the decoder ``D_L`` (the encoder is
    shared and lives in :class:`SLLENNet`)."""

    def __init__(
        self,
        width: int = 64,
        num_classes: int = 21,
        attention_dim: int = 64,
        attention_chunk: int = 4096,
        hsbab: bool = True,
        rsaeb: bool = True,
    ):
        super().__init__()
        w = width
        self.hseb = HSEB(num_classes, (max(1, w // 2), 2 * w, 8 * w)) if hsbab else None
        self.hsbab = HSBAB(8 * w, attention_dim, attention_chunk) if hsbab else None
        self.rsaeb = RSAEB(8 * w, 4 * w) if rsaeb else None
        self.ffb = FFB(8 * w)
        self.up3 = UpStage(8 * w, 4 * w)
        self.up2 = UpStage(4 * w, 2 * w)
        self.up1 = UpStage(2 * w, w)
        self.out = nn.Conv2d(w, 3, 1)

    @property
    def uses_semantics(self) -> bool:
        return self.hsbab is not None or self.rsaeb is not None

    def forward(
        self, features: list[torch.Tensor], s: torch.Tensor | None, f_e: torch.Tensor | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``Y_hat`` and ``D_L``'s features (H/4, H/2, H) for the distillation loss."""
        e1, e2, e3, f_l = features
        f_a = self.hsbab(self.hseb(s), f_l) if self.hsbab is not None else f_l
        f_r = self.rsaeb(f_e, f_l) if self.rsaeb is not None else f_l
        f_f = self.ffb(f_a, f_r)
        d3 = self.up3(f_f, e3)
        d2 = self.up2(d3, e2)
        d1 = self.up1(d2, e1)
        return torch.sigmoid(self.out(d1)), [d3, d2, d1]


@dataclass
class Outputs:
    """What one forward pass gives: ``enhanced`` and ``logits`` at the input size; the
    encoder's first three features and ``D_L``'s matching three (Eq. 7), at the padded size."""

    enhanced: torch.Tensor
    logits: torch.Tensor | None
    encoder: list[torch.Tensor]
    decoder: list[torch.Tensor]


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> tuple[torch.Tensor, int, int]:
    """Pad the bottom and right of ``x`` to a multiple of ``multiple``; return the original
    height and width. Reflection padding, or replication where the image is too small."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def init_weights(module: nn.Module) -> None:
    """He/U-Net initialisation: N(0, 2 / fan_in) weights, zero biases (see the module docs).

    A 2x2 stride-2 up-convolution feeds each output pixel from one tap per input channel, so
    its fan-in is its input channel count.
    """
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d):
            fan_in = (
                m.in_channels
                * (m.kernel_size[0] // m.stride[0])
                * (m.kernel_size[1] // m.stride[1])
            )
        elif isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        else:
            continue
        with torch.no_grad():
            m.weight.normal_(0.0, math.sqrt(2.0 / max(1, fan_in)))
            if m.bias is not None:
                m.bias.zero_()


class SLLENNet(nn.Module):
    """SLLEN: shared encoder + SSaN + LLEmN (Fig. 2).

    Parameters belong to exactly one of ``encoder`` (shared by both networks), ``ssan``
    (SSaN-only) and ``llemn`` (LLEmN-only). ``with_llemn = False`` builds SSaN alone (the
    ``sllen-ssan`` segmenter). ``grad_target`` is the constant ``G`` of the gradient loss (Eq.
    10), kept in the weights so a trained model records the value it was trained with (NaN
    until training computes it).
    """

    def __init__(
        self,
        width: int = 64,
        num_classes: int = 21,
        attention_dim: int = 64,
        attention_chunk: int = 4096,
        hsbab: bool = True,
        rsaeb: bool = True,
        shared_encoder: bool = True,
        with_llemn: bool = True,
    ):
        super().__init__()
        self.width, self.num_classes = int(width), int(num_classes)
        self.encoder = SharedEncoder(width)
        self.ssan = SSaN(width, num_classes, own_encoder=not shared_encoder)
        self.llemn = (
            LLEmN(width, num_classes, attention_dim, attention_chunk, hsbab, rsaeb)
            if with_llemn
            else None
        )
        self.register_buffer("grad_target", torch.tensor(math.nan))
        self.semantic_gradient = False
        init_weights(self)
        if self.llemn is not None and self.llemn.rsaeb is not None:
            for head in (self.llemn.rsaeb.gamma, self.llemn.rsaeb.beta):
                nn.init.zeros_(head.weight)

    @property
    def shared_encoder(self) -> bool:
        return self.ssan.encoder is None

    def segmentation(
        self, x: torch.Tensor, features: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """SSaN on a padded batch: logits and ``D_S``'s features (see :meth:`SSaN.forward`)."""
        if self.ssan.encoder is not None:
            features = self.ssan.encoder(x)
        elif features is None:
            features = self.encoder(x)
        return self.ssan(features)

    def segment(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """SSaN on any input size: logits cropped back to it, and the decoder's features."""
        xp, h, w = pad_to_multiple(x)
        logits, feats = self.segmentation(xp)
        return logits[..., :h, :w], feats

    def forward(self, x: torch.Tensor) -> Outputs:
        """The LLE forward pass on any input size.

        SSaN runs on the same input for ``S`` and ``F_e``. It runs without gradient unless
        ``semantic_gradient`` is set [R]: in the LLE stage of Algorithm 1 SSaN only provides
        semantics, and its own parameters are not stepped there anyway.
        """
        if self.llemn is None:
            raise RuntimeError("this SLLENNet was built without LLEmN (segmenter only)")
        xp, h, w = pad_to_multiple(x)
        features = self.encoder(xp)
        s = f_e = logits = None
        if self.llemn.uses_semantics:
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.semantic_gradient):
                logits, dec = self.segmentation(xp, features)
                s, f_e = logits.softmax(dim=1), dec[1]
        y, dfeats = self.llemn(features, s, f_e)
        return Outputs(
            enhanced=y[..., :h, :w],
            logits=logits[..., :h, :w] if logits is not None else None,
            encoder=features[:3][::-1],  # H/4, H/2, H: the order of D_L's stages
            decoder=dfeats,
        )
