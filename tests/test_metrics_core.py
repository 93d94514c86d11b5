"""Core metrics (llbench.metrics): pyiqa agreement, definitions, edge cases, batching, errors."""

from __future__ import annotations

import importlib.util
import math
import shutil
import sysconfig
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from llbench.errors import LLBenchError, WeightsError
from llbench.io.images import read_image, to_tensor
from llbench.metrics import functional as M
from llbench.metrics.functional import MetricInputError

CALIB_NAMES = ["I03", "I04", "I06", "I08", "I19"]
# pyiqa's published scores of the distorted calibration images (shared/data/README.md)
PYIQA_REFERENCE = {
    "psnr": [21.1136, 20.9872, 27.0139, 23.3002, 21.6186],
    "ssim": [0.6997, 0.9978, 0.9989, 0.9671, 0.6522],
    "niqe": [15.6538, 3.6549, 3.2342, 3.1922, 9.0722],
}
# the tolerances of pyiqa's own tests
PYIQA_TOL = {"psnr": (1e-2, 1e-2), "ssim": (1e-2, 1e-2), "niqe": (6e-2, 0.0)}
CPU = torch.device("cpu")


# -- fixtures ------------------------------------------------------------------------------------
def _calibra_dir() -> Path | None:
    roots = [Path(sysconfig.get_paths()["purelib"])]
    spec = importlib.util.find_spec("pyiqa")
    if spec is not None and spec.origin:
        roots.insert(0, Path(spec.origin).parent.parent)
    for root in roots:
        d = root / "ResultsCalibra"
        if (d / "ref_dir").is_dir() and (d / "dist_dir").is_dir():
            return d
    return None


@pytest.fixture(scope="module")
def calib() -> tuple[torch.Tensor, torch.Tensor]:
    """pyiqa's calibration pairs (5 TID2013 images, 512 x 384): distorted, reference."""
    d = _calibra_dir()
    if d is None:
        pytest.skip("pyiqa's calibration images (site-packages/ResultsCalibra) are not installed")
    dist = torch.cat([to_tensor(read_image(d / "dist_dir" / f"{n}.bmp")) for n in CALIB_NAMES])
    ref = torch.cat([to_tensor(read_image(d / "ref_dir" / f"{n}.bmp")) for n in CALIB_NAMES])
    return dist, ref


@pytest.fixture(scope="module")
def pyiqa():
    if importlib.util.find_spec("pyiqa") is None:
        pytest.skip("pyiqa is not installed")
    from llbench._torchvision import import_torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_torchvision()  # pyiqa imports torchvision; tolerate a torch/torchvision mismatch
        import pyiqa

    return pyiqa


@pytest.fixture(scope="module")
def pyiqa_niqe(pyiqa, tmp_path_factory):
    """pyiqa's ``niqe`` fed with our shipped parameters, written as the .mat pyiqa downloads.

    pyiqa reads ``niqe_modelparameters.mat`` (keys ``mu_prisparam``, ``cov_prisparam``) from
    ``$TORCH_HOME/hub/pyiqa``; its cache folder is fixed when pyiqa is imported, so the file is
    built in a temporary ``TORCH_HOME/hub/pyiqa`` and its path passed explicitly as well.
    """
    import scipy.io

    from llbench.metrics import _niqe

    mu, cov = _niqe.pristine_params(CPU, torch.float64)
    folder = tmp_path_factory.mktemp("torch_home") / "hub" / "pyiqa"
    folder.mkdir(parents=True)
    mat = folder / "niqe_modelparameters.mat"
    scipy.io.savemat(mat, {"mu_prisparam": mu.numpy()[None], "cov_prisparam": cov.numpy()})
    return pyiqa.create_metric("niqe", device="cpu", pretrained_model_path=str(mat))


def _levels(arr: np.ndarray) -> torch.Tensor:
    """uint8 H x W x 3 -> 1 x 3 x H x W float levels k/255."""
    return to_tensor(np.ascontiguousarray(arr, dtype=np.uint8))


def _sample_images(seed: int = 0, size=(128, 160)) -> tuple[torch.Tensor, torch.Tensor]:
    """Three skimage photos cropped to ``size`` and a darkened, noisy, quantized version."""
    from skimage import data

    h, w = size
    imgs = [data.coffee()[:h, :w], data.astronaut()[100 : 100 + h, 100 : 100 + w],
            data.chelsea()[:h, :w]]  # fmt: skip
    ref = torch.cat([_levels(i) for i in imgs])
    g = torch.Generator().manual_seed(seed)
    noisy = ref * 0.6 + 0.04 * torch.randn(ref.shape, generator=g)
    return torch.round(noisy.clamp(0, 1) * 255) / 255, ref


