"""KinD (plugins/kind): design, losses against hand-written references, the three training
phases, test-time pipeline, decoder sites, weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llbench.api import TrainContext, count_parameters, transform_site
from llbench.api.datasets import Sample
from llbench.api.training import Patches
from llbench.errors import ConfigError, WeightsError
from llbench.io.images import write_png
from llbench.plugins.kind import losses
from llbench.plugins.kind.method import (
    KinD,
    NormalizedPairs,
    gaussian_blur,
    lr_lambda,
    minmax_normalize,
)
from llbench.plugins.kind.model import UpConcat

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def method() -> KinD:
    torch.manual_seed(0)
    return KinD({}, CPU)


def test_parameter_counts_match_the_official_tensorflow_design(method):
    assert count_parameters(method.net.decom) == 235_876
    assert count_parameters(method.net.restoration) == 7_760_739
    assert count_parameters(method.net.adjust) == 19_393
    assert count_parameters(method.net) == 8_016_008


@pytest.mark.parametrize("size", [(32, 48), (37, 51)])
def test_shapes_and_range(method, size):
    x = torch.rand(2, 3, *size) * 0.3
    with torch.no_grad():
        r, i = method.net.decom(x)
        restored = method.net.restoration(r, i)
        out = method.enhance(x)
    assert r.shape == restored.shape == out.shape == (2, 3, *size)
    assert i.shape == (2, 1, *size)
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_upsample_is_cut_to_the_skip_size_like_tensorflow():
    up = UpConcat(2, 1)
    with torch.no_grad():
        up.weight.fill_(1.0)
    x = torch.ones(1, 2, 3, 3)
    y = up(x, torch.zeros(1, 1, 5, 6))
    assert y.shape == (1, 2, 5, 6)
    assert torch.equal(y[:, 0], torch.full((1, 5, 6), 2.0))  # 2 input channels x weight 1


def _np_grad(a: np.ndarray, direction: str) -> np.ndarray:
    h, w = a.shape
    p = np.zeros((h + 1, w + 1))
    p[:h, :w] = a
    if direction == "x":
        g = p[1:, 1:] - p[1:, :-1]
    else:
        g = p[1:, 1:] - p[:-1, 1:]
    return np.abs(g)


def _np_norm_grad(a: np.ndarray, direction: str) -> np.ndarray:
    g = _np_grad(a, direction)
    return (g - g.min()) / (g.max() - g.min() + 1e-4)


def test_normalised_gradient_and_illumination_losses_match_numpy():
    g = torch.Generator().manual_seed(1)
    il, ih = (torch.rand(1, 1, 5, 6, generator=g, dtype=torch.float64) for _ in range(2))
    img = torch.rand(1, 3, 5, 6, generator=g, dtype=torch.float64)
    a, b = il[0, 0].numpy(), ih[0, 0].numpy()
    assert np.allclose(losses.gradient(il, "y")[0, 0].numpy(), _np_norm_grad(a, "y"))
    gx = _np_norm_grad(a, "x") + _np_norm_grad(b, "x")
    gy = _np_norm_grad(a, "y") + _np_norm_grad(b, "y")
    ref = np.mean(gx * np.exp(-10 * gx) + gy * np.exp(-10 * gy))
    assert float(losses.mutual_i_loss(il, ih)) == pytest.approx(ref, rel=1e-10)
    gray = 0.2989 * img[0, 0].numpy() + 0.5870 * img[0, 1].numpy() + 0.1140 * img[0, 2].numpy()
    ref = np.mean(
        np.abs(_np_norm_grad(a, "x") / np.maximum(_np_norm_grad(gray, "x"), 0.01))
        + np.abs(_np_norm_grad(a, "y") / np.maximum(_np_norm_grad(gray, "y"), 0.01))
    )
    assert float(losses.mutual_i_input_loss(il, img)) == pytest.approx(ref, rel=1e-10)


def _np_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Direct loops: 11x11 Gaussian window (sigma 1.5), 'valid' positions, L = 1."""
    r = np.arange(11) - 5
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    w /= w.sum()
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * pa * pa).sum() - ma**2
            vb = (w * pb * pb).sum() - mb**2
            cov = (w * pa * pb).sum() - ma * mb
            c1, c2 = 0.01**2, 0.03**2
            vals.append(
                ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(vals))


