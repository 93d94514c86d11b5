"""LOL (v1) and LOL-v2 (real and synthetic): paired low/normal-light images.

* LOL, Wei, Wang, Yang and Liu, "Deep Retinex Decomposition for Low-Light Enhancement", BMVC
  2018: 485 training and 15 test pairs of 600x400 PNGs, ``our485/{low,high}`` and
  ``eval15/{low,high}``, same file names in ``low`` and ``high``.
* LOL-v2, Yang, Huang, Wang, Wang and Liu, "Sparse Gradient Regularized Deep Retinex Network for
  Robust Low-Light Image Enhancement", TIP 2021: ``Real_captured/{Train,Test}/{Low,Normal}``
  (689 / 100 pairs; files ``low00001.png`` pair with ``normal00001.png``) and
  ``Synthetic/{Train,Test}/{Low,Normal}`` (900 / 100 pairs, same names). Both come in one
  archive, so both datasets live in ``<data root>/lolv2``.

Neither has a stable direct download: the authors publish Google Drive and Baidu Pan links, so
``llbench datasets fetch`` prints the manual steps and accepts the archive with ``--archive``.
"""

from __future__ import annotations

from .folders import PairedFolderDataset
from .pairing import strip_prefix_key
from .sources import Archive, Source

LOL_SOURCE = Source(
    page="https://daooshee.github.io/BMVC2018website/",
    citation="Wei, Wang, Yang, Liu, Deep Retinex Decomposition for Low-Light Enhancement, BMVC 2018",
    archives=(
        Archive(
            "LOLdataset.zip",
            mirrors=(
                "Google Drive https://drive.google.com/open?id=157bjO1_cFuSd0HWDUuAmcHRJDVyWpOxB",
                "Baidu Pan, linked from the project page",
            ),
        ),
    ),
)

LOLV2_SOURCE = Source(
    page="https://github.com/flyywh/CVPR-2020-Semi-Low-Light",
    citation=(
        "Yang, Huang, Wang, Wang, Liu, Sparse Gradient Regularized Deep Retinex Network for "
        "Robust Low-Light Image Enhancement, TIP 2021"
    ),
    archives=(
        Archive(
            "LOL-v2.zip",
            mirrors=(
                "Google Drive https://drive.google.com/file/d/1dzuLCk9_gE2bFF222n3-7GVUlSVHpMYC/view",
                "Baidu Pan https://pan.baidu.com/s/1U9ePTfeLlnEbr5dtI1tm5g code l9xm",
            ),
        ),
    ),
    notes=(
        "the Google Drive file may be named differently (e.g. LOL-v2.zip or LOLv2.zip); pass "
        "whatever you downloaded to --archive"
    ),
)


class LOL(PairedFolderDataset):
    """LOL v1: train = ``our485``, test = ``eval15``."""

    name = "lol"
    folder = "lol"
    source = LOL_SOURCE
    layout = "our485/{low,high}/*.png and eval15/{low,high}/*.png"
    markers = ("our485", "eval15")
    split_dirs = {"train": "our485", "test": "eval15"}
    expected = {"train": (485,), "test": (15,)}
    image_size = (600, 400)


class LOLv2Real(PairedFolderDataset):
    """LOL-v2 real-captured subset; ``low00001.png`` pairs with ``normal00001.png``."""

    name = "lolv2-real"
    folder = "lolv2"
    source = LOLV2_SOURCE
    layout = "Real_captured/{Train,Test}/{Low,Normal}/*.png"
    markers = ("Real_captured", "Synthetic")
    split_dirs = {"train": "Real_captured/Train", "test": "Real_captured/Test"}
    expected = {"train": (689,), "test": (100,)}
    pair_key = strip_prefix_key("low", "normal")


class LOLv2Synthetic(PairedFolderDataset):
    """LOL-v2 synthetic subset (RAISE images darkened by the authors)."""

    name = "lolv2-synthetic"
    folder = "lolv2"
    source = LOLV2_SOURCE
    layout = "Synthetic/{Train,Test}/{Low,Normal}/*.png"
    markers = ("Real_captured", "Synthetic")
    split_dirs = {"train": "Synthetic/Train", "test": "Synthetic/Test"}
    expected = {"train": (900,), "test": (100,)}
    image_size = (384, 384)