# -- agreement with pyiqa ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["psnr", "ssim", "niqe"])
def test_reference_values_of_pyiqa_calibration_set(calib, name):
    dist, ref = calib
    ours = M.niqe(dist) if name == "niqe" else getattr(M, name)(dist, ref)
    expected = np.array(PYIQA_REFERENCE[name])
    atol, rtol = PYIQA_TOL[name]
    np.testing.assert_allclose(ours.numpy(), expected, atol=atol, rtol=rtol)
    # tighter than pyiqa's tolerance: the table is rounded to 4 decimals
    tight = {"psnr": 2e-4, "ssim": 2e-4, "niqe": 1e-2}[name]
    np.testing.assert_allclose(ours.numpy(), expected, atol=tight, rtol=0)


def test_psnr_ssim_match_pyiqa_directly(pyiqa, calib):
    dist, ref = calib
    expected = pyiqa.create_metric("psnr", device="cpu")(dist, ref).double().flatten()
    np.testing.assert_allclose(M.psnr(dist, ref).numpy(), expected.numpy(), atol=1e-4, rtol=0)
    # pyiqa's SSIM (float64 11x11 convolutions) is slow: compare on 192 x 256 centre crops
    dist, ref = dist[..., 96:288, 128:384], ref[..., 96:288, 128:384]
    for ours, theirs, tol in [
        (M.ssim, "ssim", 1e-6),
        (M.ssim_rgb, "ssimc", 1e-6),
    ]:
        expected = pyiqa.create_metric(theirs, device="cpu")(dist, ref).double().flatten()
        np.testing.assert_allclose(ours(dist, ref).numpy(), expected.numpy(), atol=tol, rtol=0)


def test_niqe_matches_pyiqa_directly(pyiqa_niqe, calib):
    dist, _ = calib
    expected = pyiqa_niqe(dist).double().flatten()
    # pyiqa halves the image for the second scale in float32, llbench in float64: up to 5e-4
    np.testing.assert_allclose(M.niqe(dist).numpy(), expected.numpy(), atol=2e-3, rtol=0)


def test_matches_pyiqa_on_other_images(pyiqa, pyiqa_niqe):
    pred, ref = _sample_images(size=(96, 128))
    for ours, theirs, tol in [
        (M.psnr, "psnr", 1e-4),
        (M.ssim, "ssim", 1e-6),
        (M.ssim_rgb, "ssimc", 1e-6),
    ]:
        expected = pyiqa.create_metric(theirs, device="cpu")(pred, ref).double().flatten()
        np.testing.assert_allclose(ours(pred, ref).numpy(), expected.numpy(), atol=tol, rtol=0)
    pred, _ = _sample_images(size=(192, 192))
    np.testing.assert_allclose(
        M.niqe(pred).numpy(), pyiqa_niqe(pred).double().flatten().numpy(), atol=2e-3, rtol=0
    )


# -- PSNR ----------------------------------------------------------------------------------------
def test_psnr_identical_images_is_the_finite_80db_cap_of_pyiqa():
    _, ref = _sample_images()
    for fn in (M.psnr, M.psnr_y, M.psnr_gtmean):
        out = fn(ref, ref)
        assert out.dtype == torch.float64 and out.shape == (3,)
        assert torch.isfinite(out).all()
        np.testing.assert_allclose(out.numpy(), M.PSNR_MAX_DB, atol=1e-9)


def test_psnr_formula_on_known_mse():
    rng = np.random.default_rng(1)
    ref = rng.integers(10, 240, (24, 32, 3), dtype=np.uint8)
    pred = ref.astype(int)
    pred[..., 0] += 3  # error only in R: MSE = 9 / 3 = 3 over channels and pixels
    expected = 10 * math.log10(1.0 / (3.0 / 255**2 + 1e-8))
    assert M.psnr(_levels(pred), _levels(ref)).item() == pytest.approx(expected, abs=1e-10)


