"""SKF around trainable methods: DRBN-SKF parameter counts against Table 1 and the code, one
generator and one discriminator step against hand-written Adam steps, the frozen segmenter,
resume with the discriminator's state, a third-party method wrapped through the public hooks,
the missing-segmenter stop, and the quick preset on ``synthetic`` (slow)."""

from __future__ import annotations

import pytest
import torch
from test_skf_support import StubSegmenter, paired_samples
from torch import nn

from llbench.api import (
    DecoderSite,
    Patches,
    Phase,
    SegmenterSpec,
    TrainableMethod,
    TrainContext,
    hookimpl,
    paired_items,
    run_phases,
)
from llbench.errors import WeightsError
from llbench.plugins import skf
from llbench.plugins.drbn import PRESETS
from llbench.plugins.drbn.method import DRBNMethod
from llbench.plugins.skf.adversarial import SALoss

SMALL = {"patch_size": 16, "batch_size": 2, "max_steps": 1, "lr": 1e-3, "checkpoint_every": 1}


def _ctx(tmp_path, samples, name="work", seed=3):
    return TrainContext(
        dataset=None, samples=samples, workdir=tmp_path / name, seed=seed, device="cpu"
    )


def _drbn_skf(base_cfg=None, seg=None, **cfg):
    torch.manual_seed(0)
    base = DRBNMethod({**SMALL, "G0": 8, "G": 4, **(base_cfg or {})}, "cpu")
    config = {"sa": {"lr_ratio": 1.0}, "checkpoint_every": 1}
    config.update(cfg)
    return skf.wrap(base, seg or StubSegmenter(), config, name="drbn-skf")


def test_drbn_skf_parameters_match_the_code_and_the_widened_count():
    m = _drbn_skf({"G0": 16, "G": 8})
    assert m.sources == {"s1": "logits", "s2": "stride:4", "s4": "stride:8"}  # the code's pairing
    counts = m.parameter_counts()
    assert (counts["se.s4"], counts["se.s2"], counts["se.s1"]) == (26_812, 7_238, 7_414)
    assert counts["base"] == 557_668 and counts["total"] == 599_132  # 0.5991 M (code)
    wide = _drbn_skf(PRESETS["skf-width"])
    assert wide.parameter_counts()["total"] == 2_356_402  # 2.3564 M; Table 1 prints 2.43 M


def test_se_modules_change_the_output_and_weights_round_trip(tmp_path):
    m = _drbn_skf()
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        guided = m.enhance(x)
        for h in m.handles:
            h.remove()
        plain = m.base.enhance(x)
    assert guided.shape == x.shape and not torch.allclose(guided, plain)
    state = m.state_dict()
    assert "base.recur4.SFENet1.weight" in state and "se.s4.attn.temperature" in state
    other = _drbn_skf()
    other.load_state_dict(state)
    assert torch.equal(other.se["s1"].conv1.weight, m.se["s1"].conv1.weight)
    with pytest.raises(WeightsError, match="base"):
        other.load_state_dict({"recur1.SFENet1.weight": torch.zeros(1)})


def test_one_generator_and_one_discriminator_step_and_the_frozen_segmenter(tmp_path):
    samples = paired_samples(tmp_path / "data")
    a, b = _drbn_skf(), _drbn_skf()
    seg_before = {k: v.clone() for k, v in a.segmenter.net.state_dict().items()}
    ctx = _ctx(tmp_path, samples)
    # reference, by hand on an identical copy: the wrapped loss, its gradients, D's loss
    phase = b.training_phases(ctx)[-1]
    trained = phase.parameters()
    assert not any(p is q for p in trained for q in b.segmenter.net.parameters())
    assert any(p is b.se["s4"].conv1.weight for p in trained)
    batch = phase.batches(0)
    output, terms = phase.loss(0, batch)
    assert set(terms) == {"ssim1", "ssim2", "ssim4", "sch", "sa_g"}
    sum(terms.values()).backward()
    g_before = {n: p.detach().clone() for n, p in b.se.named_parameters()}
    g_before.update({f"base.{n}": p.detach().clone() for n, p in b.base.net.named_parameters()})
    g_grads = {n: p.grad.clone() for n, p in b.se.named_parameters()}
    g_grads.update({f"base.{n}": p.grad.clone() for n, p in b.base.net.named_parameters()})
    d = b.discriminator
    d.zero_grad()
    with torch.no_grad():
        probs_out = b.segmenter.segment(output).probs
        probs_real = b.segmenter.segment(batch[1]).probs
    d_terms = SALoss(d).discriminator_loss(output.detach(), batch[1], probs_out, probs_real)
    (d_terms["d_global"] + d_terms["d_local"]).backward()
    d_before = {n: p.detach().clone() for n, p in d.named_parameters()}
    d_grads = {n: p.grad.clone() for n, p in d.named_parameters()}
    # the real thing: one step of SKF's training loop
    a.fit(ctx)
    lr = 1e-3  # Adam's first step is -lr * g / (|g| + eps); D's lr = lr_ratio (1) x lr
    got = {n: p.detach() for n, p in a.se.named_parameters()}
    got.update({f"base.{n}": p.detach() for n, p in a.base.net.named_parameters()})
    for n, g in g_grads.items():
        assert torch.allclose(got[n], g_before[n] - lr * g / (g.abs() + 1e-8), atol=1e-6), n
    for n, p in a.discriminator.named_parameters():
        g = d_grads[n]
        assert torch.allclose(p.detach(), d_before[n] - lr * g / (g.abs() + 1e-8), atol=1e-6), n
    assert not torch.equal(a.discriminator.conv0.weight, d_before["conv0.weight"])
    for k, v in a.segmenter.net.state_dict().items():  # the segmenter stays frozen
        assert torch.equal(v, seg_before[k]), k
    assert all(not p.requires_grad for p in a.segmenter.net.parameters())
    assert not a.segmenter.net.training
    saved = ctx.load_checkpoint()
    assert set(saved["extra"]) >= {"discriminator", "d_optimizer"}


