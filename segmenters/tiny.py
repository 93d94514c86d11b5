"""``tiny-seg``: a small encoder-decoder segmenter that llbench trains on the ``scenes`` dataset.

Architecture (U-Net-like, Ronneberger et al., MICCAI 2015, reduced): three encoder stages of two
3x3 convolutions with batch normalisation and ReLU (``w``, ``2w``, ``4w`` channels, ``w = 16``),
2x2 max pooling between them, two decoder stages that upsample bilinearly to the skip's size,
concatenate it and apply two 3x3 convolutions, and a 1x1 classifier: about 0.12 M parameters.
Any input size works (no padding to multiples of 4 is needed).

Training (:func:`train`): normal-light images and masks of the training split only (the role of a
segmenter pretrained on well-lit data), inputs scaled to [-1, 1], random 96 x 96 crops and
horizontal flips, pixel-wise cross-entropy ignoring label 255, Adam (lr 3e-3, cosine decay to 0),
batch 8, 200 steps, seeded (about 1-2 minutes on two CPU cores). On the ``scenes`` test split it
reaches about 77 % mIoU on the normal-light images and about 19 % on the darkened ones. The
checkpoint holds ``state_dict``, ``classes`` and the training ``config``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llbench.api import Segmenter
from llbench.errors import DatasetError, WeightsError
from llbench.segmenters.labels import TINY_CLASSES  # light: shared with registration

IGNORE = 255


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinySegNet(nn.Module):
    """See the module docstring."""

    def __init__(self, num_classes: int = len(TINY_CLASSES), width: int = 16):
        super().__init__()
        w = width
        self.enc1, self.enc2, self.enc3 = _block(3, w), _block(w, 2 * w), _block(2 * w, 4 * w)
        self.dec2, self.dec1 = _block(6 * w, 2 * w), _block(3 * w, w)
        self.head = nn.Conv2d(w, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * 2.0 - 1.0
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        d2 = F.interpolate(e3, size=e2.shape[-2:], mode="bilinear", align_corners=False)
        d2 = self.dec2(torch.cat([d2, e2], dim=1))
        d1 = F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False)
        d1 = self.dec1(torch.cat([d1, e1], dim=1))
        return self.head(d1)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 200
    batch_size: int = 8
    lr: float = 3e-3
    width: int = 16
    crop: int = 96
    seed: int = 0


def load_training_data(samples: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Normal-light images (N x 3 x H x W float) and masks (N x H x W int64) of ``samples``."""
    from llbench.io.images import read_image, read_mask, to_tensor

    if not samples:
        raise DatasetError("no training samples for tiny-seg")
    imgs, masks = [], []
    for s in samples:
        if s.high is None or s.mask is None:
            raise DatasetError(
                f"tiny-seg trains on normal-light images with masks; sample {s.key!r} lacks one"
            )
        imgs.append(to_tensor(read_image(s.high)))
        masks.append(torch.from_numpy(read_mask(s.mask)).unsqueeze(0))
    shapes = {tuple(t.shape[-2:]) for t in imgs}
    if len(shapes) != 1:
        raise DatasetError(f"tiny-seg training images must share one size, found {sorted(shapes)}")
    return torch.cat(imgs), torch.cat(masks)