def test_psnr_y_uses_bt601_studio_luma():
    rng = np.random.default_rng(2)
    ref = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    pred = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)

    def y(a):
        a = a.astype(np.float64)
        return 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255

    mse = np.mean((y(pred) - y(ref)) ** 2)
    expected = 10 * math.log10(255**2 / (mse + 255**2 * 1e-8))
    assert M.psnr_y(_levels(pred), _levels(ref)).item() == pytest.approx(expected, abs=1e-9)
    np.testing.assert_allclose(M.ycbcr_y(torch.tensor([[[[0.0]], [[0.0]], [[0.0]]]])), 16.0)
    np.testing.assert_allclose(M.ycbcr_y(torch.full((1, 3, 1, 1), 255.0)), 235.0)


# -- SSIM ----------------------------------------------------------------------------------------
def test_ssim_identity_range_and_direction():
    pred, ref = _sample_images()
    same = M.ssim(ref, ref)
    np.testing.assert_allclose(same.numpy(), 1.0, atol=1e-12)
    s = M.ssim(pred, ref)
    assert ((s > 0) & (s < 1)).all()
    worse = torch.round((pred * 0.5).clamp(0, 1) * 255) / 255
    assert (M.ssim(worse, ref) < s).all()
    np.testing.assert_allclose(M.ssim_rgb(ref, ref).numpy(), 1.0, atol=1e-12)


def test_luma_is_pyiqas_rounded_yiq_y():
    levels = torch.tensor(
        [[0, 0, 250], [1, 1, 251], [255, 255, 255], [10, 20, 30]], dtype=torch.float32
    )
    y = M.luma_levels(levels.T.reshape(1, 3, 1, 4)).flatten()
    # exact values 28.5, 29.5 (ties: float32 arithmetic decides, as in pyiqa), 255, 18.15
    assert y.tolist() == [28.0, 30.0, 255.0, 18.0]
    assert y.dtype == torch.float32


def test_luma_equals_pyiqa_for_every_colour(pyiqa):
    from pyiqa.utils.color_util import to_y_channel

    g, b = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    for r0 in range(0, 256, 32):  # all 2^24 colours, in chunks of 32 red levels
        r = torch.arange(r0, r0 + 32.0).view(32, 1, 1).expand(32, 256, 256)
        levels = torch.stack([r, g.expand(32, -1, -1), b.expand(32, -1, -1)]).reshape(1, 3, -1, 256)
        expected = to_y_channel(levels / 255.0, 255, "yiq")
        assert torch.equal(M.luma_levels(levels), expected)


def test_ssim_rgb_averages_the_channels():
    pred, ref = _sample_images()
    per_channel = [M.ssim_levels(M.to_levels(pred)[:, c : c + 1], M.to_levels(ref)[:, c : c + 1])
                   for c in range(3)]  # fmt: skip
    np.testing.assert_allclose(
        M.ssim_rgb(pred, ref).numpy(), torch.stack(per_channel).mean(0).numpy(), atol=1e-12
    )


# -- GT-mean variants ----------------------------------------------------------------------------
def test_gtmean_undoes_a_global_gain():
    rng = np.random.default_rng(3)
    ref = (rng.integers(0, 120, (40, 48, 3)) * 2).astype(np.uint8)  # even levels
    pred = (ref // 2).astype(np.uint8)  # exactly half as bright
    p, r = _levels(pred), _levels(ref)
    assert M.psnr(p, r).item() < 20
    assert M.psnr_gtmean(p, r).item() == pytest.approx(M.PSNR_MAX_DB)
    assert M.ssim_gtmean(p, r).item() == pytest.approx(1.0, abs=1e-12)


def test_gtmean_definition_scale_clip_and_rounding():
    rng = np.random.default_rng(4)
    ref = rng.integers(0, 256, (32, 40, 3)).astype(np.uint8)
    pred = rng.integers(0, 200, (32, 40, 3)).astype(np.uint8)
    pred[:4] = 255  # saturated rows: the scaled values clip at 255

    def gray(a):
        a = a.astype(np.float64)
        return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]

    s = gray(ref).mean() / gray(pred).mean()
    assert s > 1
    scaled = np.clip(pred * s, 0, 255)  # unrounded, for PSNR
    mse = np.mean((scaled - ref) ** 2)
    expected_psnr = 10 * math.log10(255**2 / (mse + 255**2 * 1e-8))
    p, r = _levels(pred), _levels(ref)
    assert M.psnr_gtmean(p, r).item() == pytest.approx(expected_psnr, abs=1e-9)
    # SSIM scores the scaled image rounded to 8-bit levels
    rounded = _levels(np.round(scaled).astype(np.uint8))
    assert M.ssim_gtmean(p, r).item() == pytest.approx(M.ssim(rounded, r).item(), abs=1e-12)
    # and rounding is what separates it from the unrounded scaled image's PSNR
    assert M.psnr(rounded, r).item() != pytest.approx(expected_psnr, abs=1e-6)


