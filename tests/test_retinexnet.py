"""Retinex-Net (plugins/retinexnet): design, losses against hand-written references, training
phases, decoder sites, weights, BM3D option."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

from llbench.api import TrainContext, count_parameters, transform_site
from llbench.api.datasets import Sample
from llbench.errors import ConfigError, WeightsError
from llbench.io.images import write_png
from llbench.plugins.retinexnet import losses
from llbench.plugins.retinexnet.method import RetinexNet
from llbench.plugins.retinexnet.model import SameConv2d

CPU = torch.device("cpu")
HAS_BM3D = importlib.util.find_spec("bm3d") is not None


@pytest.fixture(scope="module")
def method() -> RetinexNet:
    torch.manual_seed(0)
    return RetinexNet({}, CPU)


def test_parameter_counts_match_the_official_tensorflow_design(method):
    assert count_parameters(method.net.decom) == 207_748
    assert count_parameters(method.net.relight) == 236_865
    assert count_parameters(method.net) == 444_613


@pytest.mark.parametrize("size", [(48, 48), (37, 51)])
def test_shapes_and_range(method, size):
    low = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = method.net(low)
        enhanced = method.enhance(low)
    assert out["R_low"].shape == (2, 3, *size)
    assert out["I_low"].shape == out["I_delta"].shape == (2, 1, *size)
    assert enhanced.shape == (2, 3, *size)
    assert 0.0 <= float(enhanced.min()) and float(enhanced.max()) <= 1.0
    assert torch.allclose(enhanced, out["S"].clamp(0, 1))


def test_stride2_convolution_pads_like_tensorflow_same():
    conv = SameConv2d(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0  # picks the centre tap
        conv.bias.zero_()
    x = torch.arange(16.0).view(1, 1, 4, 4)
    # TF 'same', stride 2, even size: no padding on top/left, centres at rows/cols 1 and 3
    assert conv(x)[0, 0].tolist() == [[5.0, 7.0], [13.0, 15.0]]
    # odd size 5: total padding 2 (1 each side), centres at 0, 2, 4
    y = conv(torch.arange(25.0).view(1, 1, 5, 5))
    assert y[0, 0].tolist() == [[0.0, 2.0, 4.0], [10.0, 12.0, 14.0], [20.0, 22.0, 24.0]]


def _np_gradient(a: np.ndarray, direction: str) -> np.ndarray:
    """conv2d with [[0, 0], [-1, 1]] (or its transpose), TF 'same' (zero row/col bottom/right)."""
    h, w = a.shape
    p = np.zeros((h + 1, w + 1))
    p[:h, :w] = a
    out = np.zeros_like(a)
    for i in range(h):
        for j in range(w):
            if direction == "x":
                out[i, j] = -p[i + 1, j] + p[i + 1, j + 1]
            else:
                out[i, j] = -p[i, j + 1] + p[i + 1, j + 1]
    return np.abs(out)


def _np_avg3(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    out = np.zeros_like(a)
    for i in range(h):
        for j in range(w):
            out[i, j] = a[max(0, i - 1) : i + 2, max(0, j - 1) : j + 2].mean()
    return out


def test_gradient_matches_tensorflow_kernel_by_hand():
    a = np.array([[1.0, 2.0, 4.0], [0.0, 3.0, 9.0], [5.0, 5.0, 6.0]])
    t = torch.tensor(a)[None, None]
    for d in ("x", "y"):
        assert np.allclose(losses.gradient(t, d)[0, 0].numpy(), _np_gradient(a, d))
    # e.g. x at (0, 0): |row 1: 3 - 0| = 3; y at (0, 0): |col 1: 3 - 2| = 1
    assert losses.gradient(t, "x")[0, 0, 0, 0] == 3.0
    assert losses.gradient(t, "y")[0, 0, 0, 0] == 1.0


def test_smoothness_matches_hand_written_reference():
    g = torch.Generator().manual_seed(1)
    illum = torch.rand(1, 1, 5, 6, generator=g, dtype=torch.float64)
    refl = torch.rand(1, 3, 5, 6, generator=g, dtype=torch.float64)
    gray = (0.2989 * refl[0, 0] + 0.5870 * refl[0, 1] + 0.1140 * refl[0, 2]).numpy()
    i = illum[0, 0].numpy()
    ref = np.mean(
        _np_gradient(i, "x") * np.exp(-10 * _np_avg3(_np_gradient(gray, "x")))
        + _np_gradient(i, "y") * np.exp(-10 * _np_avg3(_np_gradient(gray, "y")))
    )
    assert float(losses.smoothness(illum, refl)) == pytest.approx(ref, rel=1e-10)


def test_decom_and_relight_terms_match_their_definitions():
    g = torch.Generator().manual_seed(2)
    low, high, r_low, r_high = (torch.rand(2, 3, 4, 4, generator=g) for _ in range(4))
    i_low, i_high, i_delta = (torch.rand(2, 1, 4, 4, generator=g) for _ in range(3))
    w = RetinexNet({}, CPU).config["loss_weights"]
    d = losses.decom_terms(low, high, r_low, i_low, r_high, i_high, w["decom"])
    l1 = lambda a, b: (a - b).abs().mean()  # noqa: E731
    assert float(d["recon_low"]) == pytest.approx(float(l1(r_low * i_low.repeat(1, 3, 1, 1), low)))
    assert float(d["mutual_low"]) == pytest.approx(0.001 * float(l1(r_high * i_low, low)))
    assert float(d["mutual_high"]) == pytest.approx(0.001 * float(l1(r_low * i_high, high)))
    assert float(d["equal_r"]) == pytest.approx(0.01 * float(l1(r_low, r_high)))
    assert float(d["smooth_high"]) == pytest.approx(0.1 * float(losses.smoothness(i_high, r_high)))
    r = losses.relight_terms(high, r_low, i_delta, w["relight"])
    assert float(r["relight"]) == pytest.approx(float(l1(r_low * i_delta, high)))
    assert float(r["smooth_delta"]) == pytest.approx(3 * float(losses.smoothness(i_delta, r_low)))
    # a zero weight drops the term
    assert "equal_r" not in losses.decom_terms(
        low, high, r_low, i_low, r_high, i_high, {**w["decom"], "equal_r": 0}
    )


def _pairs(root, n=3, size=(40, 44)) -> list[Sample]:
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        high = rng.integers(40, 255, (*size, 3), dtype=np.uint8)
        low = (high * 0.2).astype(np.uint8)
        write_png(root / f"low{k}.png", low)
        write_png(root / f"high{k}.png", high)
        out.append(Sample(f"s{k}", root / f"low{k}.png", root / f"high{k}.png"))
    return out


def _ctx(tmp_path, samples, logs=None) -> TrainContext:
    return TrainContext(
        dataset=None,
        samples=samples,
        workdir=tmp_path / "work",
        seed=3,
        device=CPU,
        log=(lambda step, values: logs.append((step, dict(values))))
        if logs is not None
        else (lambda step, values: None),
    )


def test_phases_are_decom_then_relight_and_last_output_is_the_enhanced_image(tmp_path):
    m = RetinexNet({"batch_size": 2, "patch_size": 32, "max_steps": 2}, CPU)
    phases = m.training_phases(_ctx(tmp_path, _pairs(tmp_path)))
    assert [p.name for p in phases] == ["decom", "relight"]
    assert phases[0].modules == [m.net.decom] and phases[1].modules == [m.net.relight]
    batch = phases[1].batches(0)
    out, terms = phases[1].loss(0, batch)
    out = out.detach()
    assert out.shape == (2, 3, 32, 32) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert set(terms) == {"relight", "smooth_delta"}
    terms["relight"].backward()  # Decom-Net is frozen in the relight phase
    assert all(p.grad is None for p in m.net.decom.parameters())
    assert any(p.grad is not None for p in m.net.relight.parameters())


def test_one_adam_step_of_each_phase_matches_a_hand_written_update(tmp_path):
    """Adam's first step moves each parameter by lr * g / (|g| + eps) (bias-corrected)."""
    torch.manual_seed(0)
    m = RetinexNet({"batch_size": 2, "patch_size": 32, "max_steps": 1}, CPU)
    ctx = _ctx(tmp_path, _pairs(tmp_path))
    for index, module in ((0, m.net.decom), (1, m.net.relight)):
        phase = m.training_phases(ctx)[index]
        before = [p.detach().clone() for p in module.parameters()]
        module.zero_grad()
        _, terms = phase.loss(0, phase.batches(0))
        sum(terms.values()).backward()
        grads = [p.grad.clone() for p in module.parameters()]
        opt = phase.make_optimizer(phase.parameters())
        opt.step()
        lr = opt.param_groups[0]["lr"]
        assert lr == 1e-3
        for p, b, g in zip(module.parameters(), before, grads, strict=True):
            expected = b - lr * g / (g.abs() + 1e-8)
            assert torch.allclose(p.detach(), expected, atol=1e-6)