def test_ssim_and_restoration_terms_match_hand_written_references():
    g = torch.Generator().manual_seed(2)
    a = torch.rand(1, 3, 13, 14, generator=g, dtype=torch.float64)
    b = (a + 0.1 * torch.rand(1, 3, 13, 14, generator=g, dtype=torch.float64)).clamp(0, 1)
    ref = _np_ssim(a[0, 0].numpy(), b[0, 0].numpy())
    assert float(losses.ssim(a[:, :1], b[:, :1])) == pytest.approx(ref, rel=1e-6)
    assert float(losses.ssim(a[:, :1], a[:, :1])) == pytest.approx(1.0)
    w = KinD({}, CPU).config["loss_weights"]
    t = losses.restoration_terms(a, b, w["restoration"])
    ssim_mean = np.mean([_np_ssim(a[0, c].numpy(), b[0, c].numpy()) for c in range(3)])
    assert float(t["ssim"]) == pytest.approx(1 - ssim_mean, rel=1e-6)
    assert float(t["square"]) == pytest.approx(float(((a - b) ** 2).mean()))
    ga = 0.2989 * a[0, 0] + 0.5870 * a[0, 1] + 0.1140 * a[0, 2]
    gb = 0.2989 * b[0, 0] + 0.5870 * b[0, 1] + 0.1140 * b[0, 2]
    ref = np.mean(
        (_np_norm_grad(ga.numpy(), "x") - _np_norm_grad(gb.numpy(), "x")) ** 2
        + (_np_norm_grad(ga.numpy(), "y") - _np_norm_grad(gb.numpy(), "y")) ** 2
    )
    assert float(t["grad"]) == pytest.approx(ref, rel=1e-8)
    adj = losses.adjustment_terms(a[:, :1], b[:, :1], w["adjustment"])
    assert float(adj["square"]) == pytest.approx(float(((a[:, :1] - b[:, :1]) ** 2).mean()))


def test_decomposition_terms_weights():
    g = torch.Generator().manual_seed(3)
    low, high, rl, rh = (torch.rand(2, 3, 8, 8, generator=g) for _ in range(4))
    il, ih = (torch.rand(2, 1, 8, 8, generator=g) for _ in range(2))
    w = KinD({}, CPU).config["loss_weights"]["decomposition"]
    t = losses.decomposition_terms(low, high, rl, il, rh, ih, w)
    assert float(t["recon_high"]) == pytest.approx(float((rh * ih - high).abs().mean()))
    assert float(t["equal_r"]) == pytest.approx(0.01 * float((rl - rh).abs().mean()))
    assert float(t["i_mutual"]) == pytest.approx(0.2 * float(losses.mutual_i_loss(il, ih)))
    assert float(t["i_input_low"]) == pytest.approx(
        0.15 * float(losses.mutual_i_input_loss(il, low))
    )


def test_gaussian_blur_matches_skimage():
    from skimage.filters import gaussian

    a = np.random.default_rng(0).random((30, 33))
    ours = gaussian_blur(torch.tensor(a)[None, None], 3.0)[0, 0].numpy()
    assert np.allclose(ours, gaussian(a, 3), atol=1e-10)


def test_minmax_normalisation_per_image():
    x = torch.stack([torch.full((3, 2, 2), 0.2), torch.linspace(0.1, 0.5, 12).view(3, 2, 2)])
    y = minmax_normalize(x)
    assert torch.allclose(y[0], torch.zeros(3, 2, 2))  # flat image: (x - min) / 0.001 = 0
    assert float(y[1].min()) == 0.0 and float(y[1].max()) == pytest.approx(1.0)


def _pairs(root, n=3, size=(40, 44)) -> list[Sample]:
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        high = rng.integers(30, 220, (*size, 3), dtype=np.uint8)
        low = (high * 0.2).astype(np.uint8)
        write_png(root / f"low{k}.png", low)
        write_png(root / f"high{k}.png", high)
        out.append(Sample(f"s{k}", root / f"low{k}.png", root / f"high{k}.png"))
    return out


def test_training_crops_are_normalised_by_their_whole_image(tmp_path):
    samples = _pairs(tmp_path, n=1)
    patches = Patches([(s.low, s.high) for s in samples], patch=8, batch_size=1, seed=0)
    raw = patches.batch(0)
    norm = NormalizedPairs(patches, True).batch(0)
    from llbench.io.images import read_image

    for pos, path in enumerate((samples[0].low, samples[0].high)):
        arr = read_image(path) / 255.0
        lo, hi = arr.min(), arr.max()
        assert torch.allclose(norm[pos], (raw[pos] - lo) / (hi - lo), atol=1e-6)


