"""Metric variants of the seed papers (llbench.metrics.variants): ssim_skimage against
scikit-image itself, ssim_matlab against an independent numpy transcription of ssim.m and values
computed by hand, mse, and the registered specs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llbench.io.images import read_image
from llbench.metrics import functional as M
from llbench.metrics import matlab as MM
from llbench.metrics.functional import MetricInputError
from llbench.metrics.skimage_ssim import ssim_skimage

skm = pytest.importorskip("skimage.metrics")

NTSC = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])


def _t(a: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 1 x 3 x H x W float levels k / 255."""
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).float() / 255.0


@pytest.fixture(scope="module")
def synthetic_pairs(tmp_path_factory) -> list[tuple[np.ndarray, np.ndarray]]:
    """The embedded dataset's 9 test pairs (240 x 320), built through the plugin host."""
    from llbench.pluginhost.host import get_host

    spec = get_host().registry("dataset").get("synthetic")
    ds = spec.build(tmp_path_factory.mktemp("data"))
    ds.prepare()
    pairs = []
    for s in ds.samples("test"):
        low = (read_image(s.low) * 255).round().astype(np.uint8)
        high = (read_image(s.high) * 255).round().astype(np.uint8)
        pairs.append((low, high))
    return pairs


# -- ssim_skimage ---------------------------------------------------------------------------------
def test_ssim_skimage_equals_skimage_on_the_embedded_dataset(synthetic_pairs):
    outs, refs, expected = [], [], []
    for low, high in synthetic_pairs:
        # three kinds of output per pair: the dark input, a brightened and a noisy version
        bright = np.clip(low.astype(np.float64) * 3.1 + 4, 0, 255).round().astype(np.uint8)
        rng = np.random.default_rng(int(low[0, 0, 0]))
        noisy = np.clip(bright + rng.normal(0, 12, bright.shape), 0, 255).round().astype(np.uint8)
        for out in (low, bright, noisy):
            outs.append(_t(out))
            refs.append(_t(high))
            expected.append(skm.structural_similarity(out, high, channel_axis=2, data_range=255))
    got = ssim_skimage(torch.cat(outs), torch.cat(refs))  # one batched call
    assert got.dtype == torch.float64 and got.shape == (len(expected),)
    dev = np.abs(got.numpy() - np.array(expected))
    assert dev.max() < 1e-6, dev.max()
    assert len(set(np.round(expected, 3))) > 10  # the cases really differ


@pytest.mark.parametrize("hw", [(7, 7), (7, 30), (19, 8), (33, 41)])
def test_ssim_skimage_small_and_odd_sizes(hw):
    rng = np.random.default_rng(sum(hw))
    a = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    want = skm.structural_similarity(a, b, channel_axis=2, data_range=255)
    got = ssim_skimage(_t(a), _t(b)).item()
    assert abs(got - want) < 1e-6
    # uint8 input holds the levels themselves: same value
    u = ssim_skimage(_t(a).mul(255).round().byte(), _t(b).mul(255).round().byte()).item()
    assert u == got


def test_ssim_skimage_identity_negative_and_errors():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    assert ssim_skimage(_t(a), _t(a)).item() == pytest.approx(1.0, abs=1e-7)
    inv = 255 - a  # anti-correlated: negative, as skimage (no clamping)
    want = skm.structural_similarity(inv, a, channel_axis=2, data_range=255)
    assert want < 0 and ssim_skimage(_t(inv), _t(a)).item() == pytest.approx(want, abs=1e-6)
    with pytest.raises(MetricInputError, match="at least 7 x 7"):
        ssim_skimage(torch.zeros(1, 3, 6, 9), torch.zeros(1, 3, 6, 9))
    with pytest.raises(MetricInputError, match="differ in shape"):
        ssim_skimage(torch.zeros(1, 3, 9, 9), torch.zeros(1, 3, 9, 10))


# -- ssim_matlab: an independent numpy transcription of ssim.m -------------------------------------
def _np_rgb2gray(a: np.ndarray) -> np.ndarray:
    coef = np.linalg.inv(NTSC)[0]
    return np.floor(a.astype(np.float64) @ coef + 0.5)