def test_gtmean_leaves_a_black_output_unscaled():
    _, ref = _sample_images()
    black = torch.zeros_like(ref)
    np.testing.assert_allclose(M.psnr_gtmean(black, ref).numpy(), M.psnr(black, ref).numpy())
    np.testing.assert_allclose(M.ssim_gtmean(black, ref).numpy(), M.ssim(black, ref).numpy())
    assert torch.isfinite(M.psnr_gtmean(black, ref)).all()


# -- NIQE ----------------------------------------------------------------------------------------
def test_aggd_fit_matches_pyiqa_including_undefined_sides(pyiqa):
    from pyiqa.archs.func_util import estimate_aggd_param

    from llbench.metrics import _niqe

    g = torch.Generator().manual_seed(0)
    special = torch.tensor(
        [[1e-9, 2e-9, 3.0, 0.5], [-1.0, -2.0, -0.1, -3.0], [0.0] * 4, [-1.0, 2.0, -3.0, 0.0]],
        dtype=torch.float64,
    ).repeat(1, 16)  # only positive, only negative, all zero, mixed with a zero
    scale = torch.rand(300, 1, generator=g, dtype=torch.float64) ** 4
    x = torch.cat([special, torch.randn(300, 64, generator=g, dtype=torch.float64) * scale])
    theirs = estimate_aggd_param(x.view(-1, 1, 8, 8))
    for t, o in zip(theirs, _niqe._aggd(x), strict=True):
        t = t.flatten()
        assert torch.equal(torch.isnan(t), torch.isnan(o))
        ok = ~torch.isnan(t)
        # pyiqa's shape grid is float32 (0.2 + k 0.001 rounded), ours float64
        np.testing.assert_allclose(o[ok].numpy(), t[ok].numpy(), rtol=1e-6, atol=0)


def test_niqe_crops_to_whole_blocks_and_flags_flat_images():
    pred, _ = _sample_images(size=(200, 300))
    cropped = pred[..., :192, :288]
    np.testing.assert_array_equal(M.niqe(pred).numpy(), M.niqe(cropped).numpy())
    flat = torch.full((1, 3, 96, 192), 0.5)
    assert torch.isnan(M.niqe(flat)).all()
    noisy = torch.round(torch.rand(1, 3, 96, 192, generator=torch.Generator().manual_seed(0)) * 255)
    assert M.niqe(noisy / 255).item() > M.niqe(pred[:1]).item()  # noise looks less natural


def test_niqe_parameters_are_sha256_checked(monkeypatch, tmp_path):
    from llbench.metrics import _niqe

    bad = tmp_path / _niqe.PARAMS_FILE
    shutil.copyfile(_niqe.params_path(), bad)
    with bad.open("ab") as f:
        f.write(b"\0")
    _niqe._load_params_cpu.cache_clear()
    monkeypatch.setattr(_niqe, "params_path", lambda: bad)
    try:
        with pytest.raises(WeightsError, match="sha256"):
            _niqe.pristine_params(CPU, torch.float64)
        assert "sha256" in _niqe.check_params()
        monkeypatch.setattr(_niqe, "params_path", lambda: tmp_path / "missing.npz")
        _niqe._load_params_cpu.cache_clear()
        assert "not found" in _niqe.check_params()
    finally:
        monkeypatch.undo()
        _niqe._load_params_cpu.cache_clear()
    assert _niqe.check_params() is None


def test_package_data_ships_with_license_and_notice():
    from llbench.metrics import _niqe

    folder = Path(str(_niqe.params_path())).parent
    notice = (folder / "NOTICE.txt").read_text()
    assert "BasicSR" in notice and "Apache" in notice and _niqe.PARAMS_SHA256 in notice
    assert "Apache License" in (folder / "LICENSE-BasicSR-Apache-2.0.txt").read_text()
    mu, cov = _niqe.pristine_params(CPU, torch.float64)
    assert mu.shape == (36,) and cov.shape == (36, 36)
    assert torch.allclose(cov, cov.T)


