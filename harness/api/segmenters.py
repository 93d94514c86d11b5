"""The segmenter contract: class scores, labels and, for frameworks that fuse semantics into an
enhancer (SKF, SLLEN), multi-scale features.

A segmenter turns images ``(N, 3, H, W)`` float in ``[0, 1]`` into class scores. ``predict`` gives
labels for the task metrics (mIoU, mPA); ``segment`` gives everything a semantic prior needs:
softmax probabilities, logits at input size and the backbone's intermediate feature maps, coarse
to fine strides declared by :attr:`Segmenter.feature_strides`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import torch


@dataclass
class Segmentation:
    """What :meth:`Segmenter.segment` returns for a batch.

    ``logits`` and ``probs``: ``(N, C, H, W)`` at the input size. ``features``: the backbone's
    feature maps, one per entry of :attr:`Segmenter.feature_strides` (empty when the segmenter
    exposes none); ``features[i]`` has spatial size ``ceil(H / stride_i)`` up to rounding of the
    backbone.
    """

    logits: torch.Tensor
    probs: torch.Tensor
    features: list[torch.Tensor] = field(default_factory=list)

    @property
    def labels(self) -> torch.Tensor:
        return self.logits.argmax(dim=1).to(torch.int64)


class Segmenter(abc.ABC):
    """Base class: ``classes`` (index = label) and ``predict(images) -> (N, H, W) int64``.

    Subclasses implement :meth:`logits`. Those whose backbone has useful intermediate features
    override :meth:`segment` to return them, set :attr:`feature_strides` and
    :attr:`feature_channels`. Gradients flow through :meth:`segment` (a frozen segmenter can
    still guide an enhancer's loss); :meth:`predict` runs without them.
    """

    name: str = ""
    classes: tuple[str, ...] = ()
    feature_strides: tuple[int, ...] = ()
    feature_channels: tuple[int, ...] = ()

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

    @abc.abstractmethod
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class scores ``(N, C, H, W)`` for images ``(N, 3, H, W)`` in [0, 1]."""

    def segment(self, images: torch.Tensor) -> Segmentation:
        """Logits, softmax probabilities and (where the segmenter has them) features."""
        logits = self.logits(images.to(self.device, torch.float32))
        return Segmentation(logits=logits, probs=logits.softmax(dim=1), features=[])

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() == 3:
            images = images.unsqueeze(0)
        with torch.inference_mode():
            out = self.logits(images.to(self.device, torch.float32))
            return out.argmax(dim=1).to(torch.int64)

    def modules(self) -> list[torch.nn.Module]:
        """The torch modules of the segmenter (to freeze them or count their parameters)."""
        net = getattr(self, "net", None)
        return [net] if isinstance(net, torch.nn.Module) else []
