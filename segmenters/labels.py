"""The label sets and file names the segmenters plugin registers, without torch.

Registering the segmenters (which every command that loads plugins does, ``llbench --help``
included) reads only these; the networks in :mod:`.tiny` and :mod:`.hrnet` import torch and are
imported when a segmenter is built or its weights are checked.
"""

from __future__ import annotations

TINY_CLASSES: tuple[str, ...] = ("background", "disc", "box", "triangle", "bar")

CHECKPOINT = "hrnet_w48_pascal_context_cls59_480x480.pth"
SOURCE = "https://github.com/HRNet/HRNet-Semantic-Segmentation (branch pytorch-v1.1, README: PASCAL-Context, HRNetV2-W48, 59 classes)"

#: The 59 PASCAL-Context classes in the label order of the official ``pascal_ctx.py``.
PASCAL_CONTEXT_59: tuple[str, ...] = (
    "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book",
    "bottle", "building", "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth",
    "computer", "cow", "cup", "curtain", "dog", "door", "fence", "floor", "flower", "food",
    "grass", "ground", "horse", "keyboard", "light", "motorbike", "mountain", "mouse", "person",
    "plate", "platform", "pottedplant", "road", "rock", "sheep", "shelves", "sidewalk", "sign",
    "sky", "snow", "sofa", "table", "track", "train", "tree", "truck", "tvmonitor", "wall",
    "water", "window", "wood",
)  # fmt: skip