# -- LOE -----------------------------------------------------------------------------------------
def _loe_brute(li: np.ndarray, le: np.ndarray) -> float:
    a, b = li.ravel().astype(int), le.ravel().astype(int)
    ua = a[:, None] >= a[None, :]
    ub = b[:, None] >= b[None, :]
    return float((ua ^ ub).sum(axis=1).mean())


def test_loe_counts_order_flips_like_the_pairwise_definition():
    rng = np.random.default_rng(5)
    low = rng.integers(0, 60, (30, 40, 3)).astype(np.uint8)
    enh = np.clip(low.astype(int) * 3 + rng.integers(-20, 20, low.shape), 0, 255).astype(np.uint8)
    expected = _loe_brute(low.max(axis=2), enh.max(axis=2))
    got = M.loe(_levels(enh), _levels(low)).item()
    assert got == pytest.approx(expected, abs=1e-9)
    assert got > 0


def test_loe_identity_and_order_preserving_gain_are_zero():
    rng = np.random.default_rng(6)
    low = rng.integers(0, 128, (120, 180, 3)).astype(np.uint8)
    assert M.loe(_levels(low), _levels(low)).item() == 0.0
    doubled = (low.astype(int) * 2).astype(np.uint8)  # strictly increasing: same order, no resize
    small = low[:40, :45]
    assert M.loe(_levels(small.astype(int) * 2), _levels(small)).item() == 0.0
    # resized maps are rounded to integer levels, so ties of the input map can split in the
    # doubled one: a few flips, far from the ~3700 of an order reversal (50 x 75 pixels)
    assert 0 < M.loe(_levels(doubled), _levels(low)).item() < 0.02 * 50 * 75


def test_loe_order_flip_is_large():
    rng = np.random.default_rng(7)
    grey = rng.integers(0, 256, (40, 45, 1)).astype(np.uint8)
    low = np.repeat(grey, 3, axis=2)  # lightness = the grey level
    flipped = 255 - low
    light = grey.ravel().astype(int)
    # every pair with different lightness flips order (ties keep ">=" both ways)
    expected = np.mean([(light != v).sum() for v in light])
    got = M.loe(_levels(flipped), _levels(low)).item()
    assert got == pytest.approx(expected)
    assert got > 0.9 * light.size


def test_loe_downsamples_to_a_50_pixel_short_side():
    assert M.loe_size(400, 600) == (50, 75)
    assert M.loe_size(1000, 1500) == (50, 75)
    assert M.loe_size(333, 500) == (50, 75)  # round(75.08)
    assert M.loe_size(600, 401) == (75, 50)  # round(74.8)
    assert M.loe_size(40, 60) == (40, 60)  # already small: kept
    rng = np.random.default_rng(8)
    low = rng.integers(0, 80, (60, 90, 3)).astype(np.uint8)
    enh = np.clip(low.astype(int) * 2 + rng.integers(-30, 30, low.shape), 0, 255).astype(np.uint8)
    p, lo = _levels(enh), _levels(low)
    small = M.loe(p, lo)
    full = M.loe(p, lo, short_side=None)
    assert small.item() != full.item()
    # the downsampled value counts flips among the 50 x 75 resized lightness maps
    from llbench.metrics._resize import imresize_uint8

    def lightness(t):
        return imresize_uint8(M.to_levels(t, torch.float64).amax(1), (50, 75))[0].numpy()

    assert small.item() == pytest.approx(_loe_brute(lightness(lo), lightness(p)))
    assert full.item() == pytest.approx(_loe_brute(low.max(2), enh.max(2)))