def _np_imfilter_symmetric_box(img: np.ndarray, f: int) -> np.ndarray:
    """imfilter(img, ones(f)/f^2, 'symmetric', 'same'): correlation, centre floor((f+1)/2)."""
    c = (f + 1) // 2 - 1  # 0-based centre
    padded = np.pad(img, ((c, f - 1 - c), (c, f - 1 - c)), mode="symmetric")
    out = np.zeros_like(img)
    for i in range(f):
        for j in range(f):
            out += padded[i : i + img.shape[0], j : j + img.shape[1]] / (f * f)
    return out


def _np_filter2_valid(win: np.ndarray, img: np.ndarray) -> np.ndarray:
    v = np.lib.stride_tricks.sliding_window_view(img, win.shape)
    return np.einsum("ijkl,kl->ij", v, win)


def _np_ssim_m(a: np.ndarray, b: np.ndarray) -> float:
    img1, img2 = _np_rgb2gray(a), _np_rgb2gray(b)
    m, n = img1.shape
    f = max(1, int(np.floor(min(m, n) / 256 + 0.5)))
    if f > 1:
        img1 = _np_imfilter_symmetric_box(img1, f)[::f, ::f]
        img2 = _np_imfilter_symmetric_box(img2, f)[::f, ::f]
    x = np.arange(-5, 6)
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5**2))
    win = g / g.sum()  # fspecial('gaussian', 11, 1.5)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = _np_filter2_valid(win, img1), _np_filter2_valid(win, img2)
    s11 = _np_filter2_valid(win, img1 * img1) - mu1 * mu1
    s22 = _np_filter2_valid(win, img2 * img2) - mu2 * mu2
    s12 = _np_filter2_valid(win, img1 * img2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / (
        (mu1 * mu1 + mu2 * mu2 + c1) * (s11 + s22 + c2)
    )
    return float(ssim_map.mean())


@pytest.mark.parametrize(("hw", "f"), [((40, 52), 1), ((384, 395), 2), ((641, 650), 3)])
def test_ssim_matlab_matches_a_numpy_transcription_of_ssim_m(hw, f):
    assert MM.matlab_downsample_factor(*hw) == f
    rng = np.random.default_rng(hw[0])
    base = rng.integers(0, 256, (hw[0] // 8 + 1, hw[1] // 8 + 1, 3)).astype(np.float64)
    smooth = np.kron(base, np.ones((8, 8, 1)))[: hw[0], : hw[1]]  # structure at every scale
    a = np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).round().astype(np.uint8)
    b = np.clip(smooth * 0.7 + rng.normal(0, 8, smooth.shape), 0, 255).round().astype(np.uint8)
    got = MM.ssim_matlab(_t(a), _t(b)).item()
    assert got == pytest.approx(_np_ssim_m(a, b), abs=1e-9)


def test_ssim_matlab_hand_computed_flat_images():
    # flat grey images: no variance, so SSIM = (2 a b + C1) / (a^2 + b^2 + C1)
    a = torch.full((1, 3, 16, 20), 100 / 255.0)
    b = torch.full((1, 3, 16, 20), 50 / 255.0)
    c1 = (0.01 * 255) ** 2
    want = (2 * 100 * 50 + c1) / (100**2 + 50**2 + c1)  # 0.800104...
    assert MM.ssim_matlab(a, b).item() == pytest.approx(want, rel=1e-12)
    assert MM.ssim_matlab(a, a).item() == pytest.approx(1.0, abs=1e-12)


def test_matlab_rgb2gray_by_hand():
    rgb = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 3, 217], [255, 255, 255]])
    levels = rgb.T.reshape(1, 3, 1, 5).float()
    got = MM.matlab_rgb2gray(levels).flatten().tolist()
    # 76.2287 -> 76, 149.6960 -> 150, 29.0753 -> 29, 26.5037 -> 27 (the documented rounded
    # weights 0.2989/0.5870/0.1140 give 26.499 -> 26 here), 255
    assert got == [76.0, 150.0, 29.0, 27.0, 255.0]


@pytest.mark.parametrize(
    ("hw", "f"),
    [((400, 600), 2), ((383, 1000), 1), ((384, 384), 2), ((640, 700), 3), ((10, 10), 1)],
)
def test_matlab_downsample_factor(hw, f):
    assert MM.matlab_downsample_factor(*hw) == f


