"""``hrnet-w48-pascal-context``: HRNetV2-W48 trained on PASCAL-Context (59 classes).

The semantic knowledge bank of SKF (Wu et al., CVPR 2023, Sec. 3.2): the segmentation HRNetV2
(Sun et al., "High-Resolution Representations for Labeling Pixels and Regions", 2019;
Wang et al., TPAMI 2020) released by the HRNet authors as
``hrnet_w48_pascal_context_cls59_480x480.pth`` (github.com/HRNet/HRNet-Semantic-Segmentation,
branch pytorch-v1.1, config ``seg_hrnet_w48_cls59_480x480_sgd_lr4e-3_wd1e-4_bs_16_epoch200``;
PASCAL-Context val 54.5 mIoU (59 classes) as the authors report).

Architecture (``lib/models/seg_hrnet.py`` of that repository, rebuilt here with its parameter
names so the checkpoint loads directly): stem of two stride-2 3x3 convolutions (64 channels),
stage 1 of four bottlenecks (256 channels), then stages 2, 3, 4 with 1, 4 and 3 multi-resolution
modules of four basic blocks per branch, widths 48, 96, 192, 384 at strides 4, 8, 16, 32; each
module fuses all branches (strided 3x3 convolutions downwards, 1x1 convolution then bilinear
resizing to the exact size upwards, ``align_corners=True`` as the config's default). Head: the
four branch outputs resized to stride 4 and concatenated (720 channels), 1x1 conv + BN + ReLU,
1x1 conv to 59 classes; logits resized (bilinear) to the input size. 65.9 M parameters.

timm's ``hrnet_w48`` is the classification HRNet: its fusion upsamples by a fixed factor with
nearest neighbours, which is not the segmentation network (bilinear to the exact size) and fails
on sizes not divisible by 32 (600 x 400 gives 19 x 13 at stride 32 and 38 x 25 at stride 16), so
the network is implemented here.

Checkpoint: read from ``$TORCH_HOME/hub/checkpoints/hrnet_w48_pascal_context_cls59_480x480.pth``
(``torch.load(weights_only=True)``). The official file holds the training wrapper's state dict
(``FullModel``): keys ``model.<name>`` plus, for losses with class weights, ``loss.*``; the
official ``tools/test.py`` strips the ``model.`` prefix. :func:`map_official_keys` does the same
(it also accepts ``module.`` prefixes and unprefixed keys) and the load is then strict. Without the
file the segmenter is listed as unavailable with what to place where; the authors publish no
sha256, so the hash of the file used is recorded (``info["sha256"]``).

Preprocessing: the official protocol (``lib/datasets/base_dataset.py``): RGB in [0, 1]
normalised with the ImageNet mean and std; no resizing (the network accepts any size). SKF's
authors feed raw [0, 1] RGB to it (``hrseg_model.py``); llbench keeps the protocol the network
was trained with (``normalize=False`` reproduces the authors' input).

``segment()`` returns softmax probabilities and logits at the input size and the four stage-4
branch outputs (48 @ 1/4, 96 @ 1/8, 192 @ 1/16, 384 @ 1/32).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from llbench.api import Segmentation, Segmenter
from llbench.errors import WeightsError
from llbench.segmenters import labels

CHECKPOINT, SOURCE = labels.CHECKPOINT, labels.SOURCE
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ALIGN_CORNERS = True
WIDTHS = (48, 96, 192, 384)

PASCAL_CONTEXT_59 = labels.PASCAL_CONTEXT_59  # the 59 classes, official label order


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, momentum=0.1)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, c: int, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, padding=1, bias=False)
        self.bn1 = _bn(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = _bn(c)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, c: int, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 1, bias=False)
        self.bn1 = _bn(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = _bn(c)
        self.conv3 = nn.Conv2d(c, 4 * c, 1, bias=False)
        self.bn3 = _bn(4 * c)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def _branch(block: type, cin: int, c: int, blocks: int) -> nn.Sequential:
    down = None
    if cin != c * block.expansion:
        down = nn.Sequential(
            nn.Conv2d(cin, c * block.expansion, 1, bias=False), _bn(c * block.expansion)
        )
    layers = [block(cin, c, down)] + [block(c * block.expansion, c) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class HRModule(nn.Module):
    """One multi-resolution module: parallel branches of basic blocks, then full fusion."""

    def __init__(self, widths: tuple[int, ...], blocks: int = 4):
        super().__init__()
        n = len(widths)
        self.branches = nn.ModuleList([_branch(BasicBlock, w, w, blocks) for w in widths])
        fuse = []
        for i in range(n):
            row: list[nn.Module | None] = []
            for j in range(n):
                if j > i:
                    row.append(
                        nn.Sequential(
                            nn.Conv2d(widths[j], widths[i], 1, bias=False), _bn(widths[i])
                        )
                    )
                elif j == i:
                    row.append(None)
                else:
                    steps = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        cout = widths[i] if last else widths[j]
                        seq = [nn.Conv2d(widths[j], cout, 3, 2, 1, bias=False), _bn(cout)]
                        if not last:
                            seq.append(nn.ReLU())
                        steps.append(nn.Sequential(*seq))
                    row.append(nn.Sequential(*steps))
            fuse.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [b(x) for b, x in zip(self.branches, xs, strict=True)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                z = layer(xs[j])
                if j > i:
                    z = F.interpolate(
                        z, size=xs[i].shape[-2:], mode="bilinear", align_corners=ALIGN_CORNERS
                    )
                y = y + z
            out.append(F.relu(y))
        return out


def _transition(prev: tuple[int, ...], cur: tuple[int, ...]) -> nn.ModuleList:
    layers: list[nn.Module | None] = []
    for i, c in enumerate(cur):
        if i < len(prev):
            same = prev[i] == c
            layers.append(
                None
                if same
                else nn.Sequential(nn.Conv2d(prev[i], c, 3, 1, 1, bias=False), _bn(c), nn.ReLU())
            )
        else:
            steps = []
            for j in range(i + 1 - len(prev)):
                cout = c if j == i - len(prev) else prev[-1]
                steps.append(
                    nn.Sequential(
                        nn.Conv2d(prev[-1], cout, 3, 2, 1, bias=False), _bn(cout), nn.ReLU()
                    )
                )
            layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class HRNetV2Seg(nn.Module):
    """HRNetV2-W48 segmentation network with the official parameter names."""

    def __init__(self, num_classes: int = 59, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = _bn(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = _bn(64)
        self.layer1 = _branch(Bottleneck, 64, 64, 4)
        self.transition1 = _transition((256,), widths[:2])
        self.stage2 = nn.Sequential(HRModule(widths[:2]))
        self.transition2 = _transition(widths[:2], widths[:3])
        self.stage3 = nn.Sequential(*[HRModule(widths[:3]) for _ in range(4)])
        self.transition3 = _transition(widths[:3], widths)
        self.stage4 = nn.Sequential(*[HRModule(widths) for _ in range(3)])
        total = sum(widths)
        self.last_layer = nn.Sequential(
            nn.Conv2d(total, total, 1), _bn(total), nn.ReLU(), nn.Conv2d(total, num_classes, 1)
        )

    @staticmethod
    def _transit(trans: nn.ModuleList, ys: list[torch.Tensor]) -> list[torch.Tensor]:
        return [ys[i] if t is None else t(ys[min(i, len(ys) - 1)]) for i, t in enumerate(trans)]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits at stride 4 and the four stage-4 branch outputs."""
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        ys = [self.layer1(x)]
        ys = self.stage2(self._transit(self.transition1, ys))
        ys = self.stage3(self._transit(self.transition2, ys))
        feats = self.stage4(self._transit(self.transition3, ys))
        size = feats[0].shape[-2:]
        up = [feats[0]] + [
            F.interpolate(f, size=size, mode="bilinear", align_corners=ALIGN_CORNERS)
            for f in feats[1:]
        ]
        return self.last_layer(torch.cat(up, 1)), feats


