"""CEIQ (llbench.metrics.ceiq): each MATLAB step against an independent numpy transcription, the
LIBSVM model loading with files generated in the released layout, and the missing-model path."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from llbench.errors import WeightsError
from llbench.metrics import ceiq as C

scipy_io = pytest.importorskip("scipy.io")
import scipy.ndimage  # noqa: E402
import scipy.sparse  # noqa: E402

NTSC = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])


def _gray_t(g: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(g.astype(np.float64)).reshape(1, 1, *g.shape)


def _images(seed: int = 0) -> list[np.ndarray]:
    """Grey uint8 test images: dark and skewed, uniform noise, a few levels only, mid-grey ramp."""
    rng = np.random.default_rng(seed)
    dark = np.clip(rng.gamma(1.5, 12.0, (37, 45)), 0, 255).astype(np.uint8)
    noise = rng.integers(0, 256, (30, 41), dtype=np.uint8)
    few = rng.choice(np.array([3, 90, 91, 250], dtype=np.uint8), (33, 29))
    ramp = np.tile(np.linspace(60, 140, 64).round().astype(np.uint8), (24, 1))
    return [dark, noise, few, ramp]


# -- independent numpy transcriptions of the MATLAB functions ---------------------------------------
def _np_histeq(a: np.ndarray, m: int = 64) -> np.ndarray:
    """histeq.m: createTransformationToIntensityImage, written out with explicit matrices."""
    n = 256
    numel = a.size
    nn = np.bincount(a.ravel(), minlength=n).astype(np.float64)
    cum = np.cumsum(nn)
    hgram = np.ones(m) * (numel / m)
    hgram = hgram * (numel / hgram.sum())
    cumd = np.cumsum(hgram)
    tol = np.ones((m, 1)) * np.min(np.vstack([np.r_[nn[: n - 1], 0], np.r_[0, nn[1:n]]]), 0) / 2
    err = (cumd[:, None] * np.ones((1, n)) - np.ones((m, 1)) * cum[None, :]) + tol
    err[err < -numel * np.sqrt(np.finfo(float).eps)] = numel
    t = np.argmin(err, axis=0) / (m - 1)
    return np.floor(255.0 * t[a] + 0.5).astype(np.uint8)  # uint8(255 * T(a + 1))


def _np_imhist(a: np.ndarray, bins: int) -> np.ndarray:
    """Bin p (1-based) holds 255 (p - 1.5) / (bins - 1) <= x < 255 (p - 0.5) / (bins - 1)."""
    edges = 255.0 * (np.arange(bins + 1) - 0.5) / (bins - 1)
    return np.histogram(a.ravel().astype(np.float64), bins=edges)[0]


def _np_builtin_ssim(a: np.ndarray, b: np.ndarray) -> float:
    x = np.arange(-5, 6)
    g = np.exp(-(x**2) / (2 * 1.5**2))
    g /= g.sum()
    w = np.outer(g, g)

    def filt(im):
        return scipy.ndimage.correlate(im, w, mode="nearest")  # 'replicate' padding

    a, b = a.astype(np.float64), b.astype(np.float64)
    mx, my = filt(a), filt(b)
    sx, sy, sxy = filt(a * a) - mx**2, filt(b * b) - my**2, filt(a * b) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float(
        (((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sx + sy + c2))).mean()
    )


def _np_features(rgb: np.ndarray) -> np.ndarray:
    g = np.floor(rgb.astype(np.float64) @ np.linalg.inv(NTSC)[0] + 0.5).astype(np.uint8)
    e = _np_histeq(g)
    h1 = _np_imhist(g, 128) / g.size
    h2 = _np_imhist(e, 128) / g.size
    ok = (h1 > 0) & (h2 > 0)
    h1, h2 = h1[ok], h2[ok]
    return np.array(
        [
            _np_builtin_ssim(g, e),
            -np.sum(h1 * np.log2(h1)),
            -np.sum(h2 * np.log2(h2)),
            -np.sum(h1 * np.log2(h2)),
            -np.sum(h2 * np.log2(h1)),
        ]
    )


# -- the steps -------------------------------------------------------------------------------------
def test_histeq_matches_histeq_m():
    for g in _images():
        got = C.matlab_histeq(_gray_t(g))[0, 0].numpy().astype(np.uint8)
        assert np.array_equal(got, _np_histeq(g))
        allowed = set(np.floor(255 * np.arange(64) / 63 + 0.5).astype(int).tolist())
        assert set(np.unique(got).tolist()) <= allowed
    # batched: two images at once give each its own mapping
    a, b = _images()[0][:24, :29], _images()[2][:24, :29]
    both = C.matlab_histeq(torch.cat([_gray_t(a), _gray_t(b)]))
    assert np.array_equal(both[1, 0].numpy().astype(np.uint8), _np_histeq(b))


def test_imhist_128_bins():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    got = C.matlab_imhist(_gray_t(levels), 128)[0].numpy()
    assert np.array_equal(got, _np_imhist(levels, 128))
    # by hand: v -> floor(v * 127 / 255 + 1/2): 0 and 1 (0.498) -> bin 0, 2 (0.996) -> bin 1,
    # 254 (127.0) and 255 -> bin 127
    assert got[0] == 2 and got[1] == 2 and got[-1] == 2 and got.sum() == 256


def test_builtin_ssim_matches_replicate_padded_reference():
    for g in _images(1):
        e = _np_histeq(g)
        got = C.matlab_builtin_ssim(_gray_t(g), _gray_t(e)).item()
        assert got == pytest.approx(_np_builtin_ssim(g, e), abs=1e-12)


def test_features_match_ceiq_m_transcription():
    rng = np.random.default_rng(5)
    rgb = [
        np.clip(rng.gamma(2.0, 15.0, (40, 52, 3)), 0, 255).astype(np.uint8),
        rng.integers(0, 256, (40, 52, 3), dtype=np.uint8),
    ]
    batch = torch.cat([torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0) for a in rgb])
    got = C.ceiq_features(batch.float() / 255.0)
    assert got.shape == (2, 5) and got.dtype == torch.float64
    for i, a in enumerate(rgb):
        assert np.allclose(got[i].numpy(), _np_features(a), rtol=0, atol=1e-12)
    # uint8 input holds the levels: same features
    assert torch.equal(C.ceiq_features(batch), got)


# -- the LIBSVM model ------------------------------------------------------------------------------
def _write_model(path, svs, coef, rho, kernel=0, gamma=0.2, svm_type=3, drop=()):
    """A model.mat as LIBSVM's MATLAB interface saves it (`save model.mat model`)."""
    fields = {
        "Parameters": np.array([[svm_type], [kernel], [3], [gamma], [0.0]]),
        "nr_class": np.uint8(2),
        "totalSV": np.uint16(len(coef)),
        "rho": np.array([[rho]]),
        "Label": np.zeros((0, 0), dtype=np.uint8),
        "sv_indices": np.arange(1, len(coef) + 1, dtype=np.uint16).reshape(-1, 1),
        "ProbA": np.zeros((0, 0), dtype=np.uint8),
        "ProbB": np.zeros((0, 0), dtype=np.uint8),
        "nSV": np.zeros((0, 0), dtype=np.uint8),
        "sv_coef": np.asarray(coef, dtype=np.float64).reshape(-1, 1),
        "SVs": scipy.sparse.csc_matrix(np.asarray(svs, dtype=np.float64)),
    }
    for k in drop:
        fields.pop(k)
    scipy_io.savemat(path, {"model": fields})
    return path


