"""The unpaired real-world test sets of low-light enhancement: LIME, NPE, MEF, DICM and VV.

Each is a flat folder of low-light images with no references (mixed JPG, BMP and PNG), read
from ``<data root>/<name>`` or a single wrapper folder inside it (``LDR_TEST_IMAGES_DICM/``).
Sample keys are file stems; two files with the same stem (``1.jpg`` and ``1.png``) are an error.

=========  =====================================================================  ===========
name       paper                                                                  images
=========  =====================================================================  ===========
``lime``   Guo, Li, Ling, LIME, TIP 2017                                          10 (BMP)
``npe``    Wang, Zheng, Hu, Li, Naturalness Preserved Enhancement, TIP 2013       8 (85 with
                                                                                  NPE-ex1..3)
``mef``    Ma, Zeng, Wang, Perceptual Quality Assessment for MEF, TIP 2015         17
``dicm``   Lee, Lee, Kim, Layered Difference Representation, TIP 2013             64 as used in
                                                                                  LLIE papers,
                                                                                  69 in the zip
``vv``     Vonikakis, Busting Image Enhancement and Tone-Mapping Algorithms       24
=========  =====================================================================  ===========

Only DICM has a direct download (the MCL page's zip; no sha256 is published, so llbench records
the hash of the file it downloads in the manifest). The others are on personal pages and Google
Drive: ``llbench datasets fetch`` prints the steps.
"""

from __future__ import annotations

from .folders import UnpairedFolderDataset
from .sources import Archive, Source

SOURCES: dict[str, Source] = {
    "lime": Source(
        page="https://sites.google.com/view/xjguo/lime",
        citation=(
            "Guo, Li, Ling, LIME: Low-Light Image Enhancement via Illumination Map Estimation, "
            "TIP 2017"
        ),
        archives=(
            Archive(
                "LIME.zip",
                mirrors=(
                    "Google Drive https://drive.google.com/open?id=0BwVzAzXoqrSXb3prWUV1YzBjZzg "
                    "(the 10 test images)",
                    "a copy ships in https://github.com/Li-Chongyi/Zero-DCE under "
                    "Zero-DCE_code/data/test_data/LIME",
                ),
            ),
        ),
    ),
    "npe": Source(
        page="http://blog.sina.com.cn/s/blog_a0a06f190101cvon.html",
        citation=(
            "Wang, Zheng, Hu, Li, Naturalness Preserved Enhancement Algorithm for Non-Uniform "
            "Illumination Images, TIP 2013"
        ),
        archives=(Archive("NPE.zip", mirrors=("the NPE-data link on the authors' page",)),),
        notes="the extended sets NPE-ex1, NPE-ex2 and NPE-ex3 may go in the same folder",
    ),
    "mef": Source(
        page="https://ece.uwaterloo.ca/~k29ma/",
        citation=(
            "Ma, Zeng, Wang, Perceptual Quality Assessment for Multi-Exposure Image Fusion, "
            "TIP 2015"
        ),
        archives=(
            Archive(
                "MEF.zip",
                mirrors=(
                    "the MEF database page http://ivc.uwaterloo.ca/database/MEF/MEF-Database.php",
                ),
            ),
        ),
        notes=(
            "low-light papers use one under-exposed image of each of 17 sequences; put those 17 "
            "images in the folder, not the whole sequences"
        ),
    ),
    "dicm": Source(
        page="http://mcl.korea.ac.kr/projects/LDR/",
        citation=(
            "Lee, Lee, Kim, Contrast Enhancement Based on Layered Difference Representation of "
            "2D Histograms, TIP 2013"
        ),
        archives=(
            Archive(
                "LDR_TEST_IMAGES_DICM.zip",
                url="http://mcl.korea.ac.kr/projects/LDR/LDR_TEST_IMAGES_DICM.zip",
                sha256=None,
                sha256_source="no hash is published; the first download's hash is recorded",
                mirrors=(
                    "a copy of the 64 images used by Zero-DCE ships in "
                    "https://github.com/Li-Chongyi/Zero-DCE under Zero-DCE_code/data/test_data/DICM",
                ),
            ),
        ),
    ),
    "vv": Source(
        page="https://sites.google.com/site/vonikakis/datasets/challenging-dataset-for-enhancement",
        citation=(
            "Vonikakis, Busting Image Enhancement and Tone-Mapping Algorithms: A Collection of "
            "the Most Challenging Cases"
        ),
        archives=(Archive("VV.zip", mirrors=("the download link on the page above",)),),
    ),
}

SUMMARIES = {
    "lime": "LIME: 10 unpaired low-light test images (Guo et al., TIP 2017)",
    "npe": "NPE: unpaired non-uniformly lit test images (Wang et al., TIP 2013)",
    "mef": "MEF: 17 under-exposed test images from the MEF database (Ma et al., TIP 2015)",
    "dicm": "DICM: 64/69 unpaired low-light test images (Lee et al., TIP 2013)",
    "vv": "VV: 24 challenging unevenly lit test images (Vonikakis)",
}

EXPECTED = {"lime": (10,), "npe": (8, 85), "mef": (17,), "dicm": (64, 69), "vv": (24,)}


def make_class(name: str) -> type[UnpairedFolderDataset]:
    """The dataset class of one of the sets above."""
    attrs = {
        "name": name,
        "folder": name,
        "source": SOURCES[name],
        "layout": "a flat folder of images (JPG/BMP/PNG)",
        "expected": {"test": EXPECTED[name]},
        "__doc__": SUMMARIES[name],
        "__module__": __name__,
    }
    return type(name.upper(), (UnpairedFolderDataset,), attrs)


LIME, NPE, MEF, DICM, VV = (make_class(n) for n in ("lime", "npe", "mef", "dicm", "vv"))
