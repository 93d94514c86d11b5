"""Semantic segmenters for the task metrics (mIoU, mPA): plugin kind ``segmenters``.

A segmenter turns images (``N x 3 x H x W`` float in [0, 1]) into labels (``N x H x W`` int64) with
``predict``. Three are built in:

* ``deeplabv3-resnet50`` and ``fcn-resnet50``: torchvision's models with its official
  ``COCO_WITH_VOC_LABELS_V1`` weights (trained on the COCO subset of the 20 PASCAL VOC classes;
  21 labels with background). They are built with ``weights=None`` and the checkpoint is read
  from ``$TORCH_HOME/hub/checkpoints/`` with ``weights_only=True``; without it they are listed as
  unavailable with the file name and URL (``llbench weights import`` / ``fetch`` place it).
  Preprocessing is torchvision's preset for those weights: resize so the shorter side is 520 px
  (bilinear, antialiased), ImageNet mean/std; the ``out`` logits are resized back to the input
  size (bilinear) before the argmax.
* ``tiny-seg``: a small encoder-decoder llbench trains itself on the ``scenes`` dataset's
  normal-light training images (see :mod:`llbench.segmenters.tiny`), cached at
  ``<home>/weights/tiny-seg.pt``. Trained on normal light only, it plays the role of the
  pretrained segmenter of the downstream protocol (SLLEN Sec. III-F, SGZ Sec. 4.5): it has not
  seen dark images, so the enhancement has to bring them back to its domain. If the file is
  absent, the first use trains it (about a minute on two CPU cores) and caches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llbench._lazy import LazyModule, torch  # imported on first use (light plugin loading)
from llbench.api import Segmenter, SegmenterSpec, hookimpl
from llbench.errors import WeightsError
from llbench.io import weights as W

F = LazyModule("torch.nn.functional")

VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TorchvisionSegmenter(Segmenter):
    """torchvision's DeepLabV3 / FCN with ResNet-50 and the official VOC-label weights."""

    classes = VOC_CLASSES
    resize_short = 520

    def __init__(
        self, name: str, device: torch.device | str = "cpu", checkpoint: Path | None = None
    ):
        super().__init__(device)
        self.name = name
        from llbench._torchvision import import_torchvision

        tv = import_torchvision()
        ctor = {
            "deeplabv3-resnet50": tv.models.segmentation.deeplabv3_resnet50,
            "fcn-resnet50": tv.models.segmentation.fcn_resnet50,
        }[name]
        if checkpoint is None:
            checkpoint = next(iter(W.require(name).values()))
        net = ctor(weights=None, weights_backbone=None, num_classes=len(VOC_CLASSES), aux_loss=True)
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        except Exception as exc:  # noqa: BLE001 - unreadable file or wrong layout
            raise WeightsError(
                f"{checkpoint} is not torchvision's {name} checkpoint: {exc}. "
                f"Replace it (`llbench weights fetch {name}`)."
            ) from exc
        self.net = net.to(self.device).eval()
        self.checkpoint = checkpoint

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        scale = self.resize_short / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        x = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        out = self.net((x - mean) / std)["out"]
        return F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)


def tiny_seg_path(home: Path | None = None) -> Path:
    from llbench import paths

    return (home or paths.home()) / "weights" / "tiny-seg.pt"


def build_tiny_seg(
    device: torch.device | str = "cpu", home: Path | None = None, data_root: Path | None = None
) -> Segmenter:
    """Load ``<home>/weights/tiny-seg.pt``; train it on ``scenes`` (under ``data_root``) first
    if it is absent."""
    from llbench.segmenters import tiny

    path = tiny_seg_path(home)
    if not path.is_file():
        from llbench.cli.common import err_console

        err_console.print(
            f"tiny-seg is not trained yet: training it on `scenes` and caching it "
            f"at {path} (run `llbench segmenters train tiny-seg --dataset scenes` "
            "to do this ahead)"
        )
        tiny.train_and_save(path, device=device, data_root=data_root)
    return tiny.TinySegSegmenter.load(path, device)


def build_segmenter(
    name: str, device: torch.device | str = "cpu", options: Mapping[str, Any] | None = None
) -> Segmenter:
    """Build a registered segmenter by name (through the plugin host)."""
    from llbench.pluginhost.host import get_host

    spec = get_host().segmenter(name)
    missing = spec.available()
    if missing:
        raise WeightsError(f"segmenter {name!r} is unavailable here: {missing}")
    return spec.build(torch.device(device))


@hookimpl
def register_segmenters(register, home, data_root):
    from llbench.segmenters.labels import CHECKPOINT, PASCAL_CONTEXT_59, TINY_CLASSES

    for name, summary in [
        ("deeplabv3-resnet50", "torchvision DeepLabV3-ResNet50, COCO with VOC labels (21)"),
        ("fcn-resnet50", "torchvision FCN-ResNet50, COCO with VOC labels (21)"),
    ]:
        register(
            SegmenterSpec(
                name=name,
                build=lambda device, n=name: TorchvisionSegmenter(n, device),
                summary=summary,
                classes=VOC_CLASSES,
                available=lambda n=name: W.unavailable_message(n),
                version="tv-coco-voc-v1",
                weight_files=lambda n=name: [wf.path() for wf in W.files_for(n)],
            )
        )

    def hrnet_unavailable() -> str | None:
        from llbench.segmenters import hrnet

        return hrnet.unavailable()

    def hrnet_checkpoint():
        from llbench.segmenters import hrnet

        return hrnet.checkpoint_path()

    def hrnet_build(device):
        from llbench.segmenters import hrnet

        return hrnet.HRNetSegmenter(device)

    register(
        SegmenterSpec(
            name="hrnet-w48-pascal-context",
            build=hrnet_build,
            summary="HRNetV2-W48 (HRNet authors' release), PASCAL-Context (59); SKF's semantic "
            f"knowledge bank; needs {CHECKPOINT} in $TORCH_HOME/hub/checkpoints",
            classes=PASCAL_CONTEXT_59,
            available=hrnet_unavailable,
            version="hrnet-official-v1",
            weight_files=lambda: [hrnet_checkpoint()],
        )
    )
    register(
        SegmenterSpec(
            name="tiny-seg",
            build=lambda device: build_tiny_seg(device, home, data_root),
            summary="Small encoder-decoder trained by llbench on `scenes` normal-light images "
            "(5 labels); trained on first use and cached in <home>/weights/tiny-seg.pt",
            classes=TINY_CLASSES,
            version="1",
            weight_files=lambda: [tiny_seg_path(home)],
        )
    )