def _matlab_imresize_uint8(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """MATLAB's ``imresize(A, size)`` (bicubic, antialiased) of a uint8 H x W image, written out
    from imresize.m: ``contributions`` (Keys cubic, a = -0.5, stretched by 1/scale when shrinking,
    weights normalized, indices mirrored with the edge repeated); the dimension with the smaller
    scale first (a stable ``sort(scale)``: rows on ties); the intermediate result stored in the
    input's class, i.e. rounded half away from zero and saturated to 0..255 after each pass."""

    def cubic(x):
        ax = np.abs(x)
        inner = (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
        return inner + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))

    def resize_dim(a, dim, n_out):
        n_in = a.shape[dim]
        scale, width = n_out / n_in, 4.0
        kernel = cubic
        if scale < 1:
            kernel, width = (lambda x: scale * cubic(scale * x)), width / scale
        u = np.arange(1, n_out + 1) / scale + 0.5 * (1 - 1 / scale)  # 1-based
        idx = np.floor(u - width / 2)[:, None] + np.arange(math.ceil(width) + 2)[None, :]
        w = kernel(u[:, None] - idx)
        w /= w.sum(axis=1, keepdims=True)
        aux = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])  # 0-based mirror
        idx = aux[np.mod(idx - 1, 2 * n_in).astype(int)]
        moved = np.moveaxis(a.astype(np.float64), dim, 0)
        out = np.einsum("ok,ok...->o...", w, moved[idx])
        # a value at x.5 within rounding error would make the comparison depend on the order of
        # the floating-point sum (as MATLAB's own result does): the test data must avoid them
        assert np.abs(out - np.floor(out) - 0.5).min() > 1e-6
        return np.moveaxis(np.clip(np.floor(out + 0.5), 0, 255), 0, dim)

    scale = (size[0] / a.shape[0], size[1] / a.shape[1])
    for dim in sorted((0, 1), key=lambda d: scale[d]):
        a = resize_dim(a, dim, size[dim])
    return a


@pytest.mark.parametrize("shape", [(120, 180), (101, 150), (150, 101)])
def test_loe_downsampling_is_matlab_imresize_of_uint8_maps(shape):
    # the paper-literal MATLAB LOE code resizes the uint8 lightness maps with imresize, which
    # stores the first pass in uint8 too (rounded and saturated) and resizes the dimension with
    # the smaller scale first (101 x 150 -> 50 x 74: columns, 74/150 < 50/101, first)
    rng = np.random.default_rng(9)
    low = rng.integers(0, 90, (*shape, 3)).astype(np.uint8)
    enh = np.clip(low.astype(int) * 2 + rng.integers(-40, 40, low.shape), 0, 255).astype(np.uint8)
    size = M.loe_size(*shape)
    expected = _loe_brute(
        _matlab_imresize_uint8(low.max(2), size), _matlab_imresize_uint8(enh.max(2), size)
    )
    assert M.loe(_levels(enh), _levels(low)).item() == pytest.approx(expected, abs=1e-9)


# -- batching, dtypes, devices -------------------------------------------------------------------
ALL_PAIRS = ["psnr", "psnr_y", "ssim", "ssim_rgb", "psnr_gtmean", "ssim_gtmean"]


