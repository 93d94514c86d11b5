"""LSRW: real low/normal-light pairs from a Huawei phone and a Nikon camera.

Hai, Xuan, Yang, Hao, Zou, Lin and Han, "R2RNet: Low-light Image Enhancement via Real-low to
Real-normal Network", JVCIR 2023 (arXiv:2106.14501): about 5,650 pairs, most for training and
a small evaluation set. Layout (as in the authors' archive)::

    Training data/{Huawei,Nikon}/{low,high}/*.jpg
    Eval/{Huawei,Nikon}/{low,high}/*.jpg

Files pair by name inside each subset; a sample's key is ``<subset>/<stem>`` (the two subsets
reuse file names). ``lsrw`` holds both subsets, ``lsrw-huawei`` and ``lsrw-nikon`` one each; all
three read ``<data root>/lsrw``. The data is on Baidu Pan only, so fetching is manual.
"""

from __future__ import annotations

from llbench.api.datasets import Sample
from llbench.errors import DatasetError

from .folders import PairedFolderDataset
from .sources import Archive, Source

LSRW_SOURCE = Source(
    page="https://github.com/JianghaiSCU/R2RNet",
    citation=(
        "Hai et al., R2RNet: Low-light Image Enhancement via Real-low to Real-normal Network, "
        "JVCIR 2023"
    ),
    archives=(
        Archive(
            "LSRW.zip",
            mirrors=(
                "Baidu Pan https://pan.baidu.com/s/1XHWQAS0ZNrnCyZ-bq7MKvA code wmrr "
                "(listed by the authors' Diffusion-Low-Light README)",
                "Baidu Pan https://pan.baidu.com/s/1UxFllrtRSh4E8ir8LdTb9w code wmr1 (R2RNet README)",
            ),
        ),
    ),
    notes="the archive name on Baidu Pan may differ; pass whatever you downloaded to --archive",
)

SUBSETS = ("Huawei", "Nikon")


class LSRW(PairedFolderDataset):
    """Both subsets (or one, in the subclasses below)."""

    name = "lsrw"
    folder = "lsrw"
    source = LSRW_SOURCE
    layout = "'Training data/{Huawei,Nikon}/{low,high}' and 'Eval/{Huawei,Nikon}/{low,high}'"
    markers = ("Training data", "Eval")
    split_dirs = {"train": "Training data", "test": "Eval"}
    subsets: tuple[str, ...] = SUBSETS

    def _split_samples(self, split: str) -> list[Sample]:
        top = self.base / self.split_dirs[split]
        if not top.is_dir():
            raise DatasetError(f"missing folder {top}")
        out: list[Sample] = []
        for subset in self.subsets:
            out.extend(
                self.pair_folder(top / subset, f"{self.name} {split} {subset}", prefix=f"{subset}/")
            )
        return out


class LSRWHuawei(LSRW):
    name = "lsrw-huawei"
    subsets = ("Huawei",)
    layout = "'Training data/Huawei/{low,high}' and 'Eval/Huawei/{low,high}'"


class LSRWNikon(LSRW):
    name = "lsrw-nikon"
    subsets = ("Nikon",)
    layout = "'Training data/Nikon/{low,high}' and 'Eval/Nikon/{low,high}'"
