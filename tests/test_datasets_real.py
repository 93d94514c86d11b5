"""The real datasets on tiny recreations of their layouts: pairing, splits, status and
verification, odd image files, HiLLIE's derived splits, voc-dark and the low-light model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from llbench.datasets import real
from llbench.datasets.derived import LOLUnpaired, LOLv2Unpaired
from llbench.datasets.lol import LOL, LOLv2Real, LOLv2Synthetic
from llbench.datasets.lowlight_model import (
    darken,
    darken_with_params,
    linear_to_srgb,
    srgb_to_linear,
)
from llbench.datasets.lsrw import LSRW, LSRWNikon
from llbench.datasets.sice import SICE
from llbench.datasets.unpaired_sets import DICM, LIME
from llbench.datasets.voc_dark import VOCDark
from llbench.errors import DatasetError
from llbench.io.images import read_image, read_mask
from llbench.pluginhost.host import get_host


# -- layout builders (also used by test_cli_datasets) --------------------------------------------
def img(path: Path, seed: int = 0, size: tuple[int, int] = (8, 6), mode: str = "RGB") -> Path:
    """Write a small random image; ``size`` is (width, height)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


def make_pairs(folder: Path, names: list[str], low="low", high="high", hi_names=None, size=(8, 6)):
    for i, n in enumerate(names):
        img(folder / low / n, seed=i, size=size)
        img(folder / high / (hi_names[i] if hi_names else n), seed=100 + i, size=size)


def make_lol(root: Path, train: int = 3, test: int = 2, wrapper: str = "") -> Path:
    base = root / wrapper if wrapper else root
    if train:
        make_pairs(base / "our485", [f"{i}.png" for i in range(1, train + 1)])
    if test:
        make_pairs(base / "eval15", [f"{i}.png" for i in range(100, 100 + test)])
    return root


def make_lolv2(root: Path, n: tuple[int, int] = (5, 2)) -> Path:
    for split, k in zip(("Train", "Test"), n, strict=True):
        ids = [f"{i:05d}" for i in range(1, k + 1)]
        make_pairs(
            root / "Real_captured" / split,
            [f"low{i}.png" for i in ids],
            low="Low",
            high="Normal",
            hi_names=[f"normal{i}.png" for i in ids],
        )
        make_pairs(root / "Synthetic" / split, [f"r{i}.png" for i in ids], low="Low", high="Normal")
    return root


def make_lsrw(root: Path, train: int = 3, test: int = 1) -> Path:
    for subset in ("Huawei", "Nikon"):
        make_pairs(root / "Training data" / subset, [f"{i}.jpg" for i in range(1, train + 1)])
        make_pairs(root / "Eval" / subset, [f"{i}.jpg" for i in range(50, 50 + test)])
    return root


def make_flat(folder: Path, names: list[str]) -> Path:
    for i, n in enumerate(names):
        img(folder / n, seed=i)
    return folder