def train(
    images: torch.Tensor,
    masks: torch.Tensor,
    config: TrainConfig = TrainConfig(),
    device: torch.device | str = "cpu",
    log: Callable[[int, Mapping[str, float]], None] | None = None,
) -> TinySegNet:
    """Train a :class:`TinySegNet` (see the module docstring); deterministic for a seed."""
    device = torch.device(device)
    labels = masks[masks != IGNORE]
    if labels.numel() and int(labels.max()) >= len(TINY_CLASSES):
        raise DatasetError(
            f"mask label {int(labels.max())} is outside tiny-seg's "
            f"{len(TINY_CLASSES)} classes {TINY_CLASSES}"
        )
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = TinySegNet(len(TINY_CLASSES), config.width).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps))
    )
    images, masks = images.to(device), masks.to(device)
    n = images.shape[0]
    net.train()
    for step in range(config.steps):
        idx = torch.from_numpy(rng.choice(n, size=min(config.batch_size, n), replace=False))
        x, y = images[idx.to(device)], masks[idx.to(device)]
        h, w = x.shape[-2:]
        ch, cw = min(config.crop, h), min(config.crop, w)
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        x, y = x[..., top : top + ch, left : left + cw], y[..., top : top + ch, left : left + cw]
        if rng.random() < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        loss = F.cross_entropy(net(x), y, ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log is not None:
            log(step, {"loss": loss.item()})
    return net.eval()


def save(
    net: TinySegNet, path: Path, config: TrainConfig, extra: Mapping[str, Any] | None = None
) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(
        {
            "state_dict": net.state_dict(),
            "classes": list(TINY_CLASSES),
            "config": asdict(config),
            **dict(extra or {}),
        },
        tmp,
    )
    os.replace(tmp, path)


def train_and_save(
    path: Path,
    device: torch.device | str = "cpu",
    dataset: str = "scenes",
    config: TrainConfig = TrainConfig(),
    data_root: Path | None = None,
    log: Callable[[int, Mapping[str, float]], None] | None = None,
) -> Path:
    """Train tiny-seg on ``dataset``'s training split (prepared if needed) and save it."""
    from llbench import paths
    from llbench.pluginhost.host import get_host

    dspec = get_host().dataset(dataset)
    if not dspec.masks:
        raise DatasetError(f"dataset {dataset!r} has no segmentation masks to train tiny-seg on")
    ds = dspec.build(data_root or paths.data_root())
    classes = tuple(getattr(ds, "classes", ()) or ())
    if classes != TINY_CLASSES:
        raise DatasetError(
            f"tiny-seg predicts {TINY_CLASSES}; dataset {dataset!r} labels "
            f"{classes or 'unknown classes'}"
        )
    ds.prepare()
    images, masks = load_training_data(ds.samples("train"))
    net = train(images, masks, config, device, log)
    save(net, path, config, {"dataset": dataset, "dataset_manifest": ds.manifest_hash("train")})
    return Path(path)


class TinySegSegmenter(Segmenter):
    """A trained :class:`TinySegNet` as a segmenter. Its encoder's second and third stages are
    its features (strides 2 and 4, ``2w`` and ``4w`` channels), so frameworks that fuse
    semantics at several decoder scales (SKF) get a feature per scale from it too."""

    name = "tiny-seg"
    classes = TINY_CLASSES
    feature_modules = ("enc2", "enc3")
    feature_strides = (2, 4)

    def __init__(
        self,
        net: TinySegNet,
        device: torch.device | str = "cpu",
        info: Mapping[str, Any] | None = None,
    ):
        super().__init__(device)
        self.net = net.to(self.device).eval()
        self.info = dict(info or {})
        width = net.enc1[0].out_channels
        self.feature_channels = (2 * width, 4 * width)

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "cpu") -> TinySegSegmenter:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            config = TrainConfig(**ckpt.get("config", {}))
            net = TinySegNet(len(ckpt["classes"]), config.width)
            net.load_state_dict(ckpt["state_dict"])
        except Exception as exc:  # noqa: BLE001
            raise WeightsError(
                f"{path} is not a tiny-seg checkpoint ({exc}); delete it and run "
                "`llbench segmenters train tiny-seg --dataset scenes`"
            ) from exc
        if tuple(ckpt["classes"]) != TINY_CLASSES:
            raise WeightsError(f"{path} predicts {ckpt['classes']}, not {TINY_CLASSES}")
        info = {k: v for k, v in ckpt.items() if k != "state_dict"}
        return cls(net, device, info)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)