def test_matlab_downsample_by_hand():
    x = torch.arange(25, dtype=torch.float64).reshape(1, 1, 5, 5)  # x[i, j] = 5 i + j
    got = MM.matlab_downsample(x, 2)[0, 0]
    # f = 2: the mean of rows/cols i, i+1 at i = 0, 2, 4; row/col 5 mirrors row/col 4
    want = torch.tensor([[3.0, 5.0, 6.5], [13.0, 15.0, 16.5], [20.5, 22.5, 24.0]])
    assert torch.equal(got, want.double())
    x3 = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4)
    # f = 3: windows i-1..i+1 at i = 0, 3; row -1 mirrors row 0, row 4 mirrors row 3
    got3 = MM.matlab_downsample(x3, 3)[0, 0]
    r = [(0 + 0 + 1) / 3, (2 + 3 + 3) / 3]
    want3 = torch.tensor([[4 * a + b for b in r] for a in r], dtype=torch.float64)
    assert torch.allclose(got3, want3, atol=1e-12)


def test_ssim_matlab_too_small_after_downsampling():
    with pytest.raises(MetricInputError, match="at least 11 x 11"):
        MM.ssim_matlab(torch.zeros(1, 3, 10, 40), torch.zeros(1, 3, 10, 40))


# -- mse -------------------------------------------------------------------------------------------
def test_mse_by_hand():
    a = torch.zeros(2, 3, 2, 2)
    b = torch.zeros(2, 3, 2, 2)
    b[0, 0, 0, 0] = 51 / 255.0  # one of 12 values differs by 0.2
    got = M.mse(a, b)
    assert got[0].item() == pytest.approx(0.04 / 12, rel=1e-12) and got[1].item() == 0.0


# -- registration ----------------------------------------------------------------------------------
def test_specs_registered_with_definitions():
    from llbench.pluginhost.host import get_host

    reg = get_host().registry("metric")
    want = {
        "ssim_skimage": ("full-reference", True),
        "ssim_matlab": ("full-reference", True),
        "mse": ("full-reference", False),
        "ceiq": ("no-reference", True),
        "psnr_sgz": ("full-reference", True),
        "ssim_sgz": ("full-reference", True),
        "mse_sgz": ("full-reference", False),
    }
    for name, (kind, higher) in want.items():
        spec = reg.get(name)
        assert reg.origin(name) == "metric-variants"
        assert (spec.kind, spec.higher_better, spec.default) == (kind, higher, False)
        assert len(spec.definition) > 150
    assert "reference" in reg.get("ssim_skimage").needs
    assert reg.get("ceiq").needs == frozenset({"weights"})
    m = reg.get("ssim_skimage").build(torch.device("cpu"), {})
    x = torch.rand(2, 3, 12, 12)
    assert torch.equal(m(x, x.flip(-1)), ssim_skimage(x, x.flip(-1)))
    with pytest.raises(MetricInputError, match="no reference"):
        m(x)
    assert math.isclose(reg.get("mse").build(torch.device("cpu"), {})(x, x).sum().item(), 0.0)


def test_ssim_skimage_is_safe_from_concurrent_threads():
    """Working buffers are kept per thread: images scored at once in threads get their own
    values, not a mix."""
    from concurrent.futures import ThreadPoolExecutor

    g = torch.Generator().manual_seed(5)
    pairs = [(torch.rand(1, 3, 90, 70, generator=g), torch.rand(1, 3, 90, 70, generator=g))]
    pairs += [(torch.rand(1, 3, 200, 150, generator=g), torch.rand(1, 3, 200, 150, generator=g))]
    alone = [ssim_skimage(a, b).item() for a, b in pairs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            got = list(pool.map(lambda ab: ssim_skimage(*ab).item(), pairs * 4))
            assert got == alone * 4


# -- SGZ's REF.py: OpenCV greyscale PNG read, per-image min-max, old skimage defaults -----------
# A 3 x 6 RGB PNG and what OpenCV 5.0 gave for it: cv2.imread(IMREAD_GRAYSCALE), then
# cv2.normalize(alpha=0, beta=1, NORM_MINMAX, CV_32F) (float32 values as hex).
_SGZ_RGB = [
    [[77, 77, 77], [255, 255, 254], [1, 0, 0], [255, 145, 167], [97, 86, 90], [112, 36, 22]],
    [
        [218, 110, 194],
        [18, 205, 219],
        [141, 136, 0],
        [22, 14, 182],
        [134, 178, 235],
        [129, 147, 51],
    ],
    [[181, 1, 28], [24, 140, 83], [199, 134, 237], [98, 194, 249], [113, 68, 90], [188, 47, 13]],
]
_SGZ_GRAY = [[77, 254, 0, 180, 89, 57], [151, 150, 121, 35, 171, 130], [57, 98, 165, 171, 83, 85]]
_SGZ_NORM = [
    ["0x1.366cdap-2", "0x1p+0", "0x0p+0", "0x1.6ad5acp-1", "0x1.66cd9cp-2", "0x1.cb972ep-3"],
    [
        "0x1.3060c2p-1",
        "0x1.2e5cbap-1",
        "0x1.e7cfap-2",
        "0x1.1a3468p-3",
        "0x1.58b162p-1",
        "0x1.060c18p-1",
    ],
    [
        "0x1.cb972ep-3",
        "0x1.8b162cp-2",
        "0x1.4c9932p-1",
        "0x1.58b162p-1",
        "0x1.4e9d3ap-2",
        "0x1.56ad5ap-2",
    ],
]


def _rgb_tensor(rgb) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.uint8).permute(2, 0, 1)[None]