SVS = np.array([[0.5, 1.0, 2.0, 0.0, 3.0], [0.1, 0.0, 4.0, 2.0, 5.0], [0.9, 3.0, 1.0, 1.0, 6.0]])
COEF = np.array([0.25, -0.5, 0.125])


def test_linear_model_predicts_w_dot_x_minus_rho(tmp_path):
    model = C.load_libsvm_mat(_write_model(tmp_path / "m.mat", SVS, COEF, -1.25))
    assert (model.svm_type, model.kernel) == (3, 0)
    x = torch.tensor([[0.3, 1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    w = COEF @ SVS  # by hand: [0.1875, 0.625, -1.375, -0.875, -1.0]
    want = x.numpy() @ w + 1.25
    assert np.allclose(model.predict(x).numpy(), want, atol=1e-14)
    assert np.allclose(w, [0.1875, 0.625, -1.375, -0.875, -1.0])
    assert model.predict(x)[1].item() == pytest.approx(0.1875 + 1.25)


def test_rbf_model(tmp_path):
    model = C.load_libsvm_mat(_write_model(tmp_path / "r.mat", SVS, COEF, 0.5, kernel=2, gamma=0.3))
    x = np.array([0.2, 1.0, 1.0, 1.0, 4.0])
    want = (
        sum(c * np.exp(-0.3 * np.sum((x - s) ** 2)) for c, s in zip(COEF, SVS, strict=True)) - 0.5
    )
    assert model.predict(torch.from_numpy(x[None]))[0].item() == pytest.approx(want, abs=1e-14)


def test_metric_with_explicit_model_file(tmp_path):
    path = _write_model(tmp_path / "m.mat", SVS, COEF, -1.25)
    metric = C.ceiq_spec().build(torch.device("cpu"), {"ceiq_model": str(path)})
    imgs = torch.rand(2, 3, 24, 30)
    feat = C.ceiq_features(imgs).numpy()
    assert np.allclose(metric(imgs).numpy(), feat @ (COEF @ SVS) + 1.25, atol=1e-12)
    assert metric.model_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"svm_type": 0}, "not a regression model"),
        ({"kernel": 4}, "kernel_type 4"),
        ({"drop": ("sv_coef",)}, "lacks"),
    ],
)
def test_bad_model_files(tmp_path, kwargs, match):
    path = _write_model(tmp_path / "bad.mat", SVS, COEF, 0.0, **kwargs)
    with pytest.raises(WeightsError, match=match):
        C.load_libsvm_mat(path)


