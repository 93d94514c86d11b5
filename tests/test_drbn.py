"""DRBN (stage 1): parameter counts, official checkpoint layout, shapes, the 3-scale SSIM loss,
one optimizer step against a hand-written Adam step, resume, decoder sites, quick training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llbench.api import TrainContext, count_parameters, transform_site
from llbench.api.datasets import Sample
from llbench.errors import ConfigError, WeightsError
from llbench.io.images import write_png
from llbench.plugins.drbn import DEFAULT_CONFIG, PRESETS
from llbench.plugins.drbn.losses import band_targets, drbn_loss_terms, ssim
from llbench.plugins.drbn.method import DRBNMethod
from llbench.plugins.drbn.model import DRBN


def test_parameter_counts_match_official_code_and_skf_table1_width():
    assert count_parameters(DRBN()) == 557_668  # official code, G0 = 16, G = 8 (0.5577 M)
    assert count_parameters(DRBNBandCheck()) == 139_417  # one recurrence, as 4 x 139,417
    wide = DRBNMethod(PRESETS["skf-width"], "cpu")
    assert count_parameters(wide.net) == 2_208_932  # SKF Table 1's 2.21 M


def DRBNBandCheck():
    from llbench.plugins.drbn.model import DRBNBand

    return DRBNBand()


def test_official_checkpoint_layout_loads(tmp_path):
    """A file in the released ``model_s1.pt`` layout (keys and shapes) loads strictly."""
    g = torch.Generator().manual_seed(0)
    ref = DRBN()
    state = {k: torch.randn(v.shape, generator=g) * 0.01 for k, v in ref.state_dict().items()}
    assert state["recur1.SFENet1.weight"].shape == (16, 6, 3, 3)
    assert state["recur4.Up2.weight"].shape == (32, 16, 4, 4)
    assert state["recur2.RDBs.2.convs.3.conv.0.weight"].shape == (16, 80, 3, 3)
    assert len(state) == 336
    path = tmp_path / "model_s1.pt"
    torch.save(state, path)
    m = DRBNMethod({}, "cpu")
    m.load_weights(path)
    assert torch.equal(m.net.recur3.UPNet4[1].weight, state["recur3.UPNet4.1.weight"])
    bad = dict(state)
    bad.pop("recur4.Up1.bias")
    torch.save(bad, path)
    with pytest.raises(WeightsError):
        m.load_weights(path)


def test_enhance_keeps_any_size_and_range():
    m = DRBNMethod({}, "cpu")
    x = torch.rand(2, 3, 30, 42)
    y = m.enhance(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    outs = m.net(torch.rand(1, 3, 32, 48))
    assert [tuple(o.shape[-2:]) for o in outs] == [(32, 48), (16, 24), (8, 12)]


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch_ssim by hand: zero-padded 11x11 Gaussian (sigma 1.5) statistics per pixel."""
    x = np.arange(11) - 5
    g = np.exp(-(x**2) / 4.5)
    g /= g.sum()
    w = np.outer(g, g)
    h, wd = a.shape
    pa, pb = np.pad(a, 5), np.pad(b, 5)
    vals = []
    for i in range(h):
        for j in range(wd):
            wa, wb = pa[i : i + 11, j : j + 11], pb[i : i + 11, j : j + 11]
            ma, mb = (w * wa).sum(), (w * wb).sum()
            va, vb = (w * wa * wa).sum() - ma**2, (w * wb * wb).sum() - mb**2
            cov = (w * wa * wb).sum() - ma * mb
            c1, c2 = 1e-4, 9e-4
            vals.append(
                ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(vals))


def test_ssim_matches_hand_computed_reference():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(1, 1, 9, 7, generator=g), torch.rand(1, 1, 9, 7, generator=g)
    ref = _ssim_reference(a[0, 0].double().numpy(), b[0, 0].double().numpy())
    assert ssim(a, b).item() == pytest.approx(ref, abs=1e-5)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)


def test_loss_is_negative_ssim_at_three_strided_scales():
    g = torch.Generator().manual_seed(2)
    high = torch.rand(2, 3, 16, 16, generator=g)
    h1, h2, h4 = band_targets(high)
    assert torch.equal(h2, high[:, :, ::2, ::2]) and torch.equal(h4[0, :, 1, 1], high[0, :, 4, 4])
    outs = (torch.rand(2, 3, 16, 16, generator=g), h2.clone(), torch.zeros(2, 3, 4, 4))
    terms = drbn_loss_terms(outs, high)
    assert set(terms) == {"ssim1", "ssim2", "ssim4"}
    assert terms["ssim2"].item() == pytest.approx(-1.0, abs=1e-6)
    assert terms["ssim1"].item() == pytest.approx(-ssim(outs[0], high).item())


