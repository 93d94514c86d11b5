"""SICE Part 1: the multi-exposure training set of Zero-DCE, Zero-DCE++ and SGZ.

Cai, Gu and Zhang, "Learning a Deep Single Image Contrast Enhancer from Multi-Exposure Images",
TIP 2018. Part 1 holds 360 scenes, each a sequence of under- to over-exposed shots
(``Dataset_Part1/<scene>/<n>.JPG``) plus a reference per scene in ``Dataset_Part1/Label``.
Zero-DCE (Guo et al., CVPR 2020, Sec. 4) trains on the shots of Part 1 (not the labels), 2,422
of its 3,022 images resized to 512x512, and publishes that resized copy as ``train_data``.

Both layouts are read (the original one is preferred when both are there)::

    Dataset_Part1/<scene>/*.JPG      keys "<scene>/<stem>"; Dataset_Part1/Label is skipped
    train_data/*.jpg                 keys "<stem>" (Zero-DCE's resized copy)

SICE has only a training split: it is a zero-reference training set, with no test images.
"""

from __future__ import annotations

from llbench.api.datasets import Sample, image_files, natural_key
from llbench.errors import DatasetError

from .folders import FolderDataset
from .pairing import unique_by_stem
from .sources import Archive, Source

SICE_SOURCE = Source(
    page="https://github.com/csjcai/SICE",
    citation=(
        "Cai, Gu, Zhang, Learning a Deep Single Image Contrast Enhancer from Multi-Exposure "
        "Images, TIP 2018 (Part 1 as used by Zero-DCE, CVPR 2020)"
    ),
    archives=(
        Archive(
            "Dataset_Part1.rar",
            mirrors=(
                "Google Drive https://goo.gl/gTGfLk and BaiduYun https://pan.baidu.com/s/1kXotehL "
                "(SICE README, Part1: 360 Image Sequences)",
                "or Zero-DCE's resized train_data: Google Drive https://drive.google.com/file/d/"
                "1GAB3uGsmAyLgtDBDONbil08vVu5wJcG3/view, Baidu https://pan.baidu.com/s/"
                "11-u_FZkJ8OgbqcG6763XyA password 1234 (Zero-DCE README)",
            ),
        ),
    ),
    notes=(
        "Dataset_Part1.rar is a RAR archive, which llbench does not unpack: extract it with "
        "unrar or 7z into the dataset folder; Zero-DCE's train_data zip can go to --archive"
    ),
)


class SICE(FolderDataset):
    """Unpaired multi-exposure training images (see the module docstring)."""

    name = "sice"
    folder = "sice"
    paired = False
    splits = ("train",)
    source = SICE_SOURCE
    layout = "Dataset_Part1/<scene>/*.JPG (SICE Part 1) or train_data/*.jpg (Zero-DCE's copy)"
    markers = ("Dataset_Part1", "train_data")

    def _split_samples(self, split: str) -> list[Sample]:
        part1 = self.base / "Dataset_Part1"
        if part1.is_dir():
            out: list[Sample] = []
            scenes = [
                d
                for d in part1.iterdir()
                if d.is_dir() and d.name.lower() != "label" and not d.name.startswith(".")
            ]
            for scene in sorted(scenes, key=lambda p: natural_key(p.name)):
                for s in unique_by_stem(image_files(scene), f"sice scene {scene.name}"):
                    out.append(Sample(f"{scene.name}/{s.key}", s.low))
            if not out:
                raise DatasetError(f"no images in the scene folders of {part1}")
            return out
        flat = self.base / "train_data"
        if flat.is_dir():
            samples = unique_by_stem(image_files(flat), "sice train_data")
            if not samples:
                raise DatasetError(f"no images in {flat}")
            return samples
        raise DatasetError(f"missing folder {part1} (or Zero-DCE's {flat})")