def test_not_a_mat_file(tmp_path):
    p = tmp_path / "x.mat"
    p.write_bytes(b"not a mat file at all")
    with pytest.raises(WeightsError, match="cannot read"):
        C.load_libsvm_mat(p)


# -- the cache -------------------------------------------------------------------------------------
def test_missing_model_is_reported_with_file_place_and_source(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = C.ceiq_spec()
    msg = spec.available()
    where = tmp_path / "torch" / "hub" / "checkpoints" / C.MODEL_FILENAME
    assert msg is not None and str(where) in msg
    assert "mtobeiyf/CEIQ" in msg and C.MODEL_SHA256 in msg and "data/model.mat" in msg
    with pytest.raises(WeightsError, match="missing CEIQ"):
        spec.build(torch.device("cpu"), {})


def test_cache_file_must_be_the_released_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    where = C.model_path()
    where.parent.mkdir(parents=True)
    _write_model(where, SVS, COEF, -1.25)
    assert C.ceiq_spec().available() is None
    with pytest.raises(WeightsError, match="not the released model"):
        C.ceiq_spec().build(torch.device("cpu"), {})
    # the loading path itself, with the expected hash pointed at the generated file
    monkeypatch.setattr(C, "MODEL_SHA256", hashlib.sha256(where.read_bytes()).hexdigest())
    metric = C.ceiq_spec().build(torch.device("cpu"), {})
    assert metric.model_path == where and metric.model.svs.shape == (3, 5)
    assert metric(torch.rand(1, 3, 20, 20)).shape == (1,)


def test_cli_lists_ceiq_as_unavailable(home, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from llbench.cli.main import cli

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    res = CliRunner().invoke(cli, ["metrics"])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("│ ceiq "))
    assert "missing CEIQ" in line