def test_restoration_learning_rate_schedule():
    f = lr_lambda(10, [800, 1250, 1500], [0.5, 0.25, 0.1])
    assert f(0) == 1.0 and f(8009) == 1.0  # epoch 800 still at lr
    assert f(8010) == 0.5 and f(12509) == 0.5 and f(12510) == 0.25 and f(15010) == 0.1
    with pytest.raises(ConfigError):
        lr_lambda(10, [1], [])


def _ctx(tmp_path, samples, logs=None) -> TrainContext:
    return TrainContext(
        dataset=None,
        samples=samples,
        workdir=tmp_path / "work",
        seed=3,
        device=CPU,
        log=(lambda s, v: logs.append(dict(v))) if logs is not None else (lambda s, v: None),
    )


SMALL = {
    "max_steps": 1,
    "phases": {
        "decomposition": {"batch_size": 2, "patch_size": 32},
        "adjustment": {"batch_size": 4, "patch_size": 32},
        "restoration": {"batch_size": 1, "patch_size": 32},
    },
}


def test_three_phases_in_order_and_restoration_output_is_the_enhanced_image(tmp_path):
    m = KinD(SMALL, CPU)
    phases = m.training_phases(_ctx(tmp_path, _pairs(tmp_path)))
    assert [p.name for p in phases] == ["decomposition", "adjustment", "restoration"]
    assert [p.modules for p in phases] == [[m.net.decom], [m.net.adjust], [m.net.restoration]]
    last = phases[-1]
    out, terms = last.loss(0, last.batches(0))
    out = out.detach()
    assert out.shape == (1, 3, 32, 32) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert set(terms) == {"square", "grad", "ssim"}
    sum(terms.values()).backward()
    assert all(p.grad is None for p in m.net.decom.parameters())
    assert all(p.grad is None for p in m.net.adjust.parameters())
    assert m.net.restoration.out.weight.grad is not None


def test_adjustment_phase_trains_both_directions_with_the_codes_ratios(tmp_path):
    m = KinD(SMALL, CPU)
    phase = m.training_phases(_ctx(tmp_path, _pairs(tmp_path)))[1]
    seen = {}
    real = m.net.adjust.forward

    def spy(illumination, ratio):
        seen["source"], seen["ratio"] = illumination, ratio
        return real(illumination, ratio)

    m.net.adjust.forward = spy
    low, high = phase.batches(0)
    phase.loss(0, (low, high))
    with torch.no_grad():
        _, il = m.net.decom(low)
        _, ih = m.net.decom(high)
    r = (il / (ih + 1e-4)).mean(dim=(1, 2, 3))
    kinds = set()
    for n in range(low.shape[0]):
        value = seen["ratio"][n, 0, 0, 0]
        assert torch.all(seen["ratio"][n] == value)  # a constant map
        if torch.allclose(seen["source"][n], il[n]):
            kinds.add("brighten")
            assert float(value) == pytest.approx(float(1 / r[n] + 1e-4), rel=1e-5)
        else:
            kinds.add("darken")
            assert torch.allclose(seen["source"][n], ih[n])
            assert float(value) == pytest.approx(float(r[n]), rel=1e-5)
    assert kinds  # (which directions a 4-crop batch draws is seeded)


def test_one_adam_step_of_each_phase_matches_a_hand_written_update(tmp_path):
    torch.manual_seed(0)
    m = KinD(SMALL, CPU)
    ctx = _ctx(tmp_path, _pairs(tmp_path))
    for index, module in enumerate((m.net.decom, m.net.adjust, m.net.restoration)):
        phase = m.training_phases(ctx)[index]
        before = [p.detach().clone() for p in module.parameters()]
        module.zero_grad()
        _, terms = phase.loss(0, phase.batches(0))
        sum(terms.values()).backward()
        grads = [p.grad.clone() for p in module.parameters()]
        opt = phase.make_optimizer(phase.parameters())
        opt.step()
        assert opt.param_groups[0]["lr"] == 1e-4
        for p, b, g in zip(module.parameters(), before, grads, strict=True):
            assert torch.allclose(p.detach(), b - 1e-4 * g / (g.abs() + 1e-8), atol=1e-7)


