"""``scenes``: procedurally generated scenes with per-pixel labels, in normal light and darkened.

A segmentation benchmark that needs no download, so the downstream protocol of SLLEN (Sec.
III-F: darken labelled images, enhance, segment, score mIoU) and SGZ (Sec. 4.5, Table 8: mIoU and
mPA on DarkCityScape) runs and is tested anywhere. Real labelled data (darkened VOC) works the same
way when present.

Construction of one image (``H x W``, default 128 x 160), all from
``numpy.random.default_rng([seed, split_id, index])``:

* Background (label 0): a smooth colour field (two random colours blended along a random
  direction) plus low-frequency shading and fine grain, so that it is textured, not flat.
* Two to five objects painted in order (later ones occlude earlier ones), each of a random class
  among ``disc``, ``box`` (axis-aligned rectangle), ``triangle`` and ``bar`` (long thin rotated
  rectangle), with a random colour kept at least 0.25 (on a 0-1 scale, mean over RGB) away
  from the background under it, and a class texture: disc - dots, box - stripes, triangle -
  checks, bar - plain with a shading ramp. The class is therefore given by shape and texture,
  not by colour, which darkening and sensor noise obscure.
* Mask: the label of each pixel; pixels whose 3 x 3 neighbourhood holds two labels get 255
  (ignored by mIoU/mPA), as PASCAL VOC marks its object borders.
* Low-light version: :func:`llbench.datasets.lowlight_model.darken` with its default ranges
  (sRGB decoding, 2-4.6 stops of exposure loss, gamma 1-1.4 in linear light, Poisson-Gaussian
  noise, sRGB encoding, 8-bit); the drawn parameters go to ``params.json``.

Files: ``<data root>/scenes/{train,test}/{low,high,mask}/NNNN.png`` (masks are 8-bit greyscale
PNGs of label values). 48 training and 16 test scenes by default; generation takes about a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from llbench.api import DatasetSpec, hookimpl
from llbench.api.datasets import Dataset, DatasetStatus, Sample, image_files
from llbench.datasets.lowlight_model import darken_with_params
from llbench.errors import DatasetError
from llbench.io.images import write_png

VERSION = "1"
SEED = 20240917
CLASSES: tuple[str, ...] = ("background", "disc", "box", "triangle", "bar")
IGNORE = 255
SPLIT_IDS = {"train": 0, "test": 1}


@dataclass(frozen=True)
class ScenesConfig:
    """What determines the generated files (hashed into the folder's ``VERSION``)."""

    height: int = 128
    width: int = 160
    n_train: int = 48
    n_test: int = 16
    seed: int = SEED

    def counts(self) -> dict[str, int]:
        return {"train": self.n_train, "test": self.n_test}

    def tag(self) -> str:
        blob = json.dumps({"version": VERSION, **asdict(self)}, sort_keys=True)
        return f"{VERSION}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


# -- drawing --------------------------------------------------------------------------------------
def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    a, b = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
    theta = rng.uniform(0, 2 * np.pi)
    t = np.cos(theta) * xx / w + np.sin(theta) * yy / h
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    img = a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]
    fx, fy, ph = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 2 * np.pi)
    shade = 0.08 * np.sin(2 * np.pi * (fx * xx / w + fy * yy / h) + ph)
    grain = rng.normal(0, 0.03, (h, w))
    return img + (shade + grain)[..., None]


