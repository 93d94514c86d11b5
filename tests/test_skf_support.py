"""Helpers for the SKF tests (no tests here): a small frozen segmenter with HRNet-like outputs,
paired files."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llbench.api import Segmentation, Segmenter
from llbench.api.datasets import Sample
from llbench.io.images import write_png


class StubSegmenter(Segmenter):
    """Deterministic small segmenter: logits from a 1x1 conv, features at strides 4 and 8 with
    HRNet's first two widths (48, 96) and ``classes`` classes (59 = PASCAL-Context)."""

    name = "stub-seg"

    def __init__(self, classes: int = 59, widths=(48, 96), seed: int = 0):
        super().__init__("cpu")
        self.classes = tuple(f"c{i}" for i in range(classes))
        self.feature_strides = (4, 8)
        self.feature_channels = tuple(widths)
        g = torch.Generator().manual_seed(seed)
        self.net = nn.ModuleDict(
            {
                "head": nn.Conv2d(3, classes, 1),
                "f4": nn.Conv2d(3, widths[0], 1),
                "f8": nn.Conv2d(3, widths[1], 1),
            }
        )
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def logits(self, images):
        return self.net["head"](images)

    def segment(self, images):
        logits = self.logits(images)
        f4 = self.net["f4"](F.avg_pool2d(images, 4, ceil_mode=True))
        f8 = self.net["f8"](F.avg_pool2d(images, 8, ceil_mode=True))
        return Segmentation(logits, logits.softmax(1), [f4, f8], strides=(4, 8))


def paired_samples(root, n=4, size=(24, 32), seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        high = rng.integers(40, 255, (*size, 3), dtype=np.uint8)
        low = (high * 0.2).astype(np.uint8)
        write_png(root / "high" / f"{i}.png", high)
        write_png(root / "low" / f"{i}.png", low)
        out.append(Sample(str(i), root / "low" / f"{i}.png", root / "high" / f"{i}.png"))
    return out
