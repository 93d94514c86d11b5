"""Training batches for the zero-reference curve methods.

The official loaders of Zero-DCE, Zero-DCE++ and SGZ read every training image, resize it to a
fixed square (256 for Zero-DCE's code, 512 for Zero-DCE++ and SGZ) with PIL's antialiasing
filter (``Image.ANTIALIAS``, i.e. Lanczos), scale to [0, 1] and shuffle each epoch
(``DataLoader(shuffle=True)``, last batch kept). :class:`TrainImages` does the same, with the
order drawn from the run's seed and the epoch, so an interrupted run resumes on the very batch
it would have seen. An optional random square crop (``crop``) replaces or follows the resize
for datasets of large images; its position is drawn from the seed, epoch and step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from llbench.errors import DatasetError
from llbench.io.images import read_image


class TrainImages:
    """Deterministic, resumable batches of low-light training images.

    ``size > 0`` resizes each image to ``size x size``; ``crop > 0`` takes a random
    ``crop x crop`` window (after the resize, if any; smaller images are first resized so
    their short side is ``crop``). One of the two is needed so images stack into a batch.
    Decoded images are kept in memory (uint8) up to ``cache_mb``.
    """

    def __init__(
        self,
        files: Sequence[Path],
        *,
        size: int,
        crop: int = 0,
        batch_size: int,
        seed: int,
        cache_mb: float = 512.0,
    ):
        if not files:
            raise DatasetError("no training images: the dataset's train split is empty")
        if size <= 0 and crop <= 0:
            raise DatasetError("set train_size or train_crop so training images share one size")
        if batch_size < 1:
            raise DatasetError("batch_size must be >= 1")
        self.files = [Path(f) for f in files]
        self.size = int(size)
        self.crop = int(crop)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self._cache: dict[int, torch.Tensor] = {}
        self._cache_budget = int(cache_mb * 2**20)
        self._cache_used = 0

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.files) / self.batch_size)

    def order(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(len(self.files), generator=g).tolist()

    def batch(self, step: int) -> torch.Tensor:
        """The batch of global training step ``step`` (0-based): N x 3 x S x S float in [0, 1]."""
        epoch, pos = divmod(step, self.steps_per_epoch)
        idx = self.order(epoch)[pos * self.batch_size : (pos + 1) * self.batch_size]
        g = torch.Generator().manual_seed(self.seed * 7_919 + step)
        images = [self._crop(self._get(i), g) for i in idx]
        return torch.stack(images).float().div_(255.0)

    # -- internals -------------------------------------------------------------------------
    def _get(self, i: int) -> torch.Tensor:
        hit = self._cache.get(i)
        if hit is not None:
            return hit
        arr = read_image(self.files[i])
        im = None
        if self.size > 0:
            im = Image.fromarray(arr).resize((self.size, self.size), Image.LANCZOS)
        elif self.crop > 0 and min(arr.shape[:2]) < self.crop:
            h, w = arr.shape[:2]
            k = self.crop / min(h, w)
            im = Image.fromarray(arr).resize(
                (max(self.crop, round(w * k)), max(self.crop, round(h * k))), Image.LANCZOS
            )
        if im is not None:
            arr = np.array(im)
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()
        if self._cache_used + t.numel() <= self._cache_budget:
            self._cache[i] = t
            self._cache_used += t.numel()
        return t

    def _crop(self, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if self.crop <= 0:
            return t
        _, h, w = t.shape
        c = self.crop
        if h < c or w < c:  # only when size > 0 but smaller than crop
            raise DatasetError(f"train_crop {c} is larger than train_size {self.size}")
        top = int(torch.randint(0, h - c + 1, (1,), generator=g))
        left = int(torch.randint(0, w - c + 1, (1,), generator=g))
        return t[:, top : top + c, left : left + c]
