"""The classical baselines: input, gamma, he, clahe, lime (llbench.plugins.*)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from llbench.errors import ConfigError, ImageError
from llbench.plugins.clahe import SPEC as CLAHE_SPEC
from llbench.plugins.clahe.method import clahe_levels, clip_histograms
from llbench.plugins.gamma import SPEC as GAMMA_SPEC
from llbench.plugins.gamma.method import adaptive_gamma
from llbench.plugins.he import SPEC as HE_SPEC
from llbench.plugins.he.luma import rgb_to_ycbcr, ycbcr_to_rgb
from llbench.plugins.identity import SPEC as INPUT_SPEC
from llbench.plugins.lime import SPEC as LIME_SPEC
from llbench.plugins.lime import method as lime

SPECS = {s.name: s for s in (INPUT_SPEC, GAMMA_SPEC, HE_SPEC, CLAHE_SPEC, LIME_SPEC)}
CPU = torch.device("cpu")


def build(name: str, **overrides):
    spec = SPECS[name]
    return spec.build({**spec.default_config, **overrides}, CPU)


def dark_batch(n: int = 2, h: int = 24, w: int = 37, seed: int = 0) -> torch.Tensor:
    """Dark, textured, coloured images: smooth shading, a few blocks and noise, mean ~0.1."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = 0.05 + 0.15 * xx * (1 - 0.5 * yy)
    img = base.expand(n, 3, h, w).clone()
    img[:, 0, h // 4 : h // 2, w // 5 : w // 2] += 0.12
    img[:, 2, h // 2 :, w // 2 :] += 0.08
    img += 0.02 * torch.rand(n, 3, h, w, generator=g)
    img *= torch.linspace(0.6, 1.0, n).view(n, 1, 1, 1)
    return img.clamp(0, 1)


# --- all methods -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPECS))
def test_shape_range_dtype_and_determinism(name):
    method = build(name)
    low = dark_batch()
    out = method.enhance(low)
    assert out.shape == low.shape and out.dtype == low.dtype and out.device == low.device
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, method.enhance(low.clone()))
    out64 = method.enhance(low.double())
    assert out64.dtype == torch.float64 and out64.shape == low.shape


@pytest.mark.parametrize("name", ["gamma", "he", "clahe", "lime"])
def test_brightens_dark_images(name):
    low = dark_batch()
    out = build(name).enhance(low)
    for i in range(low.shape[0]):
        assert out[i].mean() > low[i].mean() + 0.02


def test_input_is_identity():
    low = dark_batch()
    out = build("input").enhance(low)
    assert torch.equal(out, low) and out.data_ptr() != low.data_ptr()


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize(
    "low",
    [
        torch.rand(1, 3, 17, 1, generator=torch.Generator().manual_seed(1)) * 0.2,
        torch.rand(1, 3, 1, 9, generator=torch.Generator().manual_seed(2)) * 0.2,
        torch.rand(2, 3, 1, 1, generator=torch.Generator().manual_seed(3)) * 0.2,
        torch.rand(1, 3, 5, 13, generator=torch.Generator().manual_seed(4)) * 0.2,
        torch.zeros(1, 3, 9, 11),
        torch.ones(1, 3, 9, 11),
        torch.full((1, 3, 8, 8), 0.3),
    ],
    ids=["17x1", "1x9", "1x1", "5x13", "black", "white", "grey"],
)
def test_degenerate_sizes_and_uniform_images(name, low):
    out = build(name).enhance(low)
    assert out.shape == low.shape
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    if name in ("gamma", "lime", "input") and low.max() == 0:
        assert out.max() == 0  # black stays black: nothing to amplify
    if name in ("gamma", "lime", "input") and low.min() == 1:
        assert out.min() == 1


@pytest.mark.parametrize("name", sorted(SPECS))
def test_rejects_wrong_shapes(name):
    with pytest.raises(ImageError):
        build(name).enhance(torch.rand(1, 1, 8, 8))


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("input", {"gamma": 2}),
        ("gamma", {"gama": 2.2}),
        ("gamma", {"gamma": -1.0}),
        ("gamma", {"target_mean": 1.5}),
        ("he", {"luma": "bt2020x"}),
        ("clahe", {"tile_grid": [0, 8]}),
        ("clahe", {"clip_limit": "high"}),
        ("lime", {"strategy": 4}),
        ("lime", {"alpha": -0.1}),
        ("lime", {"eps": 0}),
    ],
)
def test_bad_config_raises_config_error(name, overrides):
    with pytest.raises(ConfigError):
        build(name, **overrides)