def _paired_samples(root, n=3, size=(20, 24)):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        high = rng.integers(40, 255, (*size, 3), dtype=np.uint8)
        low = (high * 0.2).astype(np.uint8)
        write_png(root / "high" / f"{i}.png", high)
        write_png(root / "low" / f"{i}.png", low)
        out.append(Sample(str(i), root / "low" / f"{i}.png", root / "high" / f"{i}.png"))
    return out


def _ctx(tmp_path, samples, name="work"):
    return TrainContext(
        dataset=None, samples=samples, workdir=tmp_path / name, seed=3, device="cpu"
    )


SMALL = {"patch_size": 16, "batch_size": 2, "max_steps": 4, "checkpoint_every": 2, "lr": 1e-3}


def test_one_optimizer_step_equals_hand_written_adam(tmp_path):
    samples = _paired_samples(tmp_path / "data")
    torch.manual_seed(0)
    m = DRBNMethod({**SMALL, "max_steps": 1}, "cpu")
    before = {k: v.clone() for k, v in m.net.state_dict().items()}
    ctx = _ctx(tmp_path, samples)
    phase = m.training_phases(ctx)[0]
    low, high = phase.batches(0)
    ref = DRBN()
    ref.load_state_dict(before)
    loss = sum(drbn_loss_terms(ref(low), high).values())
    loss.backward()
    m.fit(ctx)
    lr, (b1, b2), eps = 1e-3, (0.9, 0.999), 1e-8
    for name, p in ref.named_parameters():
        g = p.grad
        m_hat = (1 - b1) * g / (1 - b1)
        v_hat = (1 - b2) * g * g / (1 - b2)
        expected = p.detach() - lr * m_hat / (v_hat.sqrt() + eps)
        assert torch.allclose(m.net.state_dict()[name], expected, atol=1e-6), name


def test_resume_gives_the_uninterrupted_weights(tmp_path):
    samples = _paired_samples(tmp_path / "data")
    torch.manual_seed(0)
    full = DRBNMethod(SMALL, "cpu")
    init = {k: v.clone() for k, v in full.net.state_dict().items()}
    full.fit(_ctx(tmp_path, samples, "full"))
    part = DRBNMethod({**SMALL, "max_steps": 2}, "cpu")
    part.net.load_state_dict(init)
    part.fit(_ctx(tmp_path, samples, "part"))
    resumed = DRBNMethod(SMALL, "cpu")
    resumed.fit(_ctx(tmp_path, samples, "part"))  # continues from the step-2 checkpoint
    for k, v in full.net.state_dict().items():
        assert torch.allclose(resumed.net.state_dict()[k], v, atol=1e-6), k
    assert resumed.training_info["resumed_from_step"] == 2


def test_training_rejects_patch_sizes_not_divisible_by_four(tmp_path):
    m = DRBNMethod({"patch_size": 30}, "cpu")
    with pytest.raises(ConfigError, match="multiple of 4"):
        m.training_phases(_ctx(tmp_path, _paired_samples(tmp_path / "d")))


def test_decoder_sites_have_declared_shapes_and_can_be_transformed():
    m = DRBNMethod({}, "cpu")
    seen = {}
    handles = []
    for site in m.decoder_sites():

        def fn(f, name=site.name):
            seen[name] = tuple(f.shape)
            return f * 0

        handles.append(transform_site(m, site.name, fn))
    x = torch.rand(1, 3, 32, 40)
    y = m.net(x)[0]
    strides = {s.name: (s.channels, s.stride) for s in m.decoder_sites()}
    for name, (c, s) in strides.items():
        assert seen[name] == (1, c, math.ceil(32 / s), math.ceil(40 / s))
    assert seen["s4"][1] == 32 and seen["s1"][1] == 16
    for h in handles:
        h.remove()
    assert not torch.allclose(y, m.net(x)[0])  # the zeroed decoder features changed the output


def test_defaults_are_the_official_settings():
    d = DEFAULT_CONFIG
    assert (d["G0"], d["G"], d["C"], d["recurrences"]) == (16, 8, 4, 4)
    assert (d["lr"], d["epochs"], d["lr_decay_epochs"], d["gamma"]) == (1e-4, 300, 200, 0.5)
    assert (d["batch_size"], d["patch_size"]) == (4, 256)


@pytest.mark.slow
def test_quick_preset_beats_the_dark_input_on_synthetic(home):
    import llbench

    dark = llbench.run("input", "synthetic", metrics=["psnr", "ssim"], device="cpu", progress=False)
    run = llbench.run(
        "drbn", "synthetic", preset="quick", metrics=["psnr", "ssim"], device="cpu", progress=False
    )
    assert run.ok and run.n_images == dark.n_images
    assert run.scores["psnr"] > dark.scores["psnr"] + 1.0
    assert run.scores["ssim"] > dark.scores["ssim"]
