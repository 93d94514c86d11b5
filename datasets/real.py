"""Plugin module ``llbench.datasets.real``: registers the public low-light benchmark datasets.

Loaded through the ``llbench`` entry point ``real-datasets``, like any third-party plugin. Each
dataset reads ``<data root>/<folder>``; ``llbench datasets`` shows which are here, and
``llbench datasets fetch NAME`` downloads them or prints the manual steps.

==================  ============  =================================================================
name                folder        what
==================  ============  =================================================================
lol                 lol           LOL v1, 485 / 15 pairs (:mod:`.lol`)
lolv2-real          lolv2         LOL-v2 real-captured, 689 / 100 pairs
lolv2-synthetic     lolv2         LOL-v2 synthetic, 900 / 100 pairs
lsrw                lsrw          LSRW, Huawei and Nikon pairs (:mod:`.lsrw`); also lsrw-huawei,
                                  lsrw-nikon
sice                sice          SICE Part 1 multi-exposure training images (:mod:`.sice`)
lime npe mef dicm   <name>        unpaired test sets (:mod:`.unpaired_sets`)
vv
lol-unpaired        (derived)     HiLLIE's unpaired LOL + LSRW training split (:mod:`.derived`)
lolv2-unpaired      (derived)     HiLLIE's halved LOL-v2 real training split
voc-dark            voc-dark      VOC 2012 seg. val darkened, with masks (:mod:`.voc_dark`)
==================  ============  =================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llbench.api import DatasetSpec, hookimpl

from .derived import LOLUnpaired, LOLv2Unpaired
from .folders import FolderDataset
from .lol import LOL, LOLv2Real, LOLv2Synthetic
from .lsrw import LSRW, LSRWHuawei, LSRWNikon
from .sice import SICE
from .unpaired_sets import DICM, LIME, MEF, NPE, SUMMARIES, VV
from .voc_dark import VOCDark

SUMMARY = {
    "lol": "LOL v1 (Wei et al., BMVC 2018): 485 train / 15 test real pairs, 600x400",
    "lolv2-real": "LOL-v2 real-captured (Yang et al., TIP 2021): 689 train / 100 test pairs",
    "lolv2-synthetic": "LOL-v2 synthetic (Yang et al., TIP 2021): 900 train / 100 test pairs",
    "lsrw": "LSRW (Hai et al., JVCIR 2023): real pairs from a Huawei phone and a Nikon camera",
    "lsrw-huawei": "LSRW, Huawei subset only",
    "lsrw-nikon": "LSRW, Nikon subset only",
    "sice": "SICE Part 1 (Cai et al., TIP 2018): multi-exposure training images of Zero-DCE/SGZ",
    "lol-unpaired": (
        "HiLLIE's unpaired split: LOL's 485 low images + 485 random LSRW normal images "
        "(train high = unaligned); LOL's 15 test pairs"
    ),
    "lolv2-unpaired": (
        "HiLLIE's unpaired split: LOL-v2 real train halved into 344 low + 344 other normal "
        "images (train high = unaligned); 100 test pairs"
    ),
    "voc-dark": (
        "PASCAL VOC 2012 segmentation val darkened by a seeded low-light model, with masks "
        "(for mIoU/mPA)"
    ),
    **SUMMARIES,
}

CLASSES: tuple[type[FolderDataset], ...] = (
    LOL,
    LOLv2Real,
    LOLv2Synthetic,
    LSRW,
    LSRWHuawei,
    LSRWNikon,
    SICE,
    LIME,
    NPE,
    MEF,
    DICM,
    VV,
    LOLUnpaired,
    LOLv2Unpaired,
    VOCDark,
)


def _builder(cls: type[FolderDataset]) -> Callable[[Path], FolderDataset]:
    def build(data_root: Path) -> FolderDataset:
        data_root = Path(data_root)
        if issubclass(cls, (LOLUnpaired, LOLv2Unpaired)):
            return cls(data_root / cls.folder, data_root)
        return cls(data_root / cls.folder)

    return build


def spec_for(cls: type[FolderDataset]) -> DatasetSpec:
    """The :class:`DatasetSpec` of one of the classes above."""
    return DatasetSpec(
        name=cls.name,
        build=_builder(cls),
        summary=SUMMARY[cls.name],
        paired=cls.paired,
        splits=tuple(cls.splits),
        masks=cls.masks,
        source=cls.source.describe(),
    )


@hookimpl
def register_datasets(register):
    for cls in CLASSES:
        register(spec_for(cls))