def test_specs_metadata():
    for spec in SPECS.values():
        assert spec.supervision == "none" and spec.trains is False
    assert LIME_SPEC.default_config["alpha"] == 0.15
    assert LIME_SPEC.default_config["gamma"] == 0.8
    assert LIME_SPEC.default_config["strategy"] == 3
    assert LIME_SPEC.default_config["denoise"] is False
    assert CLAHE_SPEC.default_config["clip_limit"] == 2.0
    assert list(CLAHE_SPEC.default_config["tile_grid"]) == [8, 8]
    assert GAMMA_SPEC.default_config["gamma"] == 2.2


def test_registered_through_entry_points(home, monkeypatch):
    monkeypatch.setenv("LLBENCH_PLUGINS", "input,gamma,he,clahe,lime")
    from llbench.pluginhost.host import get_host

    host = get_host()
    spec = host.method("lime")
    assert spec.name == "lime" and spec.default_config["alpha"] == 0.15
    assert host.registry("method").origin("lime") == "lime"
    assert {"input", "gamma", "he", "clahe", "lime"} <= set(host.registry("method").names())
    errors = {p.name: p.error for p in host.plugins()}
    assert all(errors[n] is None for n in ("input", "gamma", "he", "clahe", "lime"))
    out = spec.build(spec.default_config, CPU).enhance(dark_batch(1, 12, 15))
    assert out.shape == (1, 3, 12, 15)


# --- gamma -------------------------------------------------------------------------------------


def test_gamma_fixed_is_the_power_curve():
    low = dark_batch()
    out = build("gamma", gamma=2.2).enhance(low)
    torch.testing.assert_close(out, low ** (1 / 2.2))
    out = build("gamma", gamma=1.0).enhance(low)
    torch.testing.assert_close(out, low)


@pytest.mark.parametrize("target", [0.3, 0.5, 0.7])
def test_gamma_adaptive_reaches_target_mean(target):
    low = dark_batch(3)
    method = build("gamma", adaptive=True, target_mean=target)
    out = method.enhance(low)
    means = out.mean(dim=(1, 2, 3))
    torch.testing.assert_close(means, torch.full_like(means, target), atol=1e-3, rtol=0)
    gammas = method.gammas(low)
    assert gammas[0] > gammas[1] > gammas[2]  # the darker image needs the larger gamma


def test_gamma_adaptive_darkens_bright_images_and_clamps_unreachable_targets():
    bright = 1 - dark_batch(1)
    g = adaptive_gamma(bright, 0.5)
    assert g.item() < 1
    black = torch.zeros(1, 3, 4, 4)
    assert adaptive_gamma(black, 0.5, min_gamma=0.1, max_gamma=8.0).item() == pytest.approx(8.0)


# --- he ----------------------------------------------------------------------------------------


def _dark_grey(h: int = 96, w: int = 128, seed: int = 0) -> torch.Tensor:
    """A dark grey image whose 8-bit levels spread over about 0..90 (no level holds > 3%)."""
    g = torch.Generator().manual_seed(seed)
    v = (0.16 + 0.07 * torch.randn(h, w, generator=g)).clamp(0, 1)
    return v.expand(1, 3, h, w).clone()


def _ks_to_uniform(levels: torch.Tensor) -> float:
    hist = torch.bincount(levels.flatten(), minlength=256).double()
    cdf = hist.cumsum(0) / hist.sum()
    return float((cdf - torch.arange(1, 257, dtype=torch.float64) / 256).abs().max())


def test_he_output_luma_histogram_is_nearly_uniform():
    low = _dark_grey()
    out = build("he").enhance(low)
    torch.testing.assert_close(out[:, 0], out[:, 1])  # grey stays grey
    levels_in = (low[0, 0] * 255).round().long()
    levels_out = (out[0, 0] * 255).round().long()
    assert _ks_to_uniform(levels_in) > 0.5
    # a discrete HE histogram is as flat as the input's largest level allows (< 3% here)
    assert _ks_to_uniform(levels_out) < 0.035
    assert levels_out.min() == 0 and levels_out.max() == 255
    assert abs(levels_out.double().mean() - 127.5) < 5


