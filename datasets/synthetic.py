"""``synthetic``: the embedded LOL-style dataset, built from scikit-image's sample photographs.

Nothing is downloaded: the photographs ship inside scikit-image. The dataset is generated once,
deterministically, into ``<data root>/synthetic/`` and read from there afterwards.

Construction
------------
* Sources. Training: ``rocket``, both views of ``stereo_motorcycle``, ``hubble_deep_field``,
  ``retina`` and ``immunohistochemistry``; test: ``astronaut``, ``chelsea`` and ``coffee``. The
  split is by source photograph, so no test content is seen in training.
* Crops. ``CROPS_PER_SOURCE`` crops of 240 x 320 (H x W, LOL's 2:3 aspect at 60 % of its size)
  per photograph: 24 training and 9 test pairs. Crop ``c`` first resizes the photograph (area
  averaging, aspect ratio kept) by ``ZOOMS[c]`` times the smallest scale at which a crop fits,
  then cuts the crop at a seeded position: crop 0 shows (nearly) the whole scene and later crops
  show ever closer details, so no two pairs are near-duplicates.
* Normal-light image: the crop, 8-bit sRGB.
* Low-light image: :func:`llbench.datasets.lowlight_model.darken` with its default parameter
  ranges, i.e. sRGB decoding to linear light, exposure scaling by 0.04-0.25 (2 to 4.6 stops) and a
  gamma of 1.0-1.4 in linear light, Poisson-Gaussian sensor noise (shot-noise gain 2e-4 to 2e-3,
  read noise 5e-4 to 4e-3 of full scale), clipping, sRGB encoding and 8-bit quantization. The
  drawn parameters of every image are saved in ``params.json``.
* Seeds. Image ``i`` of a split uses ``numpy.random.default_rng([SEED, split_id, i])`` for its
  crop position and darkening, so the files are bit-identical on every machine with the same
  scikit-image photographs and numpy version.

Two datasets are registered: ``synthetic`` (paired: ``train`` and ``test``) and
``synthetic-unpaired`` (the unpaired view HiLLIE-style methods train on: the training split's
low-light images of the first half of the crops with the normal-light images of the second
half, so no low image has its own reference; the test split has low-light images only).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from llbench.api import DatasetSpec, hookimpl
from llbench.api.datasets import Dataset, DatasetStatus, Sample, image_files, pair_by_stem
from llbench.datasets.lowlight_model import darken_with_params
from llbench.errors import DatasetError
from llbench.io.images import write_png

VERSION = "2"
SEED = 20240611
ZOOMS = (1.0, 1.6, 2.2, 2.8)
CROP = (240, 320)
CROPS_PER_SOURCE = {"train": 4, "test": 3}
SOURCES = {
    "train": [
        "rocket",
        "motorcycle_left",
        "motorcycle_right",
        "hubble_deep_field",
        "retina",
        "immunohistochemistry",
    ],
    "test": ["astronaut", "chelsea", "coffee"],
}
SPLIT_IDS = {"train": 0, "test": 1}


def _load_source(name: str) -> np.ndarray:
    from skimage import data

    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        img = left if name.endswith("left") else right
    else:
        img = getattr(data, name)()
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise DatasetError(
            f"scikit-image sample {name!r} is not 8-bit RGB ({img.dtype} {img.shape})"
        )
    return img


def _resize_for_crop(img: np.ndarray, zoom: float) -> np.ndarray:
    """Resize (aspect kept) to ``zoom`` times the smallest size that still holds a crop."""
    from PIL import Image

    h, w = img.shape[:2]
    scale = max(CROP[0] / h, CROP[1] / w) * zoom
    size = (max(CROP[1], round(w * scale)), max(CROP[0], round(h * scale)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BOX))


def generate(root: Path) -> None:
    """Write the dataset into ``root`` (atomically: a temporary folder renamed at the end)."""
    root = Path(root)
    tmp = root.parent / f".{root.name}.{uuid.uuid4().hex[:8]}.tmp"
    params: dict[str, dict] = {}
    for split, sources in SOURCES.items():
        index = 0
        for source in sources:
            photo = _load_source(source)
            for c in range(CROPS_PER_SOURCE[split]):
                img = _resize_for_crop(photo, ZOOMS[c])
                h, w = img.shape[:2]
                rng = np.random.default_rng([SEED, SPLIT_IDS[split], index])
                y = int(rng.integers(0, h - CROP[0] + 1))
                x = int(rng.integers(0, w - CROP[1] + 1))
                high = np.ascontiguousarray(img[y : y + CROP[0], x : x + CROP[1]])
                low, p = darken_with_params(high, rng)
                key = f"{source}_{c}"
                write_png(tmp / split / "high" / f"{key}.png", high)
                write_png(tmp / split / "low" / f"{key}.png", low)
                params[f"{split}/{key}"] = {"zoom": ZOOMS[c], "crop_yx": [y, x], **p.as_dict()}
                index += 1
    (tmp / "params.json").write_text(json.dumps(params, indent=1, sort_keys=True))
    (tmp / "VERSION").write_text(VERSION)
    try:
        os.replace(tmp, root)
    except OSError:
        # another process finished first (the target exists and is not empty): keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not (root / "VERSION").is_file():
            raise


class SyntheticDataset(Dataset):
    """The paired view; see the module docstring."""

    name = "synthetic"
    paired = True
    splits = ("train", "test")

    def prepare(self) -> None:
        version = self.root / "VERSION"
        if version.is_file() and version.read_text().strip() == VERSION:
            return
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        generate(self.root)

    def _pairs(self, split: str) -> list[Sample]:
        if split not in self.splits:
            raise DatasetError(
                f"{self.name} has no split {split!r}; splits: {', '.join(self.splits)}"
            )
        if not (self.root / "VERSION").is_file():
            raise DatasetError(f"{self.root} is not generated yet (it is made on first use)")
        d = self.root / split
        return pair_by_stem(image_files(d / "low"), image_files(d / "high"), where=str(d))

    def samples(self, split: str) -> list[Sample]:
        return self._pairs(split)

    def status(self) -> DatasetStatus:
        if not (self.root / "VERSION").is_file():
            return DatasetStatus("absent", f"generated on first use into {self.root}")
        return super().status()


class SyntheticUnpaired(SyntheticDataset):
    """The unpaired view; see the module docstring. Shares the files of ``synthetic``."""

    name = "synthetic-unpaired"
    paired = False

    def samples(self, split: str) -> list[Sample]:
        pairs = self._pairs(split)
        if split == "test":
            return [Sample(s.key, s.low) for s in pairs]
        half = len(pairs) // 2
        lows = pairs[:half]
        highs = pairs[half : 2 * half]
        return [Sample(a.key, a.low, b.high) for a, b in zip(lows, highs, strict=True)]


@hookimpl
def register_datasets(register):
    register(
        DatasetSpec(
            name="synthetic",
            build=lambda root: SyntheticDataset(Path(root) / "synthetic"),
            summary="Embedded LOL-style pairs from scikit-image photographs, darkened by a "
            "physically plausible sensor model (24 train / 9 test, 240x320).",
            paired=True,
            source="generated from scikit-image sample data (no download)",
            version=VERSION,
        )
    )
    register(
        DatasetSpec(
            name="synthetic-unpaired",
            build=lambda root: SyntheticUnpaired(Path(root) / "synthetic"),
            summary="Unpaired view of `synthetic`: 12 low-light and 12 unrelated normal-light "
            "training images; test split without references.",
            paired=False,
            source="generated from scikit-image sample data (no download)",
            version=VERSION,
        )
    )
