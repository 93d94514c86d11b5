"""SLLEN: block shapes, the HSBAB attention against a hand-written reference, the losses of Eq.
7-11 on small tensors with hand-computed values, and G."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llbench.api import count_parameters
from llbench.io.images import write_png
from llbench.plugins.sllen import losses
from llbench.plugins.sllen.model import (
    FFB,
    HSBAB,
    HSEB,
    RSAEB,
    SharedEncoder,
    SLLENNet,
    SSaN,
    pad_to_multiple,
)

W = 4  # base width of the small test networks


def _net(**kw) -> SLLENNet:
    torch.manual_seed(0)
    return SLLENNet(width=W, num_classes=3, attention_dim=4, **kw)


# -- shapes ------------------------------------------------------------------------------------------
def test_encoder_and_ssan_shapes():
    x = torch.rand(2, 3, 32, 48)
    feats = SharedEncoder(W)(x)
    assert [tuple(f.shape) for f in feats] == [
        (2, W, 32, 48),
        (2, 2 * W, 16, 24),
        (2, 4 * W, 8, 12),
        (2, 8 * W, 4, 6),
    ]
    logits, dec = SSaN(W, num_classes=5)(feats)
    assert logits.shape == (2, 5, 32, 48)
    assert [tuple(f.shape[1:]) for f in dec] == [
        (16 * W, 2, 3),
        (8 * W, 4, 6),  # F_e: the shape of F_l
        (4 * W, 8, 12),
        (2 * W, 16, 24),
        (W, 32, 48),
    ]


def test_hseb_maps_the_semantic_map_to_f_l_shape():
    hseb = HSEB(7, (32, 128, 512))
    assert [m.out_channels for m in hseb.body if isinstance(m, torch.nn.Conv2d)] == [32, 128, 512]
    assert all(m.kernel_size == (3, 3) for m in hseb.body if isinstance(m, torch.nn.Conv2d))
    s = torch.rand(1, 7, 24, 40).softmax(dim=1)
    assert hseb(s).shape == (1, 512, 3, 5)


def test_rsaeb_is_identity_when_its_heads_are_zero_and_modulates_otherwise():
    torch.manual_seed(1)
    block = RSAEB(8, 4)
    f_e, f_l = torch.rand(2, 8, 5, 6), torch.rand(2, 8, 5, 6)
    out = block(f_e, f_l)
    assert out.shape == f_l.shape and not torch.allclose(out, f_l)
    for head in (block.gamma, block.beta):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    torch.testing.assert_close(block(f_e, f_l), f_l)
    with torch.no_grad():
        block.gamma.bias.fill_(1.0)  # gamma = 1: F_r = 2 F_l
        block.beta.bias.fill_(0.5)
    torch.testing.assert_close(block(f_e, f_l), 2 * f_l + 0.5)


def test_ffb_weights_the_two_branches():
    torch.manual_seed(2)
    ffb = FFB(6)
    f_a, f_r = torch.rand(1, 6, 4, 5), torch.rand(1, 6, 4, 5)
    torch.nn.init.zeros_(ffb.weight.weight)
    with torch.no_grad():
        ffb.weight.bias.fill_(math.log(3.0))  # sigmoid = 0.75
    expected = 0.75 * ffb.branch_a(f_a) + 0.25 * ffb.branch_r(f_r)
    torch.testing.assert_close(ffb(f_a, f_r), expected)


@pytest.mark.parametrize("size", [(32, 48), (37, 50), (5, 7), (17, 16)])
def test_whole_network_any_size(size):
    net = _net()
    x = torch.rand(2, 3, *size)
    out = net(x)
    assert out.enhanced.shape == x.shape
    assert out.logits.shape == (2, 3, *size)
    assert float(out.enhanced.detach().min()) >= 0.0 and float(out.enhanced.detach().max()) <= 1.0
    assert [e.shape for e in out.encoder] == [d.shape for d in out.decoder]
    logits, _ = net.segment(x)
    torch.testing.assert_close(logits, out.logits)


def test_padding_reflects_and_crops_back():
    x = torch.arange(2 * 3 * 18 * 20, dtype=torch.float32).reshape(2, 3, 18, 20)
    xp, h, w = pad_to_multiple(x)
    assert xp.shape == (2, 3, 32, 32) and (h, w) == (18, 20)
    torch.testing.assert_close(xp[..., :18, :20], x)
    torch.testing.assert_close(xp[..., 18, :20], x[..., 16, :])  # reflection
    assert pad_to_multiple(torch.rand(1, 3, 32, 16))[0].shape == (1, 3, 32, 16)


def test_batch_items_are_independent():
    net = _net().eval()
    x = torch.rand(3, 3, 20, 28)
    with torch.no_grad():
        both = net(x).enhanced
        one = net(x[1:2]).enhanced
    torch.testing.assert_close(both[1:2], one, atol=1e-5, rtol=1e-4)


def test_ablations_drop_their_blocks():
    full = _net()
    assert full.llemn.hsbab is not None and full.llemn.rsaeb is not None
    s1, s2, s3 = _net(hsbab=False), _net(rsaeb=False), _net(hsbab=False, rsaeb=False)
    assert s1.llemn.hsbab is None and s1.llemn.hseb is None and s1.llemn.rsaeb is not None
    assert s2.llemn.rsaeb is None and s2.llemn.hsbab is not None
    assert not s3.llemn.uses_semantics
    assert count_parameters(s3) < count_parameters(s1) < count_parameters(
        full
    ) and count_parameters(s2) < count_parameters(full)
    x = torch.rand(1, 3, 24, 24)
    assert s3(x).logits is None and s3(x).enhanced.shape == x.shape
    s4 = _net(shared_encoder=False)  # SLLEN-4: SSaN has its own encoder
    assert s4.ssan.encoder is not None and s4(x).enhanced.shape == x.shape


def test_paper_width_filters():
    net = SLLENNet(width=64, num_classes=21).to("meta")
    convs = [m for m in net.llemn.hseb.body if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 128, 512]
    assert net.encoder.stage4[0].out_channels == 512 and net.ssan.bottom[0].out_channels == 1024
    total = sum(p.numel() for p in net.parameters())
    ssan = sum(p.numel() for p in net.encoder.parameters()) + sum(
        p.numel() for p in net.ssan.parameters()
    )
    # Ronneberger's U-Net without normalisation: 31,031,810 parameters with a 2-class head
    assert ssan == 31_031_810 + 19 * (64 + 1)
    assert total == 53_295_512


# -- HSBAB (Eq. 4) -----------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [0, 7, 4096])
def test_hsbab_matches_hand_written_attention(chunk):
    torch.manual_seed(3)
    block = HSBAB(channels=6, dim=4, chunk=chunk).requires_grad_(False)
    f_h, f_l = torch.randn(2, 6, 3, 5), torch.randn(2, 6, 3, 5)
    q = torch.einsum("oc,nchw->nohw", block.query.weight[:, :, 0, 0], f_h)
    q = q + block.query.bias.view(1, -1, 1, 1)
    k = torch.einsum("oc,nchw->nohw", block.key.weight[:, :, 0, 0], f_h)
    k = k + block.key.bias.view(1, -1, 1, 1)
    v = torch.einsum("oc,nchw->nohw", block.value.weight[:, :, 0, 0], f_l)
    v = v + block.value.bias.view(1, -1, 1, 1)
    expected = torch.empty(2, 6, 15)
    for n in range(2):
        qn, kn, vn = q[n].reshape(4, 15), k[n].reshape(4, 15), v[n].reshape(6, 15)
        for i in range(15):  # query position i
            scores = [float(qn[:, i] @ kn[:, j]) / math.sqrt(4) for j in range(15)]
            e = [math.exp(s - max(scores)) for s in scores]
            a = torch.tensor([x / sum(e) for x in e])
            expected[n, :, i] = (vn * a).sum(dim=1)
    torch.testing.assert_close(block(f_h, f_l), expected.reshape(2, 6, 3, 5), atol=1e-5, rtol=1e-5)


# -- losses --------------------------------------------------------------------------------------------
def test_segmentation_loss_ignores_255():
    logits = torch.zeros(1, 4, 2, 2)
    logits[0, 2, 0, 0] = math.log(3.0)  # pixel (0,0): p(class 2) = 3 / 6
    labels = torch.tensor([[[2, 255], [0, 255]]])
    expected = (-math.log(0.5) + math.log(4.0)) / 2
    assert losses.segmentation_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_smooth_l1():
    pred, target = torch.tensor([0.0, 0.5, 2.0, -3.0]), torch.zeros(4)
    # 0, 0.5 * 0.25, 2 - 0.5, 3 - 0.5
    assert losses.smooth_l1(pred, target).item() == pytest.approx((0.125 + 1.5 + 2.5) / 4)


def test_distillation_is_l1_with_a_detached_teacher():
    e1 = torch.ones(1, 2, 2, 2, requires_grad=True)
    d1 = torch.zeros(1, 2, 2, 2, requires_grad=True)
    e2 = torch.zeros(1, 1, 1, 2, requires_grad=True)
    d2 = torch.tensor([[[[3.0, 1.0]]]], requires_grad=True)
    loss = losses.distillation([e1, e2], [d1, d2])
    assert loss.item() == pytest.approx((1.0 + 2.0) / 2)
    loss.backward()
    assert e1.grad is None and e2.grad is None
    torch.testing.assert_close(d2.grad, torch.tensor([[[[0.25, 0.25]]]]))
    with pytest.raises(ValueError):
        losses.distillation([e1], [d2])


def test_illumination_tv_follows_retinex():
    low = torch.tensor([[[[0.1, 0.2], [0.3, 0.4]]]])
    enhanced = torch.full_like(low, 0.5)
    torch.testing.assert_close(
        losses.illumination(low, enhanced), torch.tensor([[[[0.2, 0.4], [0.6, 0.8]]]])
    )
    # horizontal differences 0.2, 0.2; vertical 0.4, 0.4
    assert losses.illumination_tv(low, enhanced).item() == pytest.approx(0.6, rel=1e-6)
    dark = torch.zeros_like(low)  # clamped at eps: L = I / 1e-3
    assert losses.illumination_tv(low, dark).item() == pytest.approx(100.0 + 200.0, rel=1e-5)
    flat = low * 2.0  # I = 0.5 Y: constant illumination
    assert losses.illumination_tv(low, flat).item() == pytest.approx(0.0, abs=1e-6)


def test_average_gradient_and_gradient_loss():
    step = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]])
    assert losses.average_gradient(step).item() == pytest.approx(math.sqrt(0.5), rel=1e-6)
    ramp = (torch.arange(4.0) * 0.1).repeat(3, 4, 1).unsqueeze(0)  # 1 x 3 x 4 x 4, columns
    assert losses.average_gradient(ramp).item() == pytest.approx(0.1 / math.sqrt(2), rel=1e-5)
    batch = torch.cat([step, torch.zeros_like(step)])
    expected = (abs(math.sqrt(0.5) - 0.5) + 0.5) / 2
    assert losses.gradient_loss(batch, 0.5).item() == pytest.approx(expected, rel=1e-5)
    x = torch.zeros(1, 3, 4, 4, requires_grad=True)
    losses.gradient_loss(x, 0.1).backward()
    assert torch.isfinite(x.grad).all()  # finite at a flat image


def test_g_is_the_mean_average_gradient_of_the_images(tmp_path):
    flat = np.full((6, 8, 3), 128, np.uint8)
    stripes = np.zeros((6, 8, 3), np.uint8)
    stripes[:, 1::2] = 255  # every horizontal difference is +-1, vertical ones 0
    write_png(tmp_path / "a.png", flat)
    write_png(tmp_path / "b.png", stripes)
    g, n = losses.dataset_average_gradient([tmp_path / "a.png", tmp_path / "b.png"])
    assert n == 2 and g == pytest.approx(math.sqrt(0.5) / 2, rel=1e-9)


def test_perceptual_loss_compares_vgg_features():
    torch.manual_seed(4)
    loss = losses.PerceptualLoss("vgg16", ["relu1_2", "relu2_1"], weights=None)
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    y = torch.rand(2, 3, 16, 16)
    assert loss(y, y).item() == 0.0
    fx, fy = loss.vgg(x), loss.vgg(y)
    expected = (
        (fx["relu1_2"] - fy["relu1_2"]).abs().mean() + (fx["relu2_1"] - fy["relu2_1"]).abs().mean()
    ) / 2
    value = loss(x, y)
    torch.testing.assert_close(value, expected)
    value.backward()
    assert x.grad is not None and all(p.grad is None for p in loss.parameters())
