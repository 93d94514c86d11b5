"""SKF's semantic-guided adversarial (SA) loss (Wu et al., CVPR 2023, Sec. 3.4, Eq. 11-14).

Discriminator (the authors' ``DRBN_SKF/src/model/D_Net.py``, SRGAN-style): an input convolution,
``conv0`` for the global input (RGB concatenated with the ``K``-class softmax segmentation) or
``conv1`` for RGB patches, 3x3 to 64 channels + ReLU; then seven 3x3 conv + BN + ReLU layers
(64, 128, 128, 256, 256, 512, 512 channels, strides 2, 1, 2, 1, 2, 1, 2); a 1x1 convolution to
one channel (with the code's padding of 1), global average pooling and a sigmoid. One trunk
serves both the global and the local discriminator, as in the code. Least-squares GAN losses.

* Global (Eq. 13): ``D([I; S(I)])``, ``S`` the frozen segmenter's softmax map of that image.
* Local (Eq. 11-12): the candidate fake patches are the output masked by the soft masks (softmax
  maps) of the two classes with the largest total probability in the output's segmentation; the
  real ones are the reference masked the same way (the code; the paper crops real patches at
  random). Per image the *worst* candidate, the one with the larger loss for the network being
  updated, enters the loss.
* ``D loss = 0.9 (global fake + global real) / 2 + 0.1 (worst local fake + worst local real) / 2``
  (the code's ``lamda = 0.9``); generator loss ``0.9 global + 0.1 worst local`` (see below).

The authors' code has two bugs, fixed here:

1. ``max_2_seg = max_1_seg`` makes both mask tensors one object, so both candidates are masked
   by the second class: the local discriminator never sees the largest class. Here the two masks
   are separate tensors.
2. The discriminator's loss feeds RGB only (``conv1``), while the generator's loss feeds
   ``[I; S]`` (``conv0``): ``conv0`` is never trained and the global generator loss is scored by a
   random first layer. Here both losses use ``[I; S(I)]`` for the global term, so ``conv0`` is
   trained.

Also different from the code, on purpose: the code's generator loss has only the global term
while the paper's worst patch "updates both discriminator and generator" (Sec. 3.4); the local
term enters the generator loss here, weighted like the discriminator's (``local_in_generator``,
set it false for the code's form). The worst patch is chosen per image (the code compares batch
means). The code re-creates the discriminator every epoch; here it persists (and is saved in the
checkpoint).

``semantic = False`` is Table 4's "classic" adversarial loss (EnlightenGAN-style): the global
discriminator sees RGB only and the local one random crops of ``patch`` pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Discriminator(nn.Module):
    """The code's ``D_Net.Discriminator`` with ``num_classes`` segmentation channels."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv0 = nn.Conv2d(3 + num_classes, 64, 3, padding=1)
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1)
        spec = [(64, 64, 2), (64, 128, 1), (128, 128, 2), (128, 256, 1), (256, 256, 2)]
        spec += [(256, 512, 1), (512, 512, 2)]
        for i, (cin, cout, stride) in enumerate(spec, start=2):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, 3, stride=stride, padding=1))
            setattr(self, f"bn{i}", nn.BatchNorm2d(cout))
        self.conv9 = nn.Conv2d(512, 1, 1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores in (0, 1), shape (N, 1); 3 channels use ``conv1``, ``3 + K`` use ``conv0``."""
        x = F.relu(self.conv1(x) if x.shape[1] == 3 else self.conv0(x))
        for i in range(2, 9):
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
        x = self.conv9(x)
        return torch.sigmoid(x.mean(dim=(2, 3))).view(x.shape[0], -1)


def top2_masks(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft masks (N, 1, H, W) of the two classes with the largest summed probability."""
    total = probs.flatten(2).sum(dim=2)
    top = total.topk(2, dim=1).indices
    idx = torch.arange(probs.shape[0], device=probs.device)
    return probs[idx, top[:, 0]].unsqueeze(1), probs[idx, top[:, 1]].unsqueeze(1)


def lsgan(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Per-sample least-squares loss ``(D - target)^2`` (N,)."""
    target = torch.ones_like(scores) if real else torch.zeros_like(scores)
    return ((scores - target) ** 2).flatten(1).mean(dim=1)


def worst(losses: list[torch.Tensor]) -> torch.Tensor:
    """Per sample, the largest of the candidates' losses; mean over the batch."""
    return torch.stack(losses, dim=1).max(dim=1).values.mean()


def random_crops(x: torch.Tensor, size: int, generator: torch.Generator | None = None):
    """One random ``size`` x ``size`` crop per image (the classic local discriminator's input)."""
    n, _, h, w = x.shape
    size = min(size, h, w)
    tops = torch.randint(0, h - size + 1, (n,), generator=generator).tolist()
    lefts = torch.randint(0, w - size + 1, (n,), generator=generator).tolist()
    return torch.stack(
        [
            x[i, :, t : t + size, c : c + size]
            for i, (t, c) in enumerate(zip(tops, lefts, strict=True))
        ]
    )


class SALoss:
    """Global + worst-local least-squares adversarial loss (see the module docstring)."""

    def __init__(
        self,
        disc: Discriminator,
        *,
        global_weight: float = 0.9,
        local_weight: float = 0.1,
        semantic: bool = True,
        local_in_generator: bool = True,
        patch: int = 32,
    ):
        self.disc = disc
        self.gw, self.lw = float(global_weight), float(local_weight)
        self.semantic = bool(semantic)
        self.local_in_generator = bool(local_in_generator)
        self.patch = int(patch)

    def _global(self, image: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        return self.disc(torch.cat((image, probs), 1) if self.semantic else image)

    def _candidates(self, image: torch.Tensor, probs: torch.Tensor, gen=None) -> list[torch.Tensor]:
        if not self.semantic:
            return [random_crops(image, self.patch, gen)]
        m1, m2 = top2_masks(probs)
        return [image * m1, image * m2]

    def discriminator_loss(
        self,
        fake: torch.Tensor,
        real: torch.Tensor,
        fake_probs: torch.Tensor,
        real_probs: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """D's loss terms; ``fake`` detached from the generator. The local masks come from the
        output's segmentation for both fake and real (the code)."""
        g = (
            lsgan(self._global(fake, fake_probs), False).mean()
            + lsgan(self._global(real, real_probs), True).mean()
        ) / 2
        mask_probs = fake_probs
        lf = worst(
            [lsgan(self.disc(p), False) for p in self._candidates(fake, mask_probs, generator)]
        )
        lr = worst(
            [lsgan(self.disc(p), True) for p in self._candidates(real, mask_probs, generator)]
        )
        return {"d_global": self.gw * g, "d_local": self.lw * (lf + lr) / 2}

    def generator_loss(
        self, fake: torch.Tensor, fake_probs: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The generator's LSGAN loss (targets real), global plus the worst local patch."""
        g = lsgan(self._global(fake, fake_probs), True).mean()
        if not self.local_in_generator:
            return g
        local = worst(
            [lsgan(self.disc(p), True) for p in self._candidates(fake, fake_probs, generator)]
        )
        return self.gw * g + self.lw * local