def make_voc(root: Path, ids: list[str]) -> Path:
    voc = root / "VOCdevkit" / "VOC2012"
    for k, i in enumerate(ids):
        img(voc / "JPEGImages" / f"{i}.jpg", seed=k, size=(16, 12))
        labels = np.zeros((12, 16), dtype=np.uint8)
        labels[2:8, 3:9] = 1 + k
        labels[0, :] = 255
        mask = Image.frombytes("P", (16, 12), labels.tobytes())
        mask.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (252 * 3) + [224, 224, 192])
        (voc / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        mask.save(voc / "SegmentationClass" / f"{i}.png")
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n")
    return root


@pytest.fixture
def tiny(monkeypatch):
    """Tiny fixtures hold a few images, not 485: drop the expected counts."""
    for cls in real.CLASSES:
        monkeypatch.setattr(cls, "expected", {})


# -- registration --------------------------------------------------------------------------------
def test_all_datasets_are_registered_through_the_entry_point(home):
    reg = get_host().registry("dataset")
    names = {
        "lol", "lolv2-real", "lolv2-synthetic", "lsrw", "lsrw-huawei", "lsrw-nikon", "sice",
        "lime", "npe", "mef", "dicm", "vv", "lol-unpaired", "lolv2-unpaired", "voc-dark",
    }  # fmt: skip
    assert names <= set(reg.names())
    for n in names:
        spec = reg.get(n)
        assert reg.origin(n) == "real-datasets"
        assert spec.source and spec.summary
    assert reg.get("voc-dark").masks and reg.get("voc-dark").splits == ("test", "test100")
    assert not reg.get("lime").paired and reg.get("lime").splits == ("test",)
    assert reg.get("sice").splits == ("train",)
    assert "e14f7632" in "".join(a.sha256 or "" for a in VOCDark.source.archives)


# -- LOL and LOL-v2 ------------------------------------------------------------------------------
def test_lol_reads_its_layout_even_inside_a_wrapper_folder(tmp_path):
    ds = LOL(make_lol(tmp_path / "lol", wrapper="LOLdataset"))
    train, test = ds.samples("train"), ds.samples("test")
    assert [s.key for s in train] == ["1", "2", "3"]
    assert all(s.low.parent.name == "low" and s.high.parent.name == "high" for s in train)
    assert [s.key for s in test] == ["100", "101"]
    assert test[0].low.parent.parent.name == "eval15"


def test_unmatched_pairs_are_listed(tmp_path):
    root = make_lol(tmp_path / "lol")
    img(root / "our485" / "low" / "77.png")
    img(root / "our485" / "high" / "88.png")
    with pytest.raises(DatasetError) as err:
        LOL(root).samples("train")
    msg = str(err.value)
    assert "77.png" in msg and "88.png" in msg and "without a reference" in msg


def test_only_the_test_split_is_enough_for_test_runs(tmp_path, tiny):
    ds = LOL(make_lol(tmp_path / "lol", train=0))
    assert len(ds.samples("test")) == 2
    with pytest.raises(DatasetError, match="our485"):
        ds.samples("train")
    st = ds.status()
    assert st.state == "incomplete" and "lol train split: missing folder" in st.detail
    assert st.splits == {"test": 2}
    report = ds.verify()
    assert report.counts == {"test": 2} and "train" in report.missing_splits
    assert report.recorded is not None and not report.problems


def test_lolv2_pairs_low_and_normal_prefixes(tmp_path):
    root = make_lolv2(tmp_path / "lolv2")
    real_ds, syn = LOLv2Real(root), LOLv2Synthetic(root)
    tr = real_ds.samples("train")
    assert [s.key for s in tr][:2] == ["00001", "00002"]
    assert tr[0].low.name == "low00001.png" and tr[0].high.name == "normal00001.png"
    assert len(syn.samples("test")) == 2 and syn.samples("test")[0].key == "r00001"
    # the two datasets share a folder but keep separate manifests
    assert real_ds.manifest_paths()[0] != syn.manifest_paths()[0]


def test_status_goes_from_absent_to_verified_and_notices_changes(tmp_path, home, tiny):
    ds = LOL(tmp_path / "lol")
    st = ds.status()
    assert st.state == "absent" and str(tmp_path / "lol") in st.detail
    assert "daooshee.github.io" in st.detail
    make_lol(tmp_path / "lol")
    assert ds.status().state == "unverified"
    report = ds.verify()
    assert report.ok and report.recorded == tmp_path / "lol" / ".llbench-manifest-lol.json"
    st = ds.status()
    assert st.state == "present" and st.splits == {"train": 3, "test": 2}
    img(tmp_path / "lol" / "eval15" / "high" / "100.png", seed=999)  # replace one reference
    st = ds.status()
    assert st.state == "unverified" and "eval15/high/100.png" in st.detail
    report = ds.verify()
    assert report.changed == ["eval15/high/100.png"] and report.recorded is None
    assert ds.verify(update=True).recorded is not None
    assert ds.status().state == "present"
    (tmp_path / "lol" / "our485" / "low" / "3.png").unlink()
    (tmp_path / "lol" / "our485" / "high" / "3.png").unlink()
    report = ds.verify()
    assert report.missing_files == ["our485/high/3.png", "our485/low/3.png"]


def test_image_count_shortfall_is_incomplete(tmp_path):
    ds = LOL(make_lol(tmp_path / "lol"))
    st = ds.status()
    assert st.state == "incomplete" and "train: 3 images, expected 485" in st.detail
    report = ds.verify()
    assert any("expected 485" in p for p in report.problems) and report.recorded is None


def test_manifest_hash_tracks_content(tmp_path):
    ds = LOL(make_lol(tmp_path / "lol"))
    h1 = ds.manifest_hash("test")
    assert set(ds.manifest("test")) == {
        "eval15/low/100.png", "eval15/high/100.png", "eval15/low/101.png", "eval15/high/101.png"
    }  # fmt: skip
    img(tmp_path / "lol" / "eval15" / "low" / "101.png", seed=5)
    assert ds.manifest_hash("test") != h1


# -- odd files -----------------------------------------------------------------------------------
def test_odd_files_are_converted_or_reported(tmp_path, tiny):
    folder = tmp_path / "lime"
    img(folder / "rgb.png", seed=1)
    img(folder / "grey.png", seed=2, mode="L")
    img(folder / "alpha.png", seed=3, mode="RGBA")
    Image.fromarray(np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000).save(folder / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(folder / "rotated.jpg", exif=exif)
    img(folder / "cmyk.jpg", seed=4, mode="CMYK")
    whole = img(tmp_path / "big.png", seed=5, size=(64, 64)).read_bytes()
    (folder / "cut.png").write_bytes(whole[: len(whole) // 2])
    ds = LIME(folder)
    report = ds.verify()
    notes = {k.split(":")[0]: v for k, v in report.notes.items()}
    assert any("grey.png" in f for f in notes["greyscale"])
    assert any("alpha.png" in f for f in notes["alpha channel"])
    assert any("deep.png" in f for f in notes["16-bit"])
    assert any("rotated.jpg" in f for f in notes["EXIF orientation 6"])
    assert any("cmyk.jpg" in f for f in notes["CMYK"])
    assert [p for p in report.problems if "cut.png" in p] and report.recorded is None
    # what verify promises is what read_image does
    assert read_image(folder / "rotated.jpg").shape == (8, 6, 3)
    assert read_image(folder / "deep.png").dtype == np.uint8
    assert read_image(folder / "grey.png").shape == (6, 8, 3)


def test_pair_size_mismatch_is_a_problem(tmp_path, tiny):
    root = make_lol(tmp_path / "lol")
    img(root / "eval15" / "high" / "101.png", size=(6, 8))
    report = LOL(root).verify()
    assert any("test/101" in p and "8x6" in p and "6x8" in p for p in report.problems)


# -- LSRW, SICE, the unpaired sets ---------------------------------------------------------------
def test_lsrw_subsets_have_distinct_keys(tmp_path):
    root = make_lsrw(tmp_path / "lsrw")
    both = LSRW(root).samples("train")
    assert [s.key for s in both] == [f"{d}/{i}" for d in ("Huawei", "Nikon") for i in (1, 2, 3)]
    nikon = LSRWNikon(root).samples("test")
    assert [s.key for s in nikon] == ["Nikon/50"] and "Nikon" in str(nikon[0].low)
    (root / "Eval" / "Huawei" / "high" / "50.jpg").unlink()
    with pytest.raises(DatasetError, match="50.jpg"):
        LSRW(root).samples("test")


def test_sice_reads_part1_sequences_or_zero_dce_copy(tmp_path):
    root = tmp_path / "sice"
    for scene in ("1", "2", "10"):
        make_flat(root / "Dataset_Part1" / scene, ["1.JPG", "2.JPG"])
    make_flat(root / "Dataset_Part1" / "Label", ["1.JPG", "2.JPG"])
    s = SICE(root).samples("train")
    assert [x.key for x in s] == ["1/1", "1/2", "2/1", "2/2", "10/1", "10/2"]
    assert all(x.high is None and "Label" not in str(x.low) for x in s)
    zdce = make_flat(tmp_path / "z" / "train_data", ["a.jpg", "b.jpg"]).parent
    assert [x.key for x in SICE(zdce).samples("train")] == ["a", "b"]
    with pytest.raises(DatasetError, match="Dataset_Part1"):
        SICE(tmp_path / "empty").samples("train")


def test_unpaired_sets_mix_formats_and_reject_clashing_stems(tmp_path):
    folder = make_flat(tmp_path / "dicm" / "LDR_TEST_IMAGES_DICM", ["01.jpg", "2.bmp", "10.png"])
    ds = DICM(tmp_path / "dicm")
    assert [s.key for s in ds.samples("test")] == ["01", "2", "10"]
    img(folder / "2.png")
    with pytest.raises(DatasetError, match="2.bmp and .*2.png|2.png and .*2.bmp"):
        ds.samples("test")


# -- HiLLIE's derived splits ---------------------------------------------------------------------
def test_lol_unpaired_draws_seeded_lsrw_references(tmp_path, tiny):
    data = tmp_path / "data"
    make_lol(data / "lol", train=4, test=2)
    make_lsrw(data / "lsrw", train=5)
    ds = LOLUnpaired(data / "lol-unpaired", data)
    train = ds.samples("train")
    assert [s.key for s in train] == ["1", "2", "3", "4"]
    highs = [s.high for s in train]
    assert len(set(highs)) == 4 and all("Training data" in str(h) for h in highs)
    assert all("high" == h.parent.name for h in highs)
    assert highs == [s.high for s in LOLUnpaired(data / "lol-unpaired", data).samples("train")]
    assert [s.key for s in ds.samples("test")] == ["100", "101"]
    assert not ds.pairs_aligned("train") and ds.pairs_aligned("test")
    ds.prepare()
    sel = json.loads((data / "lol-unpaired" / "selection.json").read_text())
    assert sel["seed"] == 0 and sel["train"][0][1] == "lol/our485/low/1.png"
    report = ds.verify()  # unaligned train pairs of different sizes are fine
    assert not report.problems


def test_lolv2_unpaired_halves_without_overlap(tmp_path, tiny):
    data = tmp_path / "data"
    make_lolv2(data / "lolv2", n=(9, 2))
    ds = LOLv2Unpaired(data / "lolv2-unpaired", data)
    train = ds.samples("train")
    assert len(train) == 4
    low_ids = {s.low.name.removeprefix("low") for s in train}
    high_ids = {s.high.name.removeprefix("normal") for s in train}
    assert not low_ids & high_ids  # no scene on both sides
    assert len(ds.samples("test")) == 2


def test_derived_status_names_its_sources(tmp_path):
    data = tmp_path / "data"
    st = LOLUnpaired(data / "lol-unpaired", data).status()
    assert st.state == "absent" and "lol" in st.detail and "lsrw" in st.detail
    with pytest.raises(DatasetError, match="lsrw"):
        LOLUnpaired(data / "lol-unpaired", data).fetch(tmp_path / "cache")


# -- voc-dark ------------------------------------------------------------------------------------
def test_voc_dark_generates_seeded_images_and_keeps_masks(tmp_path, tiny):
    ids = ["2007_000033", "2007_000042", "2008_000001"]
    root = make_voc(tmp_path / "voc-dark", ids)
    ds = VOCDark(root)
    st = ds.status()
    assert st.state == "incomplete" and "3 of 3 darkened images" in st.detail
    with pytest.raises(DatasetError, match="not generated yet"):
        ds.samples("test")
    ds.prepare()
    samples = ds.samples("test")
    assert [s.key for s in samples] == ids
    s0 = samples[0]
    assert s0.low.parent.name == "dark" and s0.high.suffix == ".jpg" and s0.mask.suffix == ".png"
    low, high = read_image(s0.low), read_image(s0.high)
    assert low.shape == high.shape and low.mean() < high.mean()
    mask = read_mask(s0.mask)
    assert mask.shape == (12, 16) and set(np.unique(mask)) == {0, 1, 255}
    params = json.loads((root / "dark" / "params.json").read_text())
    assert set(params["images"]) == set(ids) and params["seed"] == 2012
    first = s0.low.read_bytes()
    s0.low.unlink()
    ds.prepare()  # regenerates only what is missing, bit-identically
    assert s0.low.read_bytes() == first
    assert len(ds.samples("test100")) == 3
    report = ds.verify()
    assert report.ok and report.recorded is not None and ds.status().state == "present"


def test_voc_dark_reports_missing_masks(tmp_path):
    root = make_voc(tmp_path / "voc-dark", ["a", "b"])
    (root / "VOCdevkit/VOC2012/SegmentationClass/b.png").unlink()
    ds = VOCDark(root)
    ds.prepare()
    with pytest.raises(DatasetError, match="SegmentationClass/b.png"):
        ds.samples("test")


# -- the low-light model -------------------------------------------------------------------------
def test_darken_is_seeded_darker_and_documented_fixed_params_invert():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    a = darken(rgb, np.random.default_rng(7))
    b = darken(rgb, np.random.default_rng(7))
    c = darken(rgb, np.random.default_rng(8))
    assert a.dtype == np.uint8 and a.shape == rgb.shape
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.mean() < 0.6 * rgb.mean()
    same = darken(
        rgb, np.random.default_rng(0), exposure=1.0, gamma=1.0, shot_noise=0, read_noise=0
    )
    assert np.array_equal(same, rgb)  # the sRGB round trip is exact at 8 bits
    half, p = darken_with_params(
        rgb, np.random.default_rng(0), exposure=0.25, gamma=1.0, shot_noise=0, read_noise=0
    )
    assert p.exposure == 0.25 and p.shot_noise == 0
    expect = np.rint(linear_to_srgb(0.25 * srgb_to_linear(rgb / 255.0)) * 255)
    assert np.array_equal(half, expect.astype(np.uint8))
    noisy = [darken(rgb, np.random.default_rng(i), exposure=0.1, gamma=1.0) for i in range(2)]
    assert not np.array_equal(*noisy)
    with pytest.raises(ValueError, match="exposure"):
        darken(rgb, np.random.default_rng(0), exposure=2.0)
