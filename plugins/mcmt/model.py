"""CRNet, the Comprehensive Residual Network (Lee, Jang, Kim 2023, Sec. 4.2.1.1, Fig. 2-3).

Blocks, in the paper's terms (all convolutions 3x3, stride 1, padding 1; Sec. 5.4):

* :class:`MaskedConv` (MC): ``phi(W_f * x) (.) sigmoid(W_g * x)``, a gated convolution
  (Yu et al., ref. [23]) whose soft mask weights informative positions and channels; ``phi`` is
  ReLU ("e.g. ReLU"). The tail MC, which predicts the image residual, uses the identity for
  ``phi`` so the residual can be negative (the paper does not say; a ReLU there could only
  brighten). ``masked=False`` gives the plain ``conv + ReLU`` of the ablation RN (Table 2).
* :class:`MaskedResidualBlock` (MRB): ``x + MC_2(MC_1(x))``.
* :class:`ConvMemory`: the "convolutional memory module", a ConvLSTM cell as in PReNet (Ren et
  al. 2019), which the LMRG follows closely (6-channel input, 32 channels, memory, residual
  blocks, image residual, recurrence). Its four gates come from one convolution of
  ``cat(feature, h)`` with ``4 x width`` outputs (the same parameters as PReNet's four
  convolutions, split as input, forget, cell, output gates).
* :class:`LayerAttention` (LAM, HAN ref. [20]): the ``n`` MRB outputs of an LMRG are stacked,
  flattened to ``B x n x (C H W)``, the ``n x n`` layer correlation ``X X^T`` is turned into
  weights by a softmax, and ``F_j + alpha sum_i w_ji F_i`` is returned with the scale ``alpha``
  initialised to 0 and learned. ``energy="han-code"`` (default) is HAN's released code,
  ``softmax(max_i E_ji - E_ji)``; ``energy="paper"`` is ``softmax(E)`` as the prose reads. The
  attention runs in float32. A 3x3 convolution then fuses the ``n x C`` channels back to ``C``
  (HAN's ``last_conv``).
* :class:`LMRG` (layer-wise masked recurrent group): one recurrence step reads
  ``cat(I, x_prev)`` (6 channels; Sec. 5.4 names 6 input channels), head MC (6 -> C), memory,
  ``blocks`` MRBs, LAM + fusion (or, without layer attention, the last MRB's output as in
  PReNet), a long feature skip from the memory output ``h``, the tail MC (C -> 3) and the image
  residual ``x_t = tail + I``. The group runs ``recurrences`` steps (T = 2) with shared weights;
  its memory starts at zero. Its first step starts from the previous group's output.
* :class:`CRNet`: ``groups`` (N = 4) LMRGs with separate weights, LMRG 1 starting from ``I``.
  :meth:`CRNet.forward` returns the final output and the outputs of LMRGs ``1 .. N-1`` (the
  ``H_i`` of the mid-step loss, Eq. of L_ms, and of the mid-consistency loss L_mc). Outputs are
  not clamped; evaluation clamps to [0, 1].

The defaults (width 32, 4 groups, 2 recurrences, 5 MRBs) are the paper's (Sec. 5.4). They give
1,240,732 parameters (no count is printed in the paper).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1)


class MaskedConv(nn.Module):
    """MC (Sec. 4.2.1.1): ``act(W_f * x) * sigmoid(W_g * x)``; ``masked=False``: ``act(W_f * x)``.

    ``act`` is ``"relu"`` or ``"identity"`` (the tail of an LMRG).
    """

    def __init__(self, cin: int, cout: int, *, masked: bool = True, act: str = "relu"):
        super().__init__()
        if act not in ("relu", "identity"):
            raise ValueError(f"unknown activation {act!r}; use 'relu' or 'identity'")
        self.feature = _conv(cin, cout)
        self.gate = _conv(cin, cout) if masked else None
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.feature(x)
        if self.act == "relu":
            f = F.relu(f)
        if self.gate is not None:
            f = f * torch.sigmoid(self.gate(x))
        return f


class MaskedResidualBlock(nn.Module):
    """MRB (Sec. 4.2.1.1): ``x + MC_2(MC_1(x))``, ``C -> C`` channels."""

    def __init__(self, width: int, *, masked: bool = True):
        super().__init__()
        self.mc1 = MaskedConv(width, width, masked=masked)
        self.mc2 = MaskedConv(width, width, masked=masked)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mc2(self.mc1(x))


class ConvMemory(nn.Module):
    """ConvLSTM memory of an LMRG (PReNet's recurrent unit): gates from ``cat(x, h)``.

    ``forward(x, state)`` returns ``(h, (h, c))``; ``state=None`` starts from zeros.
    """

    def __init__(self, width: int):
        super().__init__()
        self.width = width
        self.gates = _conv(2 * width, 4 * width)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if state is None:
            h = x.new_zeros(x.shape[0], self.width, *x.shape[-2:])
            c = torch.zeros_like(h)
        else:
            h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class LayerAttention(nn.Module):
    """LAM (HAN, ref. [20]; CRNet Sec. 4.2.1.1): ``F_j + alpha * sum_i w_ji F_i``.

    Input and output: ``B x n x C x H x W``. ``alpha`` (``self.scale``) starts at 0, so the
    module starts as the identity. See the module docstring for ``energy``.
    """

    def __init__(self, energy: str = "han-code"):
        super().__init__()
        if energy not in ("han-code", "paper"):
            raise ValueError(f"unknown LAM energy {energy!r}; use 'han-code' or 'paper'")
        self.energy = energy
        self.scale = nn.Parameter(torch.zeros(1))

    def weights(self, stack: torch.Tensor) -> torch.Tensor:
        """The ``B x n x n`` inter-layer weights ``w`` (rows sum to 1)."""
        return self._weights(stack.flatten(2).float())

    def _weights(self, x: torch.Tensor) -> torch.Tensor:
        e = torch.bmm(x, x.transpose(1, 2))
        if self.energy == "han-code":
            e = e.amax(dim=-1, keepdim=True) - e
        return torch.softmax(e, dim=-1)

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        x = stack.flatten(2).float()
        attended = torch.bmm(self._weights(x), x).view_as(stack).to(stack.dtype)
        return stack + self.scale * attended


class LMRG(nn.Module):
    """One layer-wise masked recurrent group (Sec. 4.2.1.1, Fig. 3); see the module docstring.

    ``forward(low, start)`` runs ``recurrences`` steps from the estimate ``start`` and returns the
    last estimate.
    """

    def __init__(
        self,
        *,
        width: int = 32,
        blocks: int = 5,
        recurrences: int = 2,
        masked: bool = True,
        layer_attention: bool = True,
        lam_energy: str = "han-code",
    ):
        super().__init__()
        if min(width, blocks, recurrences) < 1:
            raise ValueError("width, blocks and recurrences must be >= 1")
        self.recurrences = recurrences
        self.head = MaskedConv(6, width, masked=masked)
        self.memory = ConvMemory(width)
        self.body = nn.ModuleList(MaskedResidualBlock(width, masked=masked) for _ in range(blocks))
        self.lam = LayerAttention(lam_energy) if layer_attention else None
        self.fuse = _conv(blocks * width, width) if layer_attention else None
        self.tail = MaskedConv(width, 3, masked=masked, act="identity")

    def step(
        self,
        low: torch.Tensor,
        prev: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One recurrence: ``x_t = tail(LAM(MRBs(memory(head(cat(I, x_{t-1}))))) + h) + I``."""
        h, state = self.memory(self.head(torch.cat([low, prev], dim=1)), state)
        f = h
        feats = []
        for block in self.body:
            f = block(f)
            feats.append(f)
        if self.lam is not None:
            stacked = self.lam(torch.stack(feats, dim=1))
            f = self.fuse(stacked.flatten(1, 2))
        return self.tail(f + h) + low, state

    def forward(self, low: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        x, state = start, None
        for _ in range(self.recurrences):
            x, state = self.step(low, x, state)
        return x


class CRNet(nn.Module):
    """CRNet: ``groups`` LMRGs in a chain (Sec. 4.2.1.1, Fig. 2); see the module docstring.

    ``forward(low)`` returns ``(final, [H_1, ..., H_{N-1}])``.
    """

    def __init__(
        self,
        *,
        width: int = 32,
        groups: int = 4,
        recurrences: int = 2,
        blocks: int = 5,
        masked: bool = True,
        layer_attention: bool = True,
        lam_energy: str = "han-code",
    ):
        super().__init__()
        if groups < 1:
            raise ValueError("groups must be >= 1")
        self.groups = nn.ModuleList(
            LMRG(
                width=width,
                blocks=blocks,
                recurrences=recurrences,
                masked=masked,
                layer_attention=layer_attention,
                lam_energy=lam_energy,
            )
            for _ in range(groups)
        )

    def forward(self, low: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = low
        outputs = []
        for group in self.groups:
            x = group(low, x)
            outputs.append(x)
        return outputs[-1], outputs[:-1]


ARCH_KEYS = ("width", "groups", "recurrences", "blocks", "masked_conv", "layer_attention")


def build_crnet(config: dict) -> CRNet:
    """CRNet from a method config (keys ``width``, ``groups``, ``recurrences``, ``blocks``,
    ``masked_conv``, ``layer_attention``, ``lam_energy``)."""
    return CRNet(
        width=int(config["width"]),
        groups=int(config["groups"]),
        recurrences=int(config["recurrences"]),
        blocks=int(config["blocks"]),
        masked=bool(config["masked_conv"]),
        layer_attention=bool(config["layer_attention"]),
        lam_energy=str(config["lam_energy"]),
    )