def map_official_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official ``FullModel`` keys (``model.conv1.weight``, ``loss.criterion.weight``) -> ours.

    ``module.`` (DataParallel) and ``model.`` prefixes are stripped; ``loss.*`` entries (the
    training criterion's class weights) are dropped, as the official test script does.
    """
    out = {}
    for key, value in state.items():
        k = key.removeprefix("module.")
        if k.startswith("loss."):
            continue
        out[k.removeprefix("model.")] = value
    return out


def checkpoint_path() -> Path:
    from llbench.io.weights import folder_path

    return folder_path("checkpoints") / CHECKPOINT


def unavailable() -> str | None:
    path = checkpoint_path()
    if path.is_file():
        return None
    return (
        f"missing weight file {CHECKPOINT}: place the HRNet authors' PASCAL-Context checkpoint "
        f"(HRNetV2-W48, 59 classes, 480x480; from {SOURCE}) at {path} "
        "(the folder is $TORCH_HOME/hub/checkpoints)"
    )


class HRNetSegmenter(Segmenter):
    """HRNetV2-W48 on PASCAL-Context as an llbench segmenter (see the module docstring)."""

    name = "hrnet-w48-pascal-context"
    classes = PASCAL_CONTEXT_59
    feature_strides = (4, 8, 16, 32)
    feature_channels = WIDTHS

    def __init__(
        self,
        device: torch.device | str = "cpu",
        checkpoint: Path | None = None,
        normalize: bool = True,
        net: HRNetV2Seg | None = None,
    ):
        super().__init__(device)
        self.normalize = bool(normalize)
        self.info: dict[str, str] = {}
        if net is None:
            path = Path(checkpoint) if checkpoint is not None else checkpoint_path()
            if not path.is_file():
                raise WeightsError(f"segmenter {self.name!r}: {unavailable() or path}")
            net = load_checkpoint(path)
            from llbench.io.hashing import sha256_file

            self.info = {"checkpoint": str(path), "sha256": sha256_file(path)}
        self.net = net.to(self.device).eval()

    def _forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = images.to(self.device, torch.float32)
        if self.normalize:
            mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        logits, feats = self.net(x)
        logits = F.interpolate(
            logits, size=images.shape[-2:], mode="bilinear", align_corners=ALIGN_CORNERS
        )
        return logits, feats

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self._forward(images)[0]

    def segment(self, images: torch.Tensor) -> Segmentation:
        logits, feats = self._forward(images)
        return Segmentation(
            logits=logits,
            probs=logits.softmax(dim=1),
            features=list(feats),
            strides=self.feature_strides,
        )


def load_checkpoint(path: Path, num_classes: int = len(PASCAL_CONTEXT_59)) -> HRNetV2Seg:
    """Build :class:`HRNetV2Seg` and load the official file strictly after key mapping."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise WeightsError(f"cannot read {path}: {exc}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path} does not hold a state dict")
    net = HRNetV2Seg(num_classes)
    state = map_official_keys(obj)
    ours = net.state_dict()
    state = {
        k: v for k, v in state.items() if not (k.endswith("num_batches_tracked") and k not in ours)
    }
    for k in ours:  # checkpoints saved before torch 0.4.1 lack the BN step counters
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = ours[k]
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    wrong = sorted(
        k for k in set(ours) & set(state) if tuple(ours[k].shape) != tuple(state[k].shape)
    )
    if missing or unexpected or wrong:
        raise WeightsError(
            f"{path} is not the official HRNetV2-W48 PASCAL-Context ({num_classes} classes) "
            f"checkpoint: {len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected "
            f"{unexpected[:3]}, {len(wrong)} of another shape {wrong[:3]}"
        )
    net.load_state_dict(state, strict=True)
    return net