def test_fit_runs_the_three_phases(tmp_path):
    logs: list = []
    m = KinD(SMALL, CPU)
    m.fit(_ctx(tmp_path, _pairs(tmp_path), logs))
    assert m.training_info["phases"] == {"decomposition": 1, "adjustment": 1, "restoration": 1}
    names = set().union(*logs)
    assert {"decomposition/i_mutual", "adjustment/grad", "restoration/ssim"} <= names


def test_test_time_pipeline_with_and_without_post_processing():
    torch.manual_seed(1)
    plain = KinD({"test_postprocess": False, "test_ratio": 3.0}, CPU)
    x = torch.rand(1, 3, 24, 32) * 0.4 + 0.05
    with torch.no_grad():
        xn = minmax_normalize(x)
        r, i = plain.net.decom(xn)
        ratio = torch.full_like(i, 3.0)
        expected = plain.net.restoration(r, i) * plain.net.adjust(i, ratio)
        assert torch.allclose(plain.enhance(x), expected.clamp(0, 1), atol=1e-6)
        post = KinD({"test_ratio": 3.0}, CPU)
        post.load_state_dict(plain.state_dict())
        fused = post.enhance(x)
        assert not torch.allclose(fused, plain.enhance(x))
        # fusion with the input: where I -> 1 the output is the (normalised) input
        assert fused.shape == x.shape
    with pytest.raises(ConfigError, match="test_ratio"):
        KinD({"test_ratio": 0}, CPU)


def test_decoder_sites_are_the_restoration_decoder_and_transform_changes_output(method):
    sites = method.decoder_sites()
    assert [s.module for s in sites] == [f"restoration.dec{k}" for k in (6, 7, 8, 9)]
    assert [s.stride for s in sites] == [8, 4, 2, 1]
    x = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(4)) * 0.5
    with torch.no_grad():
        base = method.enhance(x)
    for site in sites:
        seen = {}

        def fn(f, seen=seen):
            seen["shape"] = tuple(f.shape)
            return f * 0.5 + 0.1

        handle = transform_site(method, site.name, fn)
        with torch.no_grad():
            changed = method.enhance(x)
        handle.remove()
        with torch.no_grad():
            restored = method.enhance(x)
        expect = (1, site.channels, math.ceil(40 / site.stride), math.ceil(48 / site.stride))
        assert seen["shape"] == expect
        assert not torch.allclose(changed, base, atol=1e-5), site.name
        assert torch.equal(restored, base)


def test_weights_round_trip_and_bad_files(tmp_path, method):
    path = tmp_path / "w.pt"
    method.save_weights(path)
    other = KinD({}, CPU)
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        assert not torch.allclose(other.enhance(x), method.enhance(x))
        other.load_weights(path)
        assert torch.equal(other.enhance(x), method.enhance(x))
    state = torch.load(path, weights_only=True)
    del state["restoration.dec6.up.weight"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(WeightsError, match="dec6"):
        other.load_weights(tmp_path / "partial.pt")


@pytest.mark.slow
def test_quick_preset_on_synthetic_beats_the_dark_input(tmp_path):
    import llbench

    kw = {"home": tmp_path, "metrics": ["psnr", "ssim"], "progress": False, "device": "cpu"}
    dark = llbench.run("input", "synthetic", **kw)
    trained = llbench.run("kind", "synthetic", preset="quick", **kw)
    assert trained.ok and trained.n_images == 9
    assert trained.scores["psnr"] > dark.scores["psnr"] + 1.0
    assert trained.scores["ssim"] > dark.scores["ssim"]


def test_tensorflow_variables_exported_to_npz_load_into_the_same_network(tmp_path, method):
    from llbench.plugins.kind.method import tf_table
    from llbench.plugins.retinexnet import tf_weights

    table = tf_table()
    assert len(table) == len(method.state_dict())
    assert table["restoration.dec6.up.weight"] == "Restoration_net/up_6/weights"
    state = method.state_dict()
    arrays = {tf: tf_weights.to_tf(state[key]) for key, tf in table.items()}
    assert arrays["Restoration_net/up_6/weights"].shape == (2, 2, 256, 512)  # [kh, kw, out, in]
    assert arrays["DecomNet/g_conv1_1/weights"].shape == (3, 3, 3, 32)
    np.savez(tmp_path / "tf.npz", **arrays)
    other = KinD({}, CPU)
    other.load_weights(tmp_path / "tf.npz")
    x = torch.rand(1, 3, 24, 30)
    with torch.no_grad():
        assert torch.equal(other.enhance(x), method.enhance(x))
