"""``sllen-ssan``: the SS auxiliary network of a trained SLLEN as a segmenter (for ``miou``/``mpa``).

SSaN is the shared encoder plus SSaN's own stage, decoder and classifier (:mod:`.model`); the
segmenter loads exactly those tensors from a SLLEN file and ignores LLEmN's. Which file:

1. ``LLBENCH_SLLEN_WEIGHTS=/path/file.pt``: the weights ``llbench run --method sllen`` saved
   (``<home>/weights/sllen-<dataset>-<key>.pt``, listed by ``llbench runs``) or a training
   checkpoint (``<home>/train/<key>/checkpoint.pt``, usable mid-training);
2. otherwise the newest ``<home>/weights/sllen-*.pt`` of the llbench home the plugins were
   loaded for (``--home`` / ``LLBENCH_HOME`` / ``llbench.run(home=...)``).

Width, class count and whether SSaN has its own encoder (SLLEN-4) are read from the tensors'
shapes. Labels: VOC's 21 classes for a 21-class SSaN, the ``scenes`` classes for a 5-class one,
``class_<k>`` otherwise. Inputs of any size are padded to a multiple of 16 and cropped back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from llbench.api import Segmentation, Segmenter, load_state_dict_file
from llbench.errors import WeightsError

from .model import SLLENNet

ENV = "LLBENCH_SLLEN_WEIGHTS"


def find_weights(home: Path | None = None) -> Path | None:
    """The SLLEN file the segmenter uses (see the module docstring), or None."""
    explicit = os.environ.get(ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsError(f"{ENV}={explicit} does not exist")
        return path
    from llbench import paths

    folder = (home or paths.home()) / "weights"
    found = [p for p in folder.glob("sllen-*.pt") if p.is_file()] if folder.is_dir() else []
    return max(found, key=lambda p: (p.stat().st_mtime, p.name)) if found else None


def unavailable(home: Path | None = None) -> str | None:
    """None when a SLLEN file is found, else what to do."""
    try:
        path = find_weights(home)
    except WeightsError as exc:
        return str(exc)
    if path is not None:
        return None
    from llbench import paths

    folder = (home or paths.home()) / "weights"
    return (
        f"no trained SLLEN weights in {folder} (sllen-*.pt): train one with `llbench run "
        f"--method sllen --dataset lol` (or --preset quick on synthetic), or point {ENV} at a "
        "SLLEN weights file or training checkpoint"
    )


def class_names(n: int) -> tuple[str, ...]:
    from llbench.datasets.scenes import CLASSES as SCENES
    from llbench.segmenters import VOC_CLASSES

    for names in (VOC_CLASSES, SCENES):
        if len(names) == n:
            return tuple(names)
    return tuple(f"class_{k}" for k in range(n))


def ssan_from_state(state: Mapping[str, torch.Tensor], source: str = "") -> SLLENNet:
    """An SSaN-only :class:`SLLENNet` holding the SSaN tensors of a SLLEN state dict."""
    try:
        width = int(state["encoder.stage1.0.weight"].shape[0])
        classes = int(state["ssan.head.weight"].shape[0])
    except KeyError as exc:
        raise WeightsError(f"{source or 'the file'} is not a SLLEN state dict (no {exc})") from exc
    shared = "ssan.encoder.stage1.0.weight" not in state
    net = SLLENNet(width=width, num_classes=classes, shared_encoder=shared, with_llemn=False)
    wanted = {k: v for k, v in state.items() if not k.startswith("llemn.")}
    try:
        net.load_state_dict(wanted, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{source or 'the file'} does not fit SLLEN's SSaN: {exc}") from exc
    return net


class SSaNSegmenter(Segmenter):
    """A trained SLLEN's SSaN; ``features`` are ``D_S``'s maps at strides 16, 8 (``F_e``), 4,
    2, 1."""

    name = "sllen-ssan"
    feature_strides = (16, 8, 4, 2, 1)

    def __init__(self, net: SLLENNet, device: torch.device | str = "cpu", source: str = ""):
        super().__init__(device)
        self.net = net.to(self.device).eval()
        self.classes = class_names(net.num_classes)
        w = net.width
        self.feature_channels = (16 * w, 8 * w, 4 * w, 2 * w, w)
        self.source = source

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> SSaNSegmenter:
        state = load_state_dict_file(path)
        return cls(ssan_from_state(state, str(path)), device, str(path))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.segment(images.to(self.device, torch.float32))[0]

    def segment(self, images: torch.Tensor) -> Segmentation:
        logits, feats = self.net.segment(images.to(self.device, torch.float32))
        h, w = images.shape[-2:]
        feats = [
            f[..., : -(-h // s), : -(-w // s)]
            for f, s in zip(feats, self.feature_strides, strict=True)
        ]
        return Segmentation(logits=logits, probs=logits.softmax(dim=1), features=feats)


def build(device: torch.device | str = "cpu", home: Path | None = None) -> SSaNSegmenter:
    """The segmenter of the file :func:`find_weights` picks for the llbench ``home``."""
    path = find_weights(home)
    if path is None:
        raise WeightsError(unavailable(home) or "no SLLEN weights")
    return SSaNSegmenter.load(path, device)