def _shape_mask(cls: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    s = min(h, w)
    cy, cx = rng.uniform(0.15 * h, 0.85 * h), rng.uniform(0.15 * w, 0.85 * w)
    if cls == "disc":
        r = rng.uniform(0.1, 0.22) * s
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if cls == "box":
        hh, hw = rng.uniform(0.08, 0.2) * s, rng.uniform(0.08, 0.2) * s
        return (np.abs(yy - cy) <= hh) & (np.abs(xx - cx) <= hw)
    if cls == "triangle":
        r = rng.uniform(0.14, 0.28) * s
        phi = rng.uniform(0, 2 * np.pi)
        pts = [
            (cy + r * np.sin(phi + k * 2 * np.pi / 3), cx + r * np.cos(phi + k * 2 * np.pi / 3))
            for k in range(3)
        ]
        inside = np.ones((h, w), bool)
        sign = None
        for (y0, x0), (y1, x1) in zip(pts, pts[1:] + pts[:1], strict=True):
            cross = (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0)
            side = cross >= 0
            if sign is None:
                sign = side
            inside &= side == sign
        return inside
    if cls == "bar":
        length, half = rng.uniform(0.35, 0.6) * s, rng.uniform(0.03, 0.06) * s
        phi = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(phi) + (yy - cy) * np.sin(phi)
        v = -(xx - cx) * np.sin(phi) + (yy - cy) * np.cos(phi)
        return (np.abs(u) <= length / 2) & (np.abs(v) <= half)
    raise ValueError(cls)


def _texture(cls: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    period = rng.uniform(5, 9)
    if cls == "disc":  # dots
        d = (np.mod(xx, period) - period / 2) ** 2 + (np.mod(yy, period) - period / 2) ** 2
        return np.where(d <= (period / 4) ** 2, -0.22, 0.05)
    if cls == "box":  # stripes
        phi = rng.uniform(0, np.pi)
        return 0.15 * np.sign(np.sin(2 * np.pi * (xx * np.cos(phi) + yy * np.sin(phi)) / period))
    if cls == "triangle":  # checks
        return 0.15 * np.where((np.floor(xx / period) + np.floor(yy / period)) % 2 == 0, 1, -1)
    if cls == "bar":  # plain with a ramp
        return 0.1 * (xx / w - 0.5)
    raise ValueError(cls)


def _boundary(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 3 x 3 neighbourhood holds more than one label."""
    p = np.pad(labels, 1, mode="edge")
    h, w = labels.shape
    edge = np.zeros((h, w), bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            edge |= p[dy : dy + h, dx : dx + w] != labels
    return edge


def render_scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """One normal-light scene (``H x W x 3`` uint8) and its mask (``H x W`` uint8)."""
    img = _background(rng, h, w)
    labels = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        c = int(rng.integers(1, len(CLASSES)))
        name = CLASSES[c]
        m = _shape_mask(name, rng, h, w)
        if m.sum() < 16:
            continue
        under = img[m].mean(axis=0)
        for _try in range(20):  # a colour that stands out from what it covers
            color = rng.uniform(0.05, 0.95, 3)
            if np.abs(color - under).mean() >= 0.25:
                break
        obj = color[None, None] + _texture(name, rng, h, w)[..., None]
        img[m] = obj[m]
        labels[m] = c
    img = np.clip(np.rint(np.clip(img, 0, 1) * 255), 0, 255).astype(np.uint8)
    mask = labels.copy()
    mask[_boundary(labels)] = IGNORE
    return img, mask


def generate(root: Path, config: ScenesConfig) -> None:
    """Write the dataset into ``root`` atomically (a temporary folder renamed at the end)."""
    root = Path(root)
    tmp = root.parent / f".{root.name}.{uuid.uuid4().hex[:8]}.tmp"
    params: dict[str, dict] = {}
    for split, n in config.counts().items():
        for i in range(n):
            rng = np.random.default_rng([config.seed, SPLIT_IDS[split], i])
            high, mask = render_scene(rng, config.height, config.width)
            low, p = darken_with_params(high, rng)
            key = f"{i:04d}"
            write_png(tmp / split / "high" / f"{key}.png", high)
            write_png(tmp / split / "low" / f"{key}.png", low)
            _write_mask(tmp / split / "mask" / f"{key}.png", mask)
            params[f"{split}/{key}"] = p.as_dict()
    (tmp / "params.json").write_text(json.dumps(params, indent=1, sort_keys=True))
    (tmp / "classes.json").write_text(json.dumps(list(CLASSES)))
    (tmp / "VERSION").write_text(config.tag())
    try:
        os.replace(tmp, root)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished first: keep theirs
        if not (root / "VERSION").is_file():
            raise


def _write_mask(path: Path, mask: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(mask, mode="L").save(tmp, format="PNG")
    os.replace(tmp, path)


class ScenesDataset(Dataset):
    """See the module docstring. ``classes`` lists the label names (index = label value)."""

    name = "scenes"
    paired = True
    splits = ("train", "test")
    classes = CLASSES
    ignore_index = IGNORE

    def __init__(self, root: Path, config: ScenesConfig | None = None):
        super().__init__(root)
        self.config = config or ScenesConfig()

    def prepare(self) -> None:
        version = self.root / "VERSION"
        if version.is_file() and version.read_text().strip() == self.config.tag():
            return
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        generate(self.root, self.config)

    def samples(self, split: str) -> list[Sample]:
        if split not in self.splits:
            raise DatasetError(f"scenes has no split {split!r}; splits: {', '.join(self.splits)}")
        if not (self.root / "VERSION").is_file():
            raise DatasetError(f"{self.root} is not generated yet (it is made on first use)")
        d = self.root / split
        lows, highs, masks = (image_files(d / k) for k in ("low", "high", "mask"))
        by = [{p.stem: p for p in files} for files in (lows, highs, masks)]
        if not (by[0].keys() == by[1].keys() == by[2].keys()):
            raise DatasetError(
                f"{d}: low, high and mask files do not match; delete the folder "
                "to generate it again"
            )
        return [Sample(k, by[0][k], by[1][k], by[2][k]) for k in sorted(by[0])]

    def status(self) -> DatasetStatus:
        if not (self.root / "VERSION").is_file():
            return DatasetStatus("absent", f"generated on first use into {self.root}")
        return super().status()


@hookimpl
def register_datasets(register):
    register(
        DatasetSpec(
            name="scenes",
            build=lambda root: ScenesDataset(Path(root) / "scenes"),
            summary="Generated textured shapes with per-pixel labels (5 classes), normal-light and "
            "darkened (48 train / 16 test, 128x160), for mIoU/mPA in the dark.",
            paired=True,
            masks=True,
            source="generated procedurally (no download)",
            version=VERSION,
        )
    )
