"""SGZ's unsupervised semantic segmentation network (USS, Sec. 3.3): an FPN over ResNet-50.

Bottom-up pathway: ResNet-50 with ImageNet weights; its stages ``layer1`` .. ``layer4`` give
``c2`` .. ``c5`` (strides 4 to 32). Top-down pathway, as the official ``modeling/fpn.py``
builds it: ``toplayer`` (1x1, 2048 -> 256) on ``c5``; for ``c4``, ``c3``, ``c2`` a lateral 1x1
convolution (``latlayer1..3``) added to the bilinearly upsampled coarser level; two 3x3
"smooth" convolutions per level (256 -> 256 -> 128, ``smooth{k}_1``, ``smooth{k}_2``); the four
levels upsampled to ``c2``'s size, concatenated (512 channels) and classified by a 3x3
convolution into 21 classes (VOC's count, the official default). The paper's prose says each
top-down block *concatenates* the upsampled map with the lateral one; the code adds them, which
we follow. The top-down weights are drawn from N(0, 0.01) with zero biases (the paper's
"Gaussian initialization", Table 4), never trained: the whole network is frozen and only
provides the label-free focal loss (Eq. 6) on the enhanced image.

Quirks of the official code kept by default: the enhanced image enters ResNet-50 without
ImageNet mean/std normalization, and the segmentation network is never switched to eval mode,
so its batch-norm layers use the statistics of the current batch (``uss.batchnorm = "batch"``;
``"running"`` uses the stored ImageNet statistics instead). Running statistics are never
updated here (momentum 0), so the network stays frozen.

The ResNet-50 ImageNet weights come from the torch hub cache (``torch.hub.get_dir()``, i.e.
``$TORCH_HOME/hub/checkpoints``), where torchvision stores them; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from llbench._torchvision import import_torchvision
from llbench.errors import WeightsError

# torchvision's ImageNet ResNet-50 files, in order of preference: IMAGENET1K_V1 (current name),
# the same weights under their pre-0.13 model-zoo name (what 2021 code such as SGZ loaded with
# ``resnet50(pretrained=True)``), then IMAGENET1K_V2.
RESNET50_FILES = ("resnet50-0676ba61.pth", "resnet50-19c8e357.pth", "resnet50-11ad3fa6.pth")
RESNET50_URL = "https://download.pytorch.org/models/resnet50-0676ba61.pth"


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_resnet50_weights(explicit: str | Path | None = None) -> Path | None:
    """The ResNet-50 ImageNet weights file to use, or None when none is present.

    An ``explicit`` path must exist (else :class:`WeightsError`); otherwise the torch hub
    cache is searched for :data:`RESNET50_FILES`.
    """
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise WeightsError(f"uss.backbone_file {p} does not exist")
        return p
    folder = hub_checkpoint_dir()
    for name in RESNET50_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


class FPNHead(nn.Module):
    """The top-down pathway and classifier (official layer names)."""

    def __init__(self, num_classes: int = 21):
        super().__init__()
        self.toplayer = nn.Conv2d(2048, 256, kernel_size=1)
        for k in range(1, 5):
            setattr(self, f"smooth{k}_1", nn.Conv2d(256, 256, kernel_size=3, padding=1))
            setattr(self, f"smooth{k}_2", nn.Conv2d(256, 128, kernel_size=3, padding=1))
        self.latlayer1 = nn.Conv2d(1024, 256, kernel_size=1)
        self.latlayer2 = nn.Conv2d(512, 256, kernel_size=1)
        self.latlayer3 = nn.Conv2d(256, 256, kernel_size=1)
        self.classify = nn.Conv2d(128 * 4, num_classes, kernel_size=3, padding=1)

    def gaussian_init(self, std: float = 0.01) -> None:
        with torch.no_grad():
            for m in self.children():
                m.weight.normal_(0.0, std)
                m.bias.zero_()

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, c2, c3, c4, c5) -> torch.Tensor:
        p5 = self.toplayer(c5)
        lat4 = self.latlayer1(c4)
        p4 = self._up(p5, lat4) + lat4
        lat3 = self.latlayer2(c3)
        p3 = self._up(p4, lat3) + lat3
        lat2 = self.latlayer3(c2)
        p2 = self._up(p3, lat2) + lat2
        p5 = self.smooth1_2(self.smooth1_1(p5))
        p4 = self.smooth2_2(self.smooth2_1(p4))
        p3 = self.smooth3_2(self.smooth3_1(p3))
        p2 = self.smooth4_2(self.smooth4_1(p2))
        merged = torch.cat([self._up(p5, p2), self._up(p4, p2), self._up(p3, p2), p2], dim=1)
        return self.classify(merged)


class USS(nn.Module):
    """Frozen FPN segmenter; ``forward`` returns class logits at 1/4 of the input size."""

    def __init__(
        self,
        num_classes: int = 21,
        *,
        top_down_std: float = 0.01,
        backbone_state: dict[str, torch.Tensor] | None = None,
        batchnorm: str = "batch",
    ):
        super().__init__()
        if batchnorm not in ("batch", "running"):
            raise ValueError(f"uss.batchnorm must be 'batch' or 'running', got {batchnorm!r}")
        tv = import_torchvision()
        self.resnet = tv.models.resnet50(weights=None)
        if backbone_state is not None:
            try:
                self.resnet.load_state_dict(backbone_state)
            except RuntimeError as exc:
                raise WeightsError(
                    f"ResNet-50 weights do not fit torchvision's resnet50: {exc}"
                ) from exc
        self.fpn = FPNHead(num_classes)
        self.fpn.gaussian_init(top_down_std)
        self.batchnorm = batchnorm
        for p in self.parameters():
            p.requires_grad_(False)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.0  # never update the stored statistics
        self.train(batchnorm == "batch")

    def train(self, mode: bool = True) -> USS:
        # Batch-norm behaviour is fixed by ``batchnorm``; callers' train()/eval() don't change it.
        return super().train(self.batchnorm == "batch")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resnet
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        c2 = r.layer1(x)
        c3 = r.layer2(c2)
        c4 = r.layer3(c3)
        c5 = r.layer4(c4)
        return self.fpn(c2, c3, c4, c5)
