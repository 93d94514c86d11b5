"""HiLLIE: the ranker, Eq. 1, Eq. 2, the fine-tuning step, the ranker metric and the spec."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from llbench.api import count_parameters
from llbench.errors import ConfigError
from llbench.plugins.hillie import finetune as FT
from llbench.plugins.hillie import ranker as R
from llbench.plugins.hillie.selection import score_gaps, top_k


# -- ranker (Appendix E) --------------------------------------------------------------------------
def test_ranker_parameter_count_matches_the_paper():
    net = R.Ranker()
    assert count_parameters(net) == R.PAPER_PARAMS == 13_734_281
    assert round(count_parameters(net) / 1e6, 2) == 13.73
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == 10  # the first conv + nine blocks
    assert [c.stride[0] for c in convs[1:]] == [2, 1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.features) == 9
    assert all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2
               for m in net.features if isinstance(m, nn.LeakyReLU))  # fmt: skip


def test_ranker_scores_any_size_and_is_siamese():
    torch.manual_seed(0)
    net = R.Ranker().eval()
    a, b = torch.rand(2, 3, 48, 64), torch.rand(2, 3, 48, 64)
    assert net(a).shape == (2,)
    assert net(torch.rand(1, 3, 40, 72)).shape == (1,)  # not square, not a multiple of 32
    pa, pb = net.pair(a, b)
    assert pa.shape == pb.shape == (2,)
    torch.testing.assert_close(pa, net(a), rtol=1e-5, atol=1e-5)  # eval BN: same weights
    torch.testing.assert_close(pb, net(b), rtol=1e-5, atol=1e-5)


def test_ranker_saves_and_loads(tmp_path):
    net = R.Ranker().eval()
    R.save_ranker(net, tmp_path / "g.pt")
    back = R.load_ranker(tmp_path / "g.pt")
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(back(x), net(x))
    torch.save({"x": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(Exception, match="not a HiLLIE ranker"):
        R.load_ranker(tmp_path / "bad.pt")


# -- Eq. 2 --------------------------------------------------------------------------------------
def test_margin_ranking_loss_hand_values_and_ties_dropped():
    p_a = torch.tensor([1.0, 0.2, 0.0, 0.3])
    p_b = torch.tensor([0.0, 0.5, 3.0, 0.1])
    r_a = torch.tensor([2.0, 0.0, 1.0, 5.0])  # lower label = better image
    r_b = torch.tensor([1.0, 1.0, 1.0, 4.0])
    # pair 0: a worse -> max(0, p_b - p_a + .5) = 0; pair 1: a better -> max(0, .2-.5+.5) = .2
    # pair 2: tie, dropped; pair 3: a worse -> max(0, .1 - .3 + .5) = .3
    loss = R.ranking_loss(p_a, p_b, r_a, r_b, eps=0.5)
    assert loss.item() == pytest.approx((0.0 + 0.2 + 0.3) / 3)
    keep = torch.tensor([0, 1, 3])
    y = torch.tensor([1.0, -1.0, 1.0])
    ref = nn.MarginRankingLoss(margin=0.5)(p_a[keep], p_b[keep], y)
    assert loss.item() == pytest.approx(ref.item())
    same = R.ranking_loss(p_a, p_b, r_a, r_a)
    assert same.item() == 0.0  # every pair ties: nothing to learn


def test_ranker_training_learns_an_order_and_resumes(tmp_path):
    from PIL import Image

    files = []
    for i in range(4):
        for j, v in enumerate((30, 200)):
            arr = (torch.rand(40, 40, 3) * 40 + v).clamp(0, 255).byte().numpy()
            p = tmp_path / f"{i}_{j}.png"
            Image.fromarray(arr).save(p)
            files.append(p)
    pairs = [(files[2 * i], files[2 * i + 1], 1.0, 0.0) for i in range(4)]  # bright better
    pairs.append((files[0], files[0], 0.5, 0.5))  # a tie, dropped
    sched = R.RankerSchedule(steps=4, lr=1e-4, batch_size=2, crop=32, checkpoint_every=2)
    torch.manual_seed(0)
    a = R.Ranker()
    b = copy.deepcopy(a)
    info = R.train_ranker(a, pairs, sched, checkpoint=tmp_path / "a.pt", seed=1, device="cpu")
    assert info["pairs"] == 4 and info["dropped_ties"] == 1
    # interrupted after 2 steps, then resumed: same weights as uninterrupted
    half = R.RankerSchedule(steps=2, lr=1e-4, batch_size=2, crop=32, checkpoint_every=2)
    R.train_ranker(b, pairs, half, checkpoint=tmp_path / "b.pt", seed=1, device="cpu")
    c = R.Ranker()
    info = R.train_ranker(c, pairs, sched, checkpoint=tmp_path / "b.pt", seed=1, device="cpu")
    assert info["resumed_from_step"] == 2
    for (k, va), vc in zip(a.state_dict().items(), c.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vc, msg=k)


# -- Eq. 1 --------------------------------------------------------------------------------------
def test_top_k_by_score_gap():
    gaps = score_gaps([0.0, 1.0, float("nan"), 2.0, -1.0], [0.1, 0.5, 0.0, 1.5, -0.7])
    assert gaps[:2] == pytest.approx([0.1, 0.5]) and gaps[2] != gaps[2]
    assert top_k(gaps, 3) == [1, 3, 4]  # 0.5 (first), 0.5, 0.3; NaN never chosen
    assert top_k(gaps, 2) == [1, 3]
    assert top_k(gaps, 300) == [1, 3, 4, 0]
    with pytest.raises(ConfigError):
        top_k(gaps, 0)


# -- Eq. 3-5: one fine-tuning step against a hand-written reference ------------------------------
class _Tiny:
    """A minimal trainable enhancer: sigmoid(1x1 conv)."""

    def __init__(self):
        self.net = nn.Conv2d(3, 3, 1)

    def enhance(self, x):
        return torch.sigmoid(self.net(x))

    def modules(self):
        return [self.net]


def test_finetune_step_matches_hand_written_reference():
    torch.manual_seed(0)
    method = _Tiny()
    previous = FT.frozen_copy(method)
    with torch.no_grad():  # f(n+1) already moved away from f(n), so l_con has a gradient
        method.net.weight.add_(0.3 * torch.randn_like(method.net.weight))
    ranker = R.Ranker().eval()
    content = FT.ContentLoss(None)  # random VGG-16 features (the "random" choice)
    low = torch.rand(2, 3, 32, 32)
    w0, b0 = method.net.weight.detach().clone(), method.net.bias.detach().clone()

    # reference, written out: relu5_1 of VGG-16 without pool4, instance norm, MSE; sigmoid rank
    def phi(x):
        v = content.vgg
        h = (x - v.mean) / v.std
        mods = list(v.features)
        for i, m in enumerate(mods):
            if i != 23:  # the 4th max-pool
                h = m(h)
        return h

    def inorm(f):
        mu = f.mean(dim=(2, 3), keepdim=True)
        var = f.var(dim=(2, 3), unbiased=False, keepdim=True)
        return (f - mu) / torch.sqrt(var + 1e-5)

    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    out = torch.sigmoid(nn.functional.conv2d(low, w, b))
    target = previous.enhance(low).detach()
    l_con = ((inorm(phi(out)) - inorm(phi(target))) ** 2).mean()
    l_r = torch.sigmoid(ranker(out)).mean()
    total = l_con + 0.1 * l_r
    gw, gb = torch.autograd.grad(total, (w, b))
    lr, eps = 1e-3, 1e-8  # Adam's first step: m_hat = g, v_hat = g^2
    ref_w = w0 - lr * gw / (gw.abs() + eps)
    ref_b = b0 - lr * gb / (gb.abs() + eps)

    opt = torch.optim.Adam(FT.trainable_parameters(method), lr=lr)
    values = FT.finetune_step(
        method, previous, ranker, content, low, opt, lambda_r=0.1, noise_seed=0
    )
    assert values["loss"] == pytest.approx(total.item(), rel=1e-5)
    assert values["con"] == pytest.approx(l_con.item(), rel=1e-5)
    assert values["rank"] == pytest.approx(0.1 * l_r.item(), rel=1e-5)
    torch.testing.assert_close(method.net.weight.detach(), ref_w, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(method.net.bias.detach(), ref_b, rtol=1e-4, atol=1e-6)
    assert all(not p.requires_grad for p in previous.net.parameters())


def test_finetune_refuses_a_non_differentiable_enhance():
    class NoGrad(_Tiny):
        def enhance(self, x):
            with torch.no_grad():
                return super().enhance(x)

    m = NoGrad()
    opt = torch.optim.Adam(FT.trainable_parameters(m), lr=1e-3)
    with pytest.raises(ConfigError, match="not differentiable"):
        FT.finetune_step(
            m, FT.frozen_copy(m), R.Ranker().eval(), None, torch.rand(1, 3, 32, 32), opt,
            lambda_r=0.1, noise_seed=0,
        )  # fmt: skip


def test_same_noise_gives_the_stochastic_target_and_output_the_same_draw():
    with FT.same_noise(5, torch.device("cpu")):
        a = torch.rand(3)
    with FT.same_noise(5, torch.device("cpu")):
        b = torch.rand(3)
    torch.testing.assert_close(a, b)


# -- the metric plugin and the method spec --------------------------------------------------------
def test_ranker_metric_plugin_scores_images(home, tmp_path, monkeypatch):
    from llbench.pluginhost.host import get_host

    spec = get_host().metric("hillie-ranker")
    assert spec.kind == "no-reference" and not spec.higher_better
    assert "export-ranker" in spec.available()
    torch.manual_seed(3)
    net = R.Ranker().eval()
    R.save_ranker(net, home / "weights" / "hillie-ranker.pt")
    assert spec.available() is None
    metric = spec.build(torch.device("cpu"), {})
    x = torch.rand(2, 3, 40, 56)
    scores = metric(x)
    assert scores.shape == (2,)
    torch.testing.assert_close(scores, net(x))
    monkeypatch.setenv("LLBENCH_HILLIE_RANKER", str(tmp_path / "none.pt"))
    assert "none.pt" in spec.available()


def test_method_spec_and_config(home):
    from llbench.pluginhost.host import get_host

    host = get_host()
    spec = host.method("hillie")
    assert spec.supervision == "human-in-the-loop" and spec.trains
    cfg = spec.default_config
    assert (cfg["stages"], cfg["k"], cfg["votes"], cfg["annotator"]) == (5, 300, 3, "study")
    assert cfg["finetune"] == {
        "steps": 10000, "lr": 1e-5, "batch_size": 2, "lambda_r": 0.1, "checkpoint_every": 500,
    }  # fmt: skip
    assert cfg["ranker_g0"]["steps"] == 60000 and cfg["ranker_g0"]["halve_every"] == 20000
    assert cfg["ranker_gn"]["lr"] == 1e-5 and cfg["ranker_gn"]["margin"] == 0.5
    assert {"study", "simulated", "oracle"} <= set(host.registry("annotator").names())
    assert host.registry("annotator").get("oracle").leaks_supervision
    assert host.registry("annotator").get("study").human
    m = spec.build({"base": "zero-dce++", "annotator": "simulated"}, torch.device("cpu"))
    assert m.base_spec.name == "zero-dce++"
    x = torch.rand(1, 3, 48, 48)
    torch.testing.assert_close(m.enhance(x), m.base.enhance(x))
    assert set(m.state_dict()) == set(m.base.state_dict())
    with pytest.raises(ConfigError, match="does not train"):
        spec.build({"base": "gamma"}, torch.device("cpu"))
    with pytest.raises(Exception, match="unknown annotator"):
        spec.build({"annotator": "nobody"}, torch.device("cpu"))


def test_paper_preset_fine_tunes_lightendiffusion_unet_through_the_sampler(home):
    from llbench.pluginhost.host import get_host

    spec = get_host().method("hillie")
    assert spec.presets["paper"]["base"] == "lightendiffusion"
    cfg = {**spec.presets["paper"], "base_preset": "quick", "annotator": "simulated"}
    m = spec.build(cfg, torch.device("cpu"))
    params = FT.trainable_parameters(m.base, ["Unet"])
    unet = {id(p) for p in m.base.net.Unet.parameters()}
    assert params and {id(p) for p in params} == unet
    assert not any(p.requires_grad for p in m.base.net.decom.parameters())
    torch.manual_seed(0)
    previous = FT.frozen_copy(m.base)
    before = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=1e-3)
    values = FT.finetune_step(
        m.base, previous, R.Ranker().eval(), None, torch.rand(1, 3, 64, 64) * 0.3, opt,
        lambda_r=0.1, noise_seed=11,
    )  # fmt: skip
    assert set(values) == {"loss", "rank"}
    assert any(not torch.equal(a, p) for a, p in zip(before, params, strict=True))
    with pytest.raises(ConfigError, match="finetune_modules"):
        FT.trainable_parameters(m.base, ["nope"])