def test_resume_restores_the_discriminator_and_matches_an_uninterrupted_run(tmp_path):
    samples = paired_samples(tmp_path / "data")
    full = _drbn_skf({"max_steps": 2})
    full.fit(_ctx(tmp_path, samples, "full"))
    part = _drbn_skf({"max_steps": 1})
    part.fit(_ctx(tmp_path, samples, "part"))
    resumed = _drbn_skf({"max_steps": 2})
    resumed.fit(_ctx(tmp_path, samples, "part"))
    assert resumed.training_info["resumed_from_step"] == 1
    for k, v in full.state_dict().items():
        assert torch.allclose(resumed.state_dict()[k], v, atol=1e-5), k
    for k, v in full.discriminator.state_dict().items():
        assert torch.allclose(
            resumed.discriminator.state_dict()[k].float(), v.float(), atol=1e-5
        ), k


def test_ablation_switches_reach_the_training_terms(tmp_path):
    samples = paired_samples(tmp_path / "data")
    only_sch = _drbn_skf(se={"enabled": False}, sa={"weight": 0.0})
    assert not only_sch.se and only_sch.parameter_counts()["se"] == 0
    phase = only_sch.training_phases(_ctx(tmp_path, samples))[-1]
    _, terms = phase.loss(0, phase.batches(0))
    assert set(terms) == {"ssim1", "ssim2", "ssim4", "sch"} and phase.extra_step is None


def test_a_missing_hrnet_stops_with_where_to_put_it(tmp_path, monkeypatch, home):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from llbench.pluginhost.host import get_host

    spec = get_host().method("drbn-skf")
    assert spec.default_config["segmenter"] == "hrnet-w48-pascal-context"
    with pytest.raises(WeightsError) as err:
        spec.build(spec.default_config, torch.device("cpu"))
    msg = str(err.value)
    assert "hrnet_w48_pascal_context_cls59_480x480.pth" in msg and str(tmp_path / "torch") in msg
    assert 'segmenter = "tiny-seg"' in msg


