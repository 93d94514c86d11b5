"""The segmenter contract: class scores, labels and, for frameworks that fuse semantics into an
enhancer (SKF, SLLEN), multi-scale features.

A segmenter turns images ``(N, 3, H, W)`` float in ``[0, 1]`` into class scores. ``predict`` gives
labels for the task metrics (mIoU, mPA); ``segment`` gives everything a semantic prior needs:
softmax probabilities, logits at input size and the backbone's intermediate feature maps, one per
entry of :attr:`Segmenter.feature_strides` (in that order; consumers such as SKF pair them with
decoder sites by stride, so any order works as long as the two agree).

A segmenter gets features in one of two ways: override :meth:`Segmenter.segment`, or name the
submodules of ``self.net`` whose outputs are the features in :attr:`Segmenter.feature_modules`
(with their strides and channels); the default :meth:`Segmenter.segment` then records them with
forward hooks during the one forward pass of :meth:`Segmenter.logits`::

    class MySegmenter(Segmenter):
        feature_modules = ("encoder.stage1", "encoder.stage2")
        feature_strides = (4, 8)
        feature_channels = (64, 128)
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from llbench._lazy import torch  # imported on first use (light plugin loading)


@dataclass
class Segmentation:
    """What :meth:`Segmenter.segment` returns for a batch.

    ``logits`` and ``probs``: ``(N, C, H, W)`` at the input size. ``features``: the backbone's
    feature maps, one per entry of :attr:`Segmenter.feature_strides` (empty when the segmenter
    exposes none); ``features[i]`` has spatial size ``ceil(H / stride_i)`` up to rounding of the
    backbone. ``strides``: the stride of each feature when the segmenter fills it (the default
    :meth:`Segmenter.segment` does; empty means "see the segmenter's ``feature_strides``").
    """

    logits: torch.Tensor
    probs: torch.Tensor
    features: list[torch.Tensor] = field(default_factory=list)
    strides: tuple[int, ...] = ()

    def feature_at(self, stride: int) -> torch.Tensor:
        """The feature map of ``stride`` (``strides`` must be filled)."""
        for f, s in zip(self.features, self.strides, strict=False):
            if s == stride:
                return f
        raise KeyError(f"no feature of stride {stride} (strides: {self.strides})")

    @property
    def labels(self) -> torch.Tensor:
        return self.logits.argmax(dim=1).to(torch.int64)


class Segmenter(abc.ABC):
    """Base class: ``classes`` (index = label) and ``predict(images) -> (N, H, W) int64``.

    Subclasses implement :meth:`logits`. Those whose backbone has useful intermediate features
    either override :meth:`segment` to return them or list them in :attr:`feature_modules`; both
    set :attr:`feature_strides` and :attr:`feature_channels`. Gradients flow through
    :meth:`segment` (a frozen segmenter can still guide an enhancer's loss); :meth:`predict` runs
    without them.
    """

    name: str = ""
    classes: tuple[str, ...] = ()
    feature_strides: tuple[int, ...] = ()
    feature_channels: tuple[int, ...] = ()
    feature_modules: tuple[str, ...] = ()

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

    @abc.abstractmethod
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class scores ``(N, C, H, W)`` for images ``(N, 3, H, W)`` in [0, 1]."""

    def segment(self, images: torch.Tensor) -> Segmentation:
        """Logits, softmax probabilities and (where the segmenter has them) features.

        With :attr:`feature_modules` set, the outputs of those submodules of ``self.net`` are
        the features (recorded by forward hooks during :meth:`logits`)."""
        images = images.to(self.device, torch.float32)
        if not self.feature_modules:
            logits = self.logits(images)
            return Segmentation(logits=logits, probs=logits.softmax(dim=1), features=[])
        net = getattr(self, "net", None)
        if not isinstance(net, torch.nn.Module):
            raise TypeError(f"{type(self).__name__} lists feature_modules but has no self.net")
        found: dict[int, torch.Tensor] = {}
        handles = []
        for i, path in enumerate(self.feature_modules):

            def keep(_m, _i, out, i=i):
                found[i] = out

            handles.append(net.get_submodule(path).register_forward_hook(keep))
        try:
            logits = self.logits(images)
        finally:
            for h in handles:
                h.remove()
        feats = [found[i] for i in range(len(self.feature_modules))]
        return Segmentation(
            logits=logits,
            probs=logits.softmax(dim=1),
            features=feats,
            strides=tuple(self.feature_strides),
        )

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