def test_sgz_grey_read_and_normalisation_equal_opencv():
    from llbench.metrics import sgz_ref

    gray = sgz_ref.gray_png(_rgb_tensor(_SGZ_RGB))
    assert gray[0].tolist() == _SGZ_GRAY  # libpng truncation; (77, 77, 77) passes through
    by_hand = (9797 * 255 + 19234 * 145 + 3737 * 167) >> 15
    assert by_hand == 180 == gray[0, 0, 3].item()
    norm = sgz_ref.minmax_float32(gray)
    assert norm.dtype == torch.float32
    assert [[float.hex(v) for v in row] for row in norm[0].tolist()] == [
        [float.hex(float.fromhex(h)) for h in row] for row in _SGZ_NORM
    ]
    flat = sgz_ref.minmax_float32(torch.full((1, 4, 4), 9, dtype=torch.int32))
    assert flat.abs().sum().item() == 0.0  # cv2.normalize of a constant image: zeros


def test_sgz_scores_equal_the_old_skimage_on_the_normalised_images():
    from skimage.metrics import structural_similarity

    from llbench.metrics import sgz_ref

    g = torch.Generator().manual_seed(3)
    pred = torch.rand(2, 3, 40, 53, generator=g)
    ref = (pred * 0.5 + 0.2 * torch.rand(2, 3, 40, 53, generator=g)).clamp(0, 1)
    a, b = (sgz_ref.minmax_float32(sgz_ref.gray_png(M.to_levels(t))).numpy() for t in (pred, ref))
    for i in range(2):  # compare_ssim cast float32 to float64; data range 2 for float32
        want = structural_similarity(a[i].astype(np.float64), b[i].astype(np.float64), data_range=2)
        assert sgz_ref.ssim_sgz(pred, ref)[i].item() == pytest.approx(want, abs=1e-12)
        mse = np.mean(np.square(a[i] - b[i]), dtype=np.float64)  # float32 squares, float64 mean
        assert sgz_ref.mse_sgz(pred, ref)[i].item() == mse
        assert sgz_ref.psnr_sgz(pred, ref)[i].item() == pytest.approx(10 * np.log10(1 / mse))
    assert math.isinf(sgz_ref.psnr_sgz(pred, pred)[0].item())  # identical images, as NumPy
    with pytest.raises(MetricInputError, match="at least 7 x 7"):
        sgz_ref.ssim_sgz(torch.zeros(1, 3, 6, 9), torch.zeros(1, 3, 6, 9))


def test_sgz_ref_pipeline_with_opencv_when_installed(tmp_path):
    """The whole REF.py pipeline on PNG files, where OpenCV is installed (not a dependency)."""
    cv2 = pytest.importorskip("cv2")
    from PIL import Image
    from skimage.metrics import structural_similarity

    from llbench.io.images import read_image, to_tensor
    from llbench.metrics import sgz_ref

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (60, 75, 3), dtype=np.uint8)
    other = np.clip(base * 0.6 + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for arr, p in zip((base, other), paths, strict=True):
        Image.fromarray(arr).save(p)
    norm = []
    for p in paths:
        grey = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        out = np.zeros(grey.shape, np.float32)
        cv2.normalize(grey, out, alpha=0, beta=1, norm_type=cv2.NORM_MINMAX, dtype=cv2.CV_32F)
        norm.append(out.astype(np.float64))
    pred, ref = (to_tensor(read_image(p)) for p in paths)
    want = structural_similarity(norm[0], norm[1], data_range=2)
    assert sgz_ref.ssim_sgz(pred, ref).item() == pytest.approx(want, abs=1e-7)