# -- a third party's method, defined here, outside llbench ----------------------------------------
class ThirdPartyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
        self.fuse = nn.Conv2d(16, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        e = torch.relu(self.enc(x))
        d = torch.relu(self.down(e))
        u = torch.relu(self.fuse(torch.cat((self.up(d), e), 1)))
        return torch.sigmoid(self.out(u))


class ThirdPartyMethod(TrainableMethod):
    """Two phases (the second fine-tunes the decoder) and two decoder sites."""

    def __init__(self, config, device):
        super().__init__(config, device)
        self.net = ThirdPartyNet()

    def enhance(self, low):
        return self.net(low).clamp(0, 1)

    def decoder_sites(self):
        return (DecoderSite("half", "down", 16, 2), DecoderSite("full", "fuse", 8, 1))

    def training_phases(self, ctx):
        data = Patches(paired_items(ctx.samples), patch=16, batch_size=2, seed=ctx.seed)

        def l1(step, batch):
            out = self.net(batch[0])
            return out, {"l1": (out - batch[1]).abs().mean()}

        def adam(params):
            return torch.optim.Adam(params, lr=1e-3)

        decoder = [self.net.up, self.net.fuse, self.net.out]
        return [
            Phase("all", 1, data.batch, l1, [self.net], adam),
            Phase("decoder", 2, data.batch, l1, decoder, adam),
        ]

    def fit(self, ctx):
        run_phases(
            ctx, "third-party", self.training_phases(ctx), {"net": self.net}, device=self.device
        )


class ThirdPartyPlugin:
    @hookimpl
    def register_methods(register):
        from llbench.api import MethodSpec

        register(
            MethodSpec(
                "third-party",
                ThirdPartyMethod,
                "a third party's net",
                trains=True,
                supervision="paired",
            )
        )
        register(skf.skf_method_spec("third-party-skf", "third-party", {}, {}))

    @hookimpl
    def register_segmenters(register):
        register(
            SegmenterSpec(
                "stub-seg", lambda device: StubSegmenter(classes=5), "stub", classes=("a",) * 5
            )
        )


def test_tiny_seg_features_feed_the_coarser_drbn_sites():
    from llbench.segmenters.tiny import TinySegNet, TinySegSegmenter

    torch.manual_seed(0)
    seg = TinySegSegmenter(TinySegNet())
    m = _drbn_skf({"G0": 8, "G": 4}, seg=seg)
    assert m.sources == {"s1": "logits", "s2": "stride:2", "s4": "stride:4"}
    x = torch.rand(1, 3, 24, 32)
    assert m.enhance(x).shape == x.shape


def test_a_third_party_method_is_wrapped_through_the_public_hooks(tmp_path, home):
    from llbench.pluginhost.host import get_host

    host = get_host()
    host.register(ThirdPartyPlugin, "third-party-tests")
    spec = host.method("third-party-skf")
    cfg = dict(spec.default_config)
    cfg["segmenter"] = "stub-seg"
    torch.manual_seed(0)
    m = spec.build(cfg, torch.device("cpu"))
    assert m.sources == {"full": "logits", "half": "stride:4"}
    se_before = {k: v.clone() for k, v in m.se.state_dict().items()}
    logged = {}
    ctx = _ctx(tmp_path, paired_samples(tmp_path / "data"))
    ctx.log = lambda step, values: logged.update(values)
    m.fit(ctx)
    assert {"decoder/sch", "decoder/sa_g", "decoder/d_loss", "decoder/l1"} <= set(logged)
    assert not any(k.startswith("all/s") for k in logged)  # SCH and SA on the last phase only
    assert any(not torch.equal(v, m.se.state_dict()[k]) for k, v in se_before.items())
    state = ctx.load_checkpoint()
    assert state["method"] == "third-party-skf" and "discriminator" in state["extra"]
    x = torch.rand(1, 3, 20, 28)
    y = m.enhance(x)
    assert y.shape == x.shape
    prov = m.provenance()
    assert prov["segmenter"] == "stub-seg" and prov["sites"] == {
        "half": "stride:4",
        "full": "logits",
    }


@pytest.mark.slow
def test_drbn_skf_quick_preset_beats_the_dark_input_on_synthetic(home):
    import llbench

    dark = llbench.run("input", "synthetic", metrics=["psnr", "ssim"], device="cpu", progress=False)
    run = llbench.run(
        "drbn-skf",
        "synthetic",
        preset="quick",
        metrics=["psnr", "ssim"],
        device="cpu",
        progress=False,
    )
    assert run.ok and run.n_images == dark.n_images
    assert run.scores["psnr"] > dark.scores["psnr"] + 1.0
    assert run.scores["ssim"] > dark.scores["ssim"]


@pytest.mark.parametrize(
    ("base", "base_params", "total"),
    [("retinexnet", 444_613, 728_871), ("kind", 8_016_008, 8_500_036)],
)
def test_retinexnet_and_kind_skf_parameters(base, base_params, total, home):
    """With HRNet's source widths (48 @ 1/4, 96 @ 1/8, 59 logits): RetinexNet-SKF 0.7289 M
    (Table 1: 0.62 -> 0.66), KinD-SKF 8.50 M (Table 1: 8.03 -> 8.50)."""
    from llbench.pluginhost.host import get_host

    host = get_host()
    spec = host.method(f"{base}-skf")
    base_method = host.method(base).build(spec.default_config["base"], torch.device("cpu"))
    cfg = {k: v for k, v in spec.default_config.items() if k != "base"}
    m = skf.wrap(base_method, StubSegmenter(classes=59), cfg, name=spec.name)
    counts = m.parameter_counts()
    assert counts["base"] == base_params and counts["total"] == total


def test_the_authors_drbn_skf_checkpoint_layout_maps_onto_ours():
    m = _drbn_skf({"G0": 16, "G": 8})
    m.official_map = skf.map_drbn_skf_official
    g = torch.Generator().manual_seed(5)
    official = {}
    for k, v in m.base.state_dict().items():
        official[k] = torch.randn(v.shape, generator=g)
    for site, blk in (("s4", "fuseblk_1"), ("s2", "fuseblk_2"), ("s1", "fuseblk_3")):
        for k, v in m.se[site].state_dict().items():
            official[f"recur4.{blk}.{k}"] = torch.randn(v.shape, generator=g)
    assert official["recur4.fuseblk_1.conv1.weight"].shape == (32, 96, 1, 1)
    assert official["recur4.fuseblk_3.attn.q_dwconv.weight"].shape == (16, 16, 3, 3)
    m.load_state_dict(official)
    assert torch.equal(
        m.se["s2"].ffn.project_in.weight, official["recur4.fuseblk_2.ffn.project_in.weight"]
    )
    assert torch.equal(m.base.net.recur2.SFENet2.bias, official["recur2.SFENet2.bias"])