def test_he_matches_opencv_equalizehist():
    cv2 = pytest.importorskip("cv2")
    low = _dark_grey(61, 77, seed=3)
    out = build("he").enhance(low)
    u8 = (low[0, 0] * 255).round().to(torch.uint8).numpy()
    ref = cv2.equalizeHist(u8)
    np.testing.assert_array_equal((out[0, 0] * 255).round().to(torch.uint8).numpy(), ref)


def test_he_keeps_chroma():
    low = dark_batch(1, 32, 40)
    out = build("he").enhance(low)
    # Y' replaces Y and Cb, Cr are kept: every channel moves by the same amount (no clipping here)
    delta = out - low
    inside = ((out > 0) & (out < 1)).all(1)
    assert inside.float().mean() > 0.9
    torch.testing.assert_close(delta[:, 0][inside], delta[:, 1][inside], atol=1e-5, rtol=0)
    torch.testing.assert_close(delta[:, 2][inside], delta[:, 1][inside], atol=1e-5, rtol=0)
    ycc = rgb_to_ycbcr(low)
    torch.testing.assert_close(ycbcr_to_rgb(ycc), low, atol=1e-6, rtol=0)


# --- clahe -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, clip, grid",
    [
        ((64, 64), 2.0, (8, 8)),
        ((45, 70), 2.0, (8, 8)),
        ((48, 53), 3.0, (4, 6)),
        ((30, 41), 0.0, (3, 5)),
    ],
)
def test_clahe_matches_opencv(shape, clip, grid):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(sum(shape))
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    img = np.clip(20 + 30 * np.sin(xx / 7.0) * np.cos(yy / 5.0) + rng.normal(0, 6, shape), 0, 255)
    img = img.astype(np.uint8)
    ref = cv2.createCLAHE(clipLimit=clip, tileGridSize=(grid[1], grid[0])).apply(img)
    ours = clahe_levels(torch.from_numpy(img.astype(np.int64))[None], clip, grid)[0]
    np.testing.assert_array_equal(ours.numpy().astype(np.uint8), ref)


