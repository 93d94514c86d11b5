"""CRNet / MCMT (plugins/mcmt): blocks, losses by hand, EMA, labelled subset, configs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from llbench.config import effective_config, load_config_file
from llbench.errors import ConfigError, WeightsError
from llbench.pluginhost.host import get_host
from llbench.plugins import mcmt
from llbench.plugins.mcmt import losses as L
from llbench.plugins.mcmt.model import (
    LMRG,
    ConvMemory,
    CRNet,
    LayerAttention,
    MaskedConv,
    MaskedResidualBlock,
    build_crnet,
)
from llbench.plugins.mcmt.training import select_labelled, teacher_noise

TINY = {"width": 4, "groups": 3, "recurrences": 2, "blocks": 2}


def _method(name: str, **over):
    spec = get_host().method(name)
    return spec.build({**spec.default_config, **over}, torch.device("cpu"))


# -- blocks ------------------------------------------------------------------------------------
def test_block_shapes():
    x6 = torch.rand(2, 6, 13, 17)
    x = torch.rand(2, 8, 13, 17)
    assert MaskedConv(6, 8)(x6).shape == (2, 8, 13, 17)
    assert MaskedConv(8, 3, act="identity")(x).shape == (2, 3, 13, 17)
    assert MaskedConv(6, 8, masked=False)(x6).shape == (2, 8, 13, 17)
    assert MaskedResidualBlock(8)(x).shape == x.shape
    h, (h2, c) = ConvMemory(8)(x, None)
    assert h.shape == c.shape == x.shape and h is h2
    h3, _ = ConvMemory(8)(x, (h, c))
    assert h3.shape == x.shape
    stack = torch.rand(2, 5, 8, 13, 17)
    assert LayerAttention()(stack).shape == stack.shape
    assert LayerAttention().weights(stack).shape == (2, 5, 5)
    low = torch.rand(2, 3, 13, 17)
    group = LMRG(width=8, blocks=3, recurrences=2)
    assert group(low, low).shape == low.shape
    final, mids = CRNet(width=8, groups=4, recurrences=2, blocks=2)(low)
    assert final.shape == low.shape and len(mids) == 3
    assert all(m.shape == low.shape for m in mids)
    final, mids = CRNet(width=4, groups=1, recurrences=1, blocks=1)(low)
    assert final.shape == low.shape and mids == []


def test_masked_conv_by_hand():
    mc = MaskedConv(1, 1)
    with torch.no_grad():
        for conv, centre, bias in ((mc.feature, 2.0, -1.0), (mc.gate, 1.0, 0.0)):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = centre
            conv.bias.fill_(bias)
    x = torch.tensor([[[[0.1, 0.7], [0.5, 0.9]]]])
    expected = torch.relu(2 * x - 1) * torch.sigmoid(x)
    torch.testing.assert_close(mc(x), expected)
    assert mc(x)[0, 0, 0, 0] == 0  # ReLU(2 * 0.1 - 1) = 0
    tail = MaskedConv(1, 1, act="identity")
    with torch.no_grad():
        tail.load_state_dict(mc.state_dict())
    torch.testing.assert_close(tail(x), (2 * x - 1) * torch.sigmoid(x))  # negative allowed
    plain = MaskedConv(1, 1, masked=False)
    assert plain.gate is None
    with torch.no_grad():
        plain.feature.load_state_dict(mc.feature.state_dict())
    torch.testing.assert_close(plain(x), torch.relu(2 * x - 1))
    mrb = MaskedResidualBlock(4)
    y = torch.rand(1, 4, 5, 5)
    torch.testing.assert_close(mrb(y), y + mrb.mc2(mrb.mc1(y)))


def test_conv_memory_by_hand():
    mem = ConvMemory(1)
    with torch.no_grad():
        mem.gates.weight.zero_()
        mem.gates.bias.copy_(torch.tensor([0.0, 1.0, 0.5, -1.0]))  # i, f, g, o
    x = torch.rand(1, 1, 3, 3)
    c0 = torch.full((1, 1, 3, 3), 0.3)
    h, (_, c) = mem(x, (torch.zeros_like(c0), c0))
    sig = torch.sigmoid
    c_ref = sig(torch.tensor(1.0)) * 0.3 + sig(torch.tensor(0.0)) * math.tanh(0.5)
    torch.testing.assert_close(c, torch.full_like(c0, float(c_ref)))
    torch.testing.assert_close(h, sig(torch.tensor(-1.0)) * torch.tanh(c))


def test_lam_with_scale_zero_is_identity():
    lam = LayerAttention()
    stack = torch.randn(2, 5, 3, 7, 9) * 10
    assert lam.scale.item() == 0.0  # initialised to 0 (HAN)
    assert torch.equal(lam(stack), stack)
    assert torch.equal(LayerAttention("paper")(stack), stack)


@pytest.mark.parametrize("energy", ["han-code", "paper"])
def test_lam_weights_by_hand(energy):
    lam = LayerAttention(energy)
    with torch.no_grad():
        lam.scale.fill_(0.5)
    f1, f2 = torch.full((1, 1, 1, 1), 1.0), torch.full((1, 1, 1, 1), 2.0)
    stack = torch.stack([f1, f2], dim=1)  # B=1, n=2, C=H=W=1: E = [[1, 2], [2, 4]]
    e = torch.tensor([[1.0, 2.0], [2.0, 4.0]])
    if energy == "han-code":
        e = e.max(dim=1, keepdim=True).values - e  # [[1, 0], [2, 0]]
    w = torch.exp(e) / torch.exp(e).sum(dim=1, keepdim=True)
    torch.testing.assert_close(lam.weights(stack)[0], w)
    out = lam(stack)
    torch.testing.assert_close(out[0, 0].flatten(), (1.0 + 0.5 * (w[0, 0] * 1 + w[0, 1] * 2))[None])
    torch.testing.assert_close(out[0, 1].flatten(), (2.0 + 0.5 * (w[1, 0] * 1 + w[1, 1] * 2))[None])


def test_crnet_chains_groups_and_returns_their_outputs():
    torch.manual_seed(0)
    net = CRNet(width=4, groups=3, recurrences=2, blocks=2)
    low = torch.rand(1, 3, 9, 11)
    final, mids = net(low)
    x = low
    outs = []
    for g in net.groups:
        state, y = None, x
        for _ in range(2):  # shared weights, memory carried between the recurrences
            y, state = g.step(low, y, state)
        x = y
        outs.append(y)
    torch.testing.assert_close(final, outs[-1])
    for a, b in zip(mids, outs[:2], strict=True):
        torch.testing.assert_close(a, b)


def test_ablation_switches_change_the_blocks():
    rn = CRNet(masked=False, layer_attention=False, width=4, groups=2, blocks=2)
    assert all(m.gate is None for m in rn.modules() if isinstance(m, MaskedConv))
    assert all(g.lam is None and g.fuse is None for g in rn.groups)
    full = CRNet(width=4, groups=2, blocks=2)
    assert all(m.gate is not None for m in full.modules() if isinstance(m, MaskedConv))
    assert all(isinstance(g.lam, LayerAttention) for g in full.groups)


def test_paper_network_parameter_count():
    net = build_crnet(mcmt.CRNET_CONFIG)
    per_group = (
        2 * (6 * 32 * 9 + 32)  # head MC
        + (64 * 128 * 9 + 128)  # ConvLSTM gates
        + 5 * 2 * 2 * (32 * 32 * 9 + 32)  # 5 MRBs of 2 MCs
        + 1  # LAM scale
        + (160 * 32 * 9 + 32)  # fusion conv
        + 2 * (32 * 3 * 9 + 3)  # tail MC
    )
    assert sum(p.numel() for p in net.parameters()) == 4 * per_group == 1_240_732


# -- losses ------------------------------------------------------------------------------------
def test_ssim_of_constant_images_by_hand():
    a, b = 0.2, 0.6
    x, y = (torch.full((1, 3, 16, 16), v, dtype=torch.float64) for v in (a, b))
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # contrast-structure term is 1
    assert L.ssim(x, y).item() == pytest.approx(expected, rel=1e-9)
    # float32 (training): E[x^2] - E[x]^2 cancels to within ~1e-8 of the true variance
    assert L.ssim(x.float(), y.float()).item() == pytest.approx(expected, abs=1e-4)
    assert L.ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    assert L.enhancement_loss(x, y).item() == pytest.approx(-expected, rel=1e-5)


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 32, 40, generator=g, dtype=torch.float64)
    y = (x + 0.2 * torch.rand(1, 3, 32, 40, generator=g, dtype=torch.float64)).clamp(0, 1)
    ref = structural_similarity(
        x[0].permute(1, 2, 0).numpy(),
        y[0].permute(1, 2, 0).numpy(),
        channel_axis=2,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )
    assert L.ssim(x, y).item() == pytest.approx(ref, abs=1e-6)
    with pytest.raises(ValueError, match="at least 11"):
        L.ssim(x[..., :10, :], y[..., :10, :])


def test_mid_step_and_consistency_losses_by_hand():
    t = torch.full((1, 3, 4, 4), 0.3)
    mids = [torch.full_like(t, 0.2), torch.full_like(t, 0.5)]
    assert L.mid_step_loss(mids, t).item() == pytest.approx((0.1 + 0.2) / 2)
    assert L.mid_step_loss([], t).item() == 0.0
    s, te = torch.full_like(t, 0.5), torch.full_like(t, 0.2)
    assert L.consistency_loss(s, te).item() == pytest.approx(0.09)
    mc = L.mid_consistency_loss([s, s], [te, torch.full_like(t, 0.4)])
    assert mc.item() == pytest.approx((0.09 + 0.01) / 2)
    final = torch.full((1, 3, 12, 12), 0.3)
    terms = L.progressive_terms(final, [torch.full_like(final, 0.1)], final, 2.0)
    assert terms["enhance"].item() == pytest.approx(-1.0, abs=1e-6)
    assert terms["mid_step"].item() == pytest.approx(2.0 * 0.2)
    assert set(L.progressive_terms(final, [final], final, 0.0)) == {"enhance"}
    terms = L.mcr_terms((s, [s, s]), (te, [te, te]), lambda_mc=0.5, lambda_mcr=2.0)
    assert terms["consistency"].item() == pytest.approx(2.0 * 0.09)
    assert terms["mid_consistency"].item() == pytest.approx(2.0 * 0.5 * 0.09)
    assert set(L.mcr_terms((s, [s]), (te, [te]), 0.0, 1.0)) == {"consistency"}


def test_consistency_target_takes_no_gradient():
    s = torch.full((1, 3, 4, 4), 0.5, requires_grad=True)
    te = torch.full((1, 3, 4, 4), 0.2, requires_grad=True)
    L.consistency_loss(s, te).backward()
    assert te.grad is None
    torch.testing.assert_close(s.grad, torch.full_like(s, 2 * 0.3 / s.numel()))


def test_ema_arithmetic():
    student, teacher = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        for p in student.parameters():
            p.fill_(3.0)
        for p in teacher.parameters():
            p.fill_(1.0)
    L.ema_update(teacher, student, 0.99)
    for p in teacher.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.99 * 1.0 + 0.01 * 3.0))
    L.ema_update(teacher, student, 0.99)
    for p in teacher.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.99 * 1.02 + 0.01 * 3.0))
    for p in student.parameters():  # the student is untouched
        assert torch.all(p == 3.0)


# -- labelled subset ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "fraction", "size"),
    [(485, 0.1, 48), (24, 0.1, 2), (10, 0.25, 2), (7, 1.0, 7), (3, 0.5, 2)],
)
def test_labelled_subset_size(n, fraction, size):
    keys = [f"img{i:04d}" for i in range(n)]
    chosen = select_labelled(keys, fraction, seed=0)
    assert len(chosen) == size == round(fraction * n)
    assert set(chosen) <= set(keys) and chosen == sorted(chosen)


def test_labelled_subset_is_deterministic_for_a_seed():
    keys = [f"k{i}" for i in range(100)]
    a = select_labelled(keys, 0.1, seed=5)
    assert a == select_labelled(list(reversed(keys)), 0.1, seed=5)  # input order is irrelevant
    assert a != select_labelled(keys, 0.1, seed=6)
    with pytest.raises(ConfigError, match="selects no labelled"):
        select_labelled(keys[:4], 0.1, seed=0)
    with pytest.raises(ConfigError, match="label_fraction"):
        select_labelled(keys, 1.5, seed=0)


def test_teacher_noise_depends_on_seed_and_step_only():
    a = teacher_noise((2, 3, 8, 8), 0.01, seed=1, step=4)
    assert torch.equal(a, teacher_noise((2, 3, 8, 8), 0.01, seed=1, step=4))
    assert not torch.equal(a, teacher_noise((2, 3, 8, 8), 0.01, seed=1, step=5))
    assert float(a.std()) == pytest.approx(0.01, rel=0.25)


# -- registration, configs, weights ------------------------------------------------------------
def test_registration_and_defaults_are_the_papers():
    host = get_host()
    crnet, semi = host.method("crnet"), host.method("mcmt")
    assert crnet.supervision == "paired" and semi.supervision == "semi-supervised"
    assert crnet.trains and semi.trains
    cfg = semi.default_config
    assert (cfg["width"], cfg["groups"], cfg["recurrences"], cfg["blocks"]) == (32, 4, 2, 5)
    assert (cfg["lr"], cfg["lr_milestones"], cfg["lr_gamma"], cfg["epochs"]) == (
        5e-4,
        [20, 40, 60, 90],
        0.5,
        100,
    )
    assert (cfg["ema_decay"], cfg["label_fraction"], cfg["patches_per_image"]) == (0.99, 0.1, 30)
    assert cfg["lambda_ms"] == cfg["lambda_mc"] == cfg["lambda_mcr"] == 1.0
    assert crnet.default_config["label_fraction"] == 1.0
    for spec in (crnet, semi):  # the quick preset only holds keys of the default config
        effective_config(spec.default_config, spec.presets, "quick")


def test_ablation_config_files_match_table_2():
    files = sorted(p.name for p in mcmt.CONFIG_DIR.glob("*.toml"))
    assert files == sorted(mcmt.ABLATIONS)
    expected = {  # file: (masked_conv, layer_attention, lambda_ms, lambda_mc, label_fraction)
        "rn.toml": (False, False, 0.0, None, 1.0),
        "mrn.toml": (True, False, 0.0, None, 1.0),
        "mrn_plus.toml": (True, False, 1.0, None, 1.0),
        "crnet_minus.toml": (True, True, 0.0, None, 1.0),
        "crnet.toml": (True, True, 1.0, None, 1.0),
        "crnet_10pct.toml": (True, True, 1.0, None, 0.1),
        "mcmt_minus.toml": (True, True, 1.0, 0.0, 0.1),
        "mcmt.toml": (True, True, 1.0, 1.0, 0.1),
    }
    host = get_host()
    for name, method in mcmt.ABLATIONS.items():
        spec = host.method(method)
        cfg = effective_config(
            spec.default_config, spec.presets, None, load_config_file(mcmt.CONFIG_DIR / name)
        )
        got = (
            cfg["masked_conv"],
            cfg["layer_attention"],
            cfg["lambda_ms"],
            cfg.get("lambda_mc"),
            cfg["label_fraction"],
        )
        assert got == expected[name], name
        net = build_crnet({**cfg, **TINY})
        assert all(
            (m.gate is not None) == cfg["masked_conv"]
            for m in net.modules()
            if isinstance(m, MaskedConv)
        )
        assert all((g.lam is not None) == cfg["layer_attention"] for g in net.groups)


def test_ablation_config_lookup():
    assert mcmt.ablation_config("mrn_plus") == mcmt.CONFIG_DIR / "mrn_plus.toml"
    assert mcmt.ablation_config("rn.toml").is_file()
    with pytest.raises(ConfigError, match="known: crnet, crnet_10pct"):
        mcmt.ablation_config("nope")


def test_bad_configs_are_refused():
    with pytest.raises(ConfigError, match="patch_size"):
        _method("crnet", patch_size=8)
    with pytest.raises(ConfigError, match="label_fraction"):
        _method("mcmt", label_fraction=0.0)
    with pytest.raises(ConfigError, match="groups"):
        _method("crnet", groups=0)
    with pytest.raises(ConfigError, match="unknown config key"):
        _method("crnet", labelled_per_batch=4)


def test_enhance_clamps_and_weights_round_trip(tmp_path: Path):
    torch.manual_seed(0)
    a = _method("mcmt", **TINY)
    low = torch.rand(2, 3, 20, 24) * 0.2
    out = a.enhance(low)
    assert out.shape == low.shape and out.min() >= 0 and out.max() <= 1
    path = tmp_path / "w.pt"
    a.save_weights(path)
    b = _method("crnet", **TINY)  # a plain CRNet state dict: mcmt's student loads into crnet
    b.load_weights(path)
    assert torch.equal(b.enhance(low), out)
    c = _method("crnet", **{**TINY, "layer_attention": False})
    with pytest.raises(WeightsError, match="do not fit"):
        c.load_weights(path)
    state = torch.load(path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert not any(k.startswith("teacher") for k in state)
    assert np.isfinite(out.numpy()).all()