@pytest.mark.parametrize("name", [*ALL_PAIRS, "niqe", "loe"])
def test_batch_equals_single_images(name):
    pred, ref = _sample_images(size=(96, 120))
    low = torch.round(ref * 0.2 * 255) / 255

    def call(p, r, lo):
        if name == "niqe":
            return M.niqe(p)
        if name == "loe":
            return M.loe(p, lo)
        return getattr(M, name)(p, r)

    batch = call(pred, ref, low)
    assert batch.shape == (3,) and batch.dtype == torch.float64
    singles = torch.cat([call(pred[i : i + 1], ref[i : i + 1], low[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(batch.numpy(), singles.numpy(), rtol=1e-12, atol=1e-12)
    assert len(set(batch.tolist())) == 3  # three different images, three different scores


def test_inputs_as_uint8_or_float64_give_the_same_scores_and_are_not_modified():
    pred, ref = _sample_images()
    before = pred.clone()
    base = M.ssim(pred, ref)
    u8 = (pred * 255).round().to(torch.uint8), (ref * 255).round().to(torch.uint8)
    np.testing.assert_allclose(M.ssim(*u8).numpy(), base.numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(
        M.psnr(pred.double(), ref.double()).numpy(), M.psnr(pred, ref).numpy(), atol=0
    )
    # values off the 8-bit grid are snapped to it
    off = (pred + 0.3 / 255).clamp(0, 1)
    np.testing.assert_allclose(M.psnr(off, ref).numpy(), M.psnr(pred, ref).numpy(), atol=0)
    assert torch.equal(pred, before)


def test_metric_classes_run_on_their_device():
    from llbench.metrics import LOE, NIQE, PSNR, SSIM

    pred, ref = _sample_images(size=(96, 128))
    low = torch.round(ref * 0.2 * 255) / 255
    for metric in (PSNR(CPU), SSIM("cpu"), NIQE(CPU), LOE(CPU)):
        out = metric(pred, ref, low)
        assert out.device == CPU and out.shape == (3,) and out.dtype == torch.float64
        assert torch.isfinite(out).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_cpu():  # pragma: no cover - runs where a GPU is present
    pred, ref = _sample_images(size=(192, 288))
    low = torch.round(ref * 0.2 * 255) / 255
    dev = torch.device("cuda")
    for name in ALL_PAIRS:
        fn = getattr(M, name)
        cuda = fn(pred.to(dev), ref.to(dev))
        assert cuda.device.type == "cuda"
        np.testing.assert_allclose(cuda.cpu().numpy(), fn(pred, ref).numpy(), atol=1e-9)
    np.testing.assert_allclose(M.niqe(pred.to(dev)).cpu().numpy(), M.niqe(pred).numpy(), atol=1e-6)
    np.testing.assert_allclose(
        M.loe(pred.to(dev), low.to(dev)).cpu().numpy(), M.loe(pred, low).numpy(), atol=0
    )


# -- errors --------------------------------------------------------------------------------------
def test_shape_mismatch_is_a_clear_error():
    a = torch.rand(1, 3, 32, 40)
    b = torch.rand(1, 3, 32, 36)
    with pytest.raises(MetricInputError, match=r"differ in shape.*40 x 32.*36 x 32") as exc:
        M.psnr(a, b)
    assert isinstance(exc.value, LLBenchError) and isinstance(exc.value, ValueError)
    with pytest.raises(MetricInputError, match="low-light input"):
        M.loe(a, b)
    with pytest.raises(MetricInputError, match=r"N x 3 x H x W.*unsqueeze"):
        M.ssim(a[0], a[0])
    with pytest.raises(MetricInputError, match=r"N x 3 x H x W"):
        M.psnr(a[:, :1], a[:, :1])
    with pytest.raises(MetricInputError, match="at least 96 x 96"):
        M.niqe(a)
    with pytest.raises(MetricInputError, match="at least 11 x 11"):
        M.ssim(a[..., :8, :8], a[..., :8, :8])
    with pytest.raises(MetricInputError, match="float .* or uint8"):
        M.psnr(a.long(), a.long())


def test_metric_classes_say_what_input_is_missing():
    from llbench.metrics import LOE, PSNR

    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(MetricInputError, match="reference"):
        PSNR(CPU)(x)
    with pytest.raises(MetricInputError, match="low-light input"):
        LOE(CPU)(x, x)


# -- registration --------------------------------------------------------------------------------
def test_plugin_registers_the_core_metrics(home, monkeypatch):
    monkeypatch.setenv("LLBENCH_PLUGINS", "core-metrics")
    from llbench.api.metrics import Metric
    from llbench.pluginhost.host import get_host

    host = get_host()
    names = {"psnr", "psnr_y", "ssim", "ssim_rgb", "psnr_gtmean", "ssim_gtmean", "niqe", "loe"}
    assert names <= set(host.registry("metric").names())
    for name in names:
        spec = host.metric(name)
        assert host.registry("metric").origin(name) == "core-metrics"
        assert len(spec.definition) > 80 and spec.available() is None
        assert isinstance(spec.build(CPU, {}), Metric)
    assert host.metric("psnr").needs == {"reference"} and host.metric("psnr").higher_better
    assert host.metric("psnr").score_range == (0.0, 80.0)
    assert host.metric("ssim").kind == "full-reference" and host.metric("ssim").score_range == (
        0,
        1,
    )
    assert host.metric("niqe").kind == "no-reference" and not host.metric("niqe").higher_better
    assert host.metric("niqe").needs == frozenset()
    assert host.metric("loe").needs == {"input"} and not host.metric("loe").higher_better
    assert "80 dB" in host.metric("psnr").definition
    assert "clipped" in host.metric("psnr_gtmean").definition
    assert "rounded" in host.metric("ssim_gtmean").definition


def test_ssim_rgb_gtmean_is_ssim_rgb_of_the_rounded_scaled_output():
    pred, ref = _sample_images()
    p, r = M.to_levels(pred, torch.float64), M.to_levels(ref, torch.float64)
    scaled = M.gtmean_scale(p, r).round_() / 255.0
    np.testing.assert_allclose(
        M.ssim_rgb_gtmean(pred, ref).numpy(), M.ssim_rgb(scaled, ref).numpy(), atol=1e-9
    )
    # a pure global gain is undone: the score equals ssim_rgb of the reference with itself
    dim = (ref * 0.5).clamp(0, 1)
    assert float(M.ssim_rgb_gtmean(dim, ref).min()) > float(M.ssim_rgb(dim, ref).max())