def test_clip_histograms_preserves_counts_and_caps_bins():
    g = torch.Generator().manual_seed(0)
    hist = (torch.rand(20, 256, generator=g) ** 8 * 400).long()
    for limit in (1, 5, 17, 60):
        clipped = clip_histograms(hist, limit)
        torch.testing.assert_close(clipped.sum(1), hist.sum(1))
        excess = (hist - limit).clamp_min(0).sum(1, keepdim=True)
        assert (clipped <= limit + excess // 256 + 1).all()
        assert (clipped >= hist.clamp_max(limit)).all()


def test_clahe_amplifies_flat_region_noise_less_than_he():
    g = torch.Generator().manual_seed(0)
    h, w = 128, 128  # 16 x 16 tiles of 256 pixels: clip limits 1, 2, 4 are 1, 2, 4 counts
    img = torch.full((h, w), 30 / 255) + torch.randn(h, w, generator=g) * (1.5 / 255)  # flat
    img[:, w // 2 :] = torch.linspace(0.0, 0.6, w // 2).expand(h, w // 2)  # a wide ramp beside it
    low = img.clamp(0, 1).expand(1, 3, h, w).clone()
    flat = (slice(16, h - 16), slice(8, w // 2 - 24))

    def flat_std(name: str, **kw) -> float:
        return float(build(name, **kw).enhance(low)[0, 0][flat].std())

    before = float(low[0, 0][flat].std())
    he = flat_std("he")
    clahe = flat_std("clahe")
    ahe = flat_std("clahe", clip_limit=0.0)
    assert he > 5 * before  # global HE stretches the noise of the flat region
    assert clahe < 0.5 * he and clahe < 0.5 * ahe  # the clip limit bounds the local slope
    assert flat_std("clahe", clip_limit=1.0) < clahe < flat_std("clahe", clip_limit=4.0)


# --- lime --------------------------------------------------------------------------------------


def _difference_operator(n: int) -> sp.csr_matrix:
    """(n-1) x n forward differences."""
    return sp.diags([-np.ones(n - 1), np.ones(n - 1)], [0, 1], shape=(n - 1, n), format="csr")


def test_lime_initial_illumination_is_channel_max():
    low = dark_batch()
    t_hat = lime.initial_illumination(low)
    assert (t_hat[:, None] >= low).all()
    assert ((t_hat[:, None] == low).any(1)).all()


def test_lime_solution_satisfies_the_sped_up_system():
    low = dark_batch(1, 19, 23)
    t_hat = lime.initial_illumination(low)[0].double().numpy()
    h, w = t_hat.shape
    alpha, eps = 0.15, 1e-3
    for strategy in (1, 2, 3):
        wh, wv = lime.solver_weights(t_hat, strategy, 2.0, eps)
        # A = I + alpha sum_d D_d^T Diag(w~_d) D_d, built independently with Kronecker products
        d_h = sp.kron(sp.eye(h), _difference_operator(w))
        d_v = sp.kron(_difference_operator(h), sp.eye(w))
        a_ref = sp.eye(h * w) + alpha * (
            d_h.T @ sp.diags(wh.ravel()) @ d_h + d_v.T @ sp.diags(wv.ravel()) @ d_v
        )
        a = lime.system_matrix(wh, wv, alpha)
        assert abs(a - a_ref).max() < 1e-8 * abs(a_ref).max()
        t = lime.refine_illumination(t_hat, alpha, strategy, 2.0, eps)
        residual = a_ref @ t.ravel() - t_hat.ravel()
        assert np.abs(residual).max() < 1e-8
        # discrete maximum principle: T stays within the range of T_hat
        assert t.min() >= t_hat.min() - 1e-9 and t.max() <= t_hat.max() + 1e-9


def test_lime_weights_follow_the_strategies():
    rng = np.random.default_rng(0)
    t_hat = rng.random((15, 18)) * 0.3
    eps, sigma = 1e-3, 1.5
    gh = np.diff(t_hat, axis=1)
    w1h, _ = lime.strategy_weights(t_hat, 1, sigma, eps)
    w2h, _ = lime.strategy_weights(t_hat, 2, sigma, eps)
    w3h, w3v = lime.strategy_weights(t_hat, 3, sigma, eps)
    assert np.all(w1h == 1)
    np.testing.assert_allclose(w2h, 1 / (np.abs(gh) + eps))
    # strategy 3 by brute force over the window Omega(x) inside the image
    radius = int(np.ceil(2.5 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma * sigma))
    kernel /= kernel.sum()  # G_sigma sums to 1 over the full window
    for r, c in [(7, 8), (0, 0), (14, 16), (3, 16)]:
        num = den = 0.0
        for i, dr in enumerate(offsets):
            for j, dc in enumerate(offsets):
                rr, cc = r + dr, c + dc
                if 0 <= rr < gh.shape[0] and 0 <= cc < gh.shape[1]:
                    num += kernel[i, j]
                    den += kernel[i, j] * gh[rr, cc]
        assert w3h[r, c] == pytest.approx(num / (abs(den) + eps), rel=1e-9)
    window = gh[7 - radius : 7 + radius + 1, 8 - radius : 8 + radius + 1]  # inside the image
    assert w3h[7, 8] == pytest.approx(1 / (abs(np.sum(kernel * window)) + eps), rel=1e-9)
    assert w3v.shape == (14, 18)


def test_lime_refinement_smooths_and_keeps_uniform_maps():
    rng = np.random.default_rng(1)
    t_hat = np.clip(0.2 + 0.05 * rng.standard_normal((20, 20)), 0, 1)
    t = lime.refine_illumination(t_hat)

    def tv(a):
        return np.abs(np.diff(a, axis=0)).sum() + np.abs(np.diff(a, axis=1)).sum()

    assert tv(t) < 0.5 * tv(t_hat)
    uniform = np.full((9, 13), 0.37)
    np.testing.assert_allclose(lime.refine_illumination(uniform), uniform, atol=1e-12)
    a = lime.refine_illumination(t_hat, strategy=2)
    assert np.abs(a - t).max() > 1e-4  # the strategy matters


def test_lime_gamma_and_retinex_division():
    low = dark_batch()
    method = build("lime")
    res = method.decompose(low)
    torch.testing.assert_close(res.t_gamma, res.t.clamp(1e-3, 1) ** 0.8)
    torch.testing.assert_close(res.enhanced, (low / res.t_gamma[:, None]).clamp(0, 1))
    assert (res.t_gamma >= res.t - 1e-6).all()  # gamma < 1 lifts the illumination map...
    res07 = build("lime", gamma=0.7).decompose(low)
    assert res07.enhanced.mean() < res.enhanced.mean()  # ...so a smaller gamma brightens less
    torch.testing.assert_close(method.enhance(low), res.enhanced)


def test_lime_black_image_has_no_nan():
    out = build("lime").decompose(torch.zeros(1, 3, 10, 7))
    assert torch.isfinite(out.t).all() and torch.equal(out.enhanced, torch.zeros(1, 3, 10, 7))


def test_lime_denoise_without_bm3d_explains_itself(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # as if not installed
    with pytest.raises(ConfigError, match="pip install bm3d"):
        build("lime", denoise=True)


def test_lime_denoise_with_bm3d():
    pytest.importorskip("bm3d")
    g = torch.Generator().manual_seed(0)
    low = (dark_batch(1, 40, 48) + 0.01 * torch.randn(1, 3, 40, 48, generator=g)).clamp(0, 1)
    plain = build("lime").decompose(low)
    method = build("lime", denoise=True)
    den = method.enhance(low)
    assert torch.isfinite(den).all() and den.shape == low.shape

    # R_f = R T + R_d (1 - T): where T is small the output is the denoised one, which is smoother
    def rough(x):
        return (x[..., 1:, :] - x[..., :-1, :]).abs().mean()

    assert rough(den) < rough(plain.enhanced)
    assert method.provenance()["denoise"] == "bm3d"


# --- lime solvers (issue 20) -------------------------------------------------------------------
def _natural_dark(h: int = 120, w: int = 160) -> torch.Tensor:
    from skimage import data
    from skimage.transform import resize

    img = resize(data.astronaut(), (h, w), anti_aliasing=True)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float().mul(0.25)


def test_lime_nested_dissection_is_a_permutation_with_separators_last():
    from llbench.plugins.lime import solvers

    for h, w in ((1, 1), (1, 9), (7, 5), (40, 61)):
        order = solvers.nested_dissection(h, w)
        assert sorted(order.tolist()) == list(range(h * w))
    order = solvers.nested_dissection(40, 61)
    assert set(order[-40:].tolist()) == {r * 61 + 30 for r in range(40)}  # the first cut


def test_lime_direct_orderings_agree_and_cg_is_within_a_level():
    low = _natural_dark()
    t_hat = lime.initial_illumination(low)[0].double().numpy()
    nd = lime.refine_illumination(t_hat, solver="direct")
    mmd = lime.refine_illumination(t_hat, solver="direct-mmd")
    np.testing.assert_allclose(nd, mmd, atol=1e-10)
    exact = build("lime", solver="direct").enhance(low)
    cg = build("lime", solver="cg").enhance(low)
    assert (cg - exact).abs().max() < 1 / 255
    assert (cg * 255).round().sub((exact * 255).round()).abs().max() <= 1


@pytest.mark.parametrize(
    "shape", [(1, 2), (2, 1), (1, 57), (40, 1), (3, 3), (5, 4), (13, 10), (31, 47), (17, 250)]
)
def test_lime_multifrontal_equals_superlu_on_any_grid(shape):
    from llbench.plugins.lime import multifrontal

    h, w = shape
    rng = np.random.default_rng(h * 1000 + w)
    t_hat = rng.random(shape) ** 3  # dark, rough: weights over six orders of magnitude
    wh, wv = lime.solver_weights(t_hat, 3, 2.0, 1e-3)
    exact = lime.refine_illumination(t_hat, solver="direct")
    got = multifrontal.solve(*(torch.from_numpy(a) for a in (0.15 * wh, 0.15 * wv, t_hat)))
    assert got.dtype == torch.float64 and got.shape == shape
    np.testing.assert_allclose(got.numpy(), exact, rtol=0, atol=1e-9)


def test_lime_multifrontal_dissection_covers_every_pixel_once():
    from llbench.plugins.lime import multifrontal

    for h, w in ((1, 1), (1, 9), (7, 5), (40, 61)):
        levels = multifrontal.analyse(h, w).levels
        seps = torch.cat([lv.sep.reshape(-1) for lv in levels])
        seps = seps[seps < h * w]
        assert sorted(seps.tolist()) == list(range(h * w))  # each pixel eliminated exactly once
        for lv in levels:  # a front's ring holds no pixel of its own separator
            for sep, ring in zip(lv.sep.tolist(), lv.ring.tolist(), strict=True):
                assert not (set(sep) - {h * w}) & (set(ring) - {h * w})


def test_lime_multifrontal_places_each_child_ring_where_its_parent_holds_those_pixels():
    from llbench.plugins.lime import multifrontal

    for h, w in ((2, 3), (7, 5), (40, 61), (13, 100)):
        levels = multifrontal.analyse(h, w).levels
        for parent, child in zip(levels, levels[1:], strict=False):
            front = torch.cat([parent.sep, parent.ring], 1)  # the parent's front, by position
            for k in range(child.batch):
                ring, cols = child.ring[k], child.ext_cols[k]
                listed = ring < h * w
                # a listed ring pixel sits at its column of the parent's front, empty slots
                # go to the parent's sink column n
                assert torch.equal(front[k // 2, cols[listed]], ring[listed])
                assert bool((cols[~listed] == parent.n).all())


def test_lime_multifrontal_falls_back_to_float64_and_refuses_huge_grids(monkeypatch):
    from llbench.errors import ConfigError
    from llbench.plugins.lime import multifrontal

    low = _natural_dark(30, 40)
    t_hat = lime.initial_illumination(low)[0].double().numpy()
    exact = lime.refine_illumination(t_hat, solver="direct")
    wh, wv = lime.solver_weights(t_hat, 3, 2.0, 1e-3)
    args = [torch.from_numpy(a) for a in (0.15 * wh, 0.15 * wv, t_hat)]
    seen = []
    real = multifrontal.factorize
    monkeypatch.setattr(
        multifrontal, "factorize", lambda a, d, h, v: seen.append(d.dtype) or real(a, d, h, v)
    )
    np.testing.assert_allclose(multifrontal.solve(*args).numpy(), exact, atol=1e-9)
    assert seen == [torch.float32]  # well conditioned: float32 factors, refined
    monkeypatch.setattr(multifrontal, "_FLOAT32_LIMIT", 0.0)  # "too ill-conditioned for float32"
    seen.clear()
    np.testing.assert_allclose(multifrontal.solve(*args).numpy(), exact, atol=1e-12)
    assert seen == [torch.float64]
    monkeypatch.setattr(multifrontal, "_FLOAT32_LIMIT", 1.0)
    monkeypatch.setattr(multifrontal, "_REFINE_STEPS", 0)  # refinement "stalls": redone in float64
    seen.clear()
    np.testing.assert_allclose(multifrontal.solve(*args).numpy(), exact, atol=1e-12)
    assert seen == [torch.float32, torch.float64]
    monkeypatch.setattr(multifrontal, "MAX_PIXELS", 100)
    with pytest.raises(ConfigError, match="up to 100 pixels.*solver = 'cg'"):
        multifrontal.solve(*args)


def test_lime_default_solver_is_the_exact_multifrontal_one():
    low = _natural_dark()
    default = build("lime").enhance(low)
    exact = build("lime", solver="direct").enhance(low)
    assert (default - exact).abs().max() < 1e-6
    assert "multifrontal" in build("lime").provenance()["solver"]


def test_lime_solver_config_is_checked():
    from llbench.errors import ConfigError
    from llbench.plugins.lime import solvers

    assert solvers.resolve_solver("auto", "cpu", 600 * 400) == "multifrontal"
    assert solvers.resolve_solver("auto", "cuda", 600 * 400) == "multifrontal"
    assert solvers.resolve_solver("auto", "cuda", solvers.MAX_PIXELS + 1) == "cg"
    assert solvers.resolve_solver("auto", "cpu", solvers.MAX_PIXELS + 1) == "direct"
    with pytest.raises(ConfigError, match="solver must be one of"):
        build("lime", solver="umfpack")
    with pytest.raises(ConfigError, match="cg_tol"):
        build("lime", cg_tol=0)
    with pytest.raises(ConfigError, match="did not reach"):
        build("lime", solver="cg", cg_max_iter=3).enhance(_natural_dark(40, 50))