def test_fit_runs_both_phases_and_logs_their_terms(tmp_path):
    logs: list = []
    m = RetinexNet({"batch_size": 2, "patch_size": 32, "max_steps": 2}, CPU)
    m.fit(_ctx(tmp_path, _pairs(tmp_path), logs))
    assert m.training_info["phases"] == {"decom": 2, "relight": 2}
    names = set().union(*(v.keys() for _, v in logs))
    assert {"decom/recon_low", "decom/equal_r", "relight/relight", "relight/loss"} <= names
    state = torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=True)
    assert state["method"] == "retinexnet" and state["phase"] == 1 and state["step"] == 2


def test_learning_rate_drops_tenfold_after_twenty_epochs(tmp_path):
    m = RetinexNet({"batch_size": 1}, CPU)
    phase = m.training_phases(_ctx(tmp_path, _pairs(tmp_path)))[0]
    assert phase.steps == 100 * 3  # 100 epochs of 3 batches
    opt = phase.make_optimizer(phase.parameters())
    sched = phase.make_scheduler(opt)
    lrs = []
    for _ in range(62):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[59] == pytest.approx(1e-3) and lrs[60] == pytest.approx(1e-4)


def _sites_change_output(method, size=(1, 3, 40, 48)):
    x = torch.rand(*size, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        base = method.enhance(x)
    sites = method.decoder_sites()
    strides = [s.stride for s in sites]
    assert strides == sorted(strides, reverse=True)  # coarse to fine
    for site in sites:
        seen = {}

        def fn(f, site=site, seen=seen):
            seen["shape"] = tuple(f.shape)
            return f * 0.5 + 0.1

        handle = transform_site(method, site.name, fn)
        with torch.no_grad():
            changed = method.enhance(x)
        handle.remove()
        with torch.no_grad():
            restored = method.enhance(x)
        h, w = size[-2:]
        assert seen["shape"] == (
            1,
            site.channels,
            math.ceil(h / site.stride),
            math.ceil(w / site.stride),
        )
        assert not torch.allclose(changed, base, atol=1e-4), site.name
        assert torch.equal(restored, base)


def test_decoder_sites_are_enhance_net_stages_and_transform_changes_output(method):
    assert [s.module for s in method.decoder_sites()] == [
        "relight.deconv1",
        "relight.deconv2",
        "relight.deconv3",
    ]
    _sites_change_output(method)


def test_weights_round_trip_and_bad_files(tmp_path, method):
    path = tmp_path / "w.pt"
    method.save_weights(path)
    other = RetinexNet({}, CPU)
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        assert not torch.allclose(other.enhance(x), method.enhance(x))
        other.load_weights(path)
        assert torch.equal(other.enhance(x), method.enhance(x))
    torch.save({"decom.recon_layer.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(WeightsError):
        other.load_weights(tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match="not found"):
        other.load_weights(tmp_path / "missing.pt")


def test_unknown_denoise_option_is_refused():
    with pytest.raises(ConfigError, match="denoise"):
        RetinexNet({"denoise": "nlm"}, CPU)


@pytest.mark.skipif(HAS_BM3D, reason="bm3d is installed")
def test_bm3d_denoising_without_the_package_says_so():
    m = RetinexNet({"denoise": "bm3d"}, CPU)
    with pytest.raises(ConfigError, match="pip install bm3d"):
        m.enhance(torch.rand(1, 3, 16, 16))


@pytest.mark.skipif(not HAS_BM3D, reason="the optional bm3d package is not installed")
def test_bm3d_denoising_smooths_the_reflectance_in_dark_regions():
    from llbench.plugins.retinexnet.method import bm3d_reflectance

    g = torch.Generator().manual_seed(5)
    clean = torch.full((1, 3, 32, 32), 0.5)
    noisy = (clean + 0.1 * torch.randn(1, 3, 32, 32, generator=g)).clamp(0, 1)
    dark = torch.zeros(1, 1, 32, 32)
    bright = torch.ones(1, 1, 32, 32)
    assert torch.equal(bm3d_reflectance(noisy, bright, 0.1), noisy)  # I = 1: untouched
    den = bm3d_reflectance(noisy, dark, 0.1)
    assert (den - clean).abs().mean() < 0.5 * (noisy - clean).abs().mean()


@pytest.mark.slow
def test_quick_preset_on_synthetic_beats_the_dark_input(tmp_path):
    import llbench

    kw = {"home": tmp_path, "metrics": ["psnr", "ssim"], "progress": False, "device": "cpu"}
    dark = llbench.run("input", "synthetic", **kw)
    trained = llbench.run("retinexnet", "synthetic", preset="quick", **kw)
    assert trained.ok and trained.n_images == 9
    assert trained.scores["psnr"] > dark.scores["psnr"] + 1.0
    assert trained.scores["ssim"] > dark.scores["ssim"]


def test_tensorflow_variables_exported_to_npz_load_into_the_same_network(tmp_path, method):
    """An archive in the official checkpoints' layout (TF names, [kh, kw, in, out] kernels)."""
    from llbench.plugins.retinexnet import tf_weights

    table = tf_weights.retinexnet_table()
    assert table["relight.conv0.weight"] == "RelightNet/conv2d/kernel"
    assert table["relight.output.bias"] == "RelightNet/conv2d_8/bias"
    state = method.state_dict()
    arrays = {tf: tf_weights.to_tf(state[key]) for key, tf in table.items()}
    assert arrays["DecomNet/shallow_feature_extraction/kernel"].shape == (9, 9, 4, 64)
    arrays["RelightNet/conv2d/kernel/Adam"] = np.zeros(3)  # optimizer slots are ignored
    np.savez(tmp_path / "tf.npz", **arrays)
    other = RetinexNet({}, CPU)
    other.load_weights(tmp_path / "tf.npz")
    x = torch.rand(1, 3, 24, 30)
    with torch.no_grad():
        assert torch.equal(other.enhance(x), method.enhance(x))
    del arrays["DecomNet/recon_layer/bias"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(WeightsError, match="DecomNet/recon_layer/bias"):
        other.load_weights(tmp_path / "partial.npz")


def test_bm3d_option_blends_the_denoised_reflectance_by_illumination(monkeypatch):
    """With a stand-in ``bm3d`` module: ``I * R + (1 - I) * BM3D(R)``, then ``* I_delta``."""
    import sys
    import types

    calls = []

    def bm3d_rgb(z, sigma):
        calls.append((z.shape, sigma))
        return np.full_like(z, 0.25)

    monkeypatch.setitem(sys.modules, "bm3d", types.SimpleNamespace(bm3d_rgb=bm3d_rgb))
    torch.manual_seed(0)
    m = RetinexNet({"denoise": "bm3d", "bm3d_sigma": 0.05}, CPU)
    x = torch.rand(2, 3, 16, 20)
    with torch.no_grad():
        out = m.net(x)
        got = m.enhance(x)
    i = out["I_low"]
    expected = ((i * out["R_low"] + (1 - i) * 0.25) * out["I_delta"]).clamp(0, 1)
    assert torch.allclose(got, expected, atol=1e-6)
    assert calls == [((16, 20, 3), 0.05)] * 2
