"""SKF building blocks: SE module (shapes, counts, attention against a hand-written reference),
soft histogram (hard-histogram limit, gradient), SCH per class, SA loss (worst patch, the two
code bugs fixed), ablation configs."""

from __future__ import annotations

import tomllib

import pytest
import torch
import torch.nn.functional as F

from llbench.api import count_parameters
from llbench.config import merge
from llbench.plugins import skf
from llbench.plugins.skf.adversarial import Discriminator, SALoss, top2_masks, worst
from llbench.plugins.skf.losses import (
    boundary_keep,
    class_soft_histograms,
    sch_loss,
    soft_histogram,
)
from llbench.plugins.skf.se import SEModule, gelu_tanh


def test_se_parameter_counts_match_the_authors_code():
    assert count_parameters(SEModule(96, 32)) == 26_812
    assert count_parameters(SEModule(48, 16)) == 7_238
    assert count_parameters(SEModule(59, 16)) == 7_414


def _reference_se(se: SEModule, fi: torch.Tensor, fs: torch.Tensor) -> torch.Tensor:
    """Eq. 4-5 written out: explicit LN, per-head loops, the code's operation order."""

    def ln(x, norm):
        mu = x.mean(1, keepdim=True)
        var = ((x - mu) ** 2).mean(1, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * norm.body.weight[
            None, :, None, None
        ] + norm.body.bias[None, :, None, None]

    a = se.attn
    fs = F.interpolate(fs, size=fi.shape[-2:], mode="nearest")
    s = ln(F.conv2d(fs, se.conv1.weight, se.conv1.bias), se.norm1)
    x = ln(fi, se.norm1)
    n, c, h, w = x.shape
    kv = F.conv2d(F.conv2d(x, a.kv.weight), a.kv_dwconv.weight, padding=1, groups=2 * c)
    k, v = kv[:, :c], kv[:, c:]
    q = F.conv2d(F.conv2d(s, a.q.weight), a.q_dwconv.weight, padding=1)
    out = torch.zeros_like(x)
    d = c // a.heads
    for b in range(n):
        for head in range(a.heads):
            sl = slice(head * d, (head + 1) * d)
            qh = q[b, sl].reshape(d, -1)
            kh = k[b, sl].reshape(d, -1)
            qh = qh / qh.norm(dim=1, keepdim=True).clamp_min(1e-12)
            kh = kh / kh.norm(dim=1, keepdim=True).clamp_min(1e-12)
            att = torch.softmax(qh @ kh.T * a.temperature[head, 0, 0], dim=1)
            out[b, sl] = (att @ v[b, sl].reshape(d, -1)).reshape(d, h, w)
    mid = x + F.conv2d(out, a.project_out.weight)
    y = ln(mid, se.norm2)
    f = se.ffn
    y = F.conv2d(
        F.conv2d(y, f.project_in.weight),
        f.dwconv.weight,
        padding=1,
        groups=f.dwconv.weight.shape[0],
    )
    y1, y2 = y.chunk(2, 1)
    g = 0.5 * y1 * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (y1 + 0.044715 * y1**3)))
    return mid + F.conv2d(g * y2, f.project_out.weight)


def test_se_output_and_attention_match_reference():
    torch.manual_seed(0)
    se = SEModule(6, 8)
    with torch.no_grad():
        se.attn.temperature.copy_(torch.tensor([[[0.7]], [[1.9]]]))
        se.norm1.body.weight.normal_()
        se.norm1.body.bias.normal_()
    fi, fs = torch.randn(2, 8, 5, 6), torch.randn(2, 6, 3, 3)  # F_s coarser than F_i
    out = se(fi, fs)
    assert out.shape == fi.shape
    assert torch.allclose(out, _reference_se(se, fi, fs), atol=1e-5)
    attn = se.attn.attention(fi, fi)
    assert attn.shape == (2, 2, 4, 4) and torch.allclose(attn.sum(-1), torch.ones(2, 2, 4))
    x = torch.linspace(-3, 3, 13)
    assert torch.allclose(gelu_tanh(x), F.gelu(x, approximate="tanh"), atol=1e-6)


def test_soft_histogram_tends_to_the_hard_histogram():
    g = torch.Generator().manual_seed(0)
    bins = 256
    k = torch.randint(0, bins, (500,), generator=g)
    x = (k + 0.5 + 0.6 * (torch.rand(500, generator=g) - 0.5)) / bins  # away from bin edges
    hard = torch.histc(x, bins=bins, min=0, max=1)
    assert torch.allclose(soft_histogram(x, bins, alpha=1e6), hard, atol=1e-3)
    soft = soft_histogram(x, bins, alpha=400.0)
    assert not torch.allclose(soft, hard, atol=0.1)  # a = 400 spreads each pixel over ~3 bins
    assert soft.sum().item() == pytest.approx(500, rel=1e-2)  # mass leaks past 0 and 1 only


def test_soft_histogram_gradient_matches_finite_differences():
    x = torch.tensor([0.2, 0.5031, 0.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: soft_histogram(t, 16, alpha=40.0), (x,))
    # a pixel left of a bin centre moves into that bin when it grows: positive derivative
    y = torch.tensor([(100 + 0.2) / 256], dtype=torch.float64, requires_grad=True)
    soft_histogram(y, 256, 400.0)[100].backward()
    assert y.grad.item() > 0


def test_windowed_histograms_equal_the_exact_form():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 6, 5, generator=g) * 1.1 - 0.05  # some values outside [0, 1]
    lab = torch.randint(0, 4, (2, 6, 5), generator=g)
    fast = class_soft_histograms(x, lab, 4, radius=12)
    exact = class_soft_histograms(x, lab, 4, radius=256)
    assert fast.shape == (2, 4, 3, 256) and torch.allclose(fast, exact, atol=1e-6)


def test_sch_per_class_with_a_known_mask():
    g = torch.Generator().manual_seed(2)
    target = torch.rand(1, 3, 4, 4, generator=g)
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[:, 2:] = 1
    output = target.clone()
    output[:, 0, 2:, :] = (output[:, 0, 2:, :] + 0.3).clamp(max=1)  # red of class 1 only
    expected = 0.0
    for c in range(3):
        for k in range(2):
            m = labels[0] == k
            expected += (
                (soft_histogram(output[0, c][m]) - soft_histogram(target[0, c][m])).abs().mean()
            )
    got = sch_loss(output, target, labels, num_classes=2)
    assert got.item() == pytest.approx(expected.item() / (1 * 2 * 16 * 3), rel=1e-5)
    only_red_class1 = (
        (
            soft_histogram(output[0, 0][labels[0] == 1])
            - soft_histogram(target[0, 0][labels[0] == 1])
        )
        .abs()
        .mean()
    )
    assert expected.item() == pytest.approx(only_red_class1.item(), rel=1e-5)
    pix = sch_loss(output, target, labels, num_classes=2, normalization="pixels")
    assert pix.item() == pytest.approx(expected.item() / 16, rel=1e-5)
    # swapping pixels between classes keeps the global histogram, not the per-class ones
    swapped = target.clone()
    swapped[:, :, [0, 2]] = target[:, :, [2, 0]]
    assert sch_loss(swapped, target, labels, 2, semantic=False).item() == pytest.approx(0, abs=1e-7)
    assert sch_loss(swapped, target, labels, 2).item() > 1e-4


def test_boundary_pixels_can_be_left_out():
    labels = torch.zeros(1, 6, 6, dtype=torch.long)
    labels[:, :, 3:] = 1
    keep = boundary_keep(labels, 1)
    assert keep[0, :, [2, 3]].sum() == 0 and keep[0, :, [0, 1, 4, 5]].all()


def test_top2_masks_are_the_two_largest_classes_and_distinct():
    probs = torch.zeros(2, 4, 2, 2)
    probs[0, 2] = 0.6
    probs[0, 1] = 0.3
    probs[0, 0] = 0.1
    probs[1, 3] = 0.5
    probs[1, 0, 0] = 0.5
    probs[1, 0, 1] = 0.4
    probs[1, 1, 1] = 0.1
    m1, m2 = top2_masks(probs)
    assert torch.equal(m1[0, 0], probs[0, 2]) and torch.equal(m2[0, 0], probs[0, 1])
    assert torch.equal(m1[1, 0], probs[1, 3]) and torch.equal(m2[1, 0], probs[1, 0])
    assert m1.data_ptr() != m2.data_ptr()  # bug 1 of the code: the second mask aliased the first


def test_worst_patch_is_chosen_per_image():
    a = torch.tensor([0.1, 0.9, 0.4])
    b = torch.tensor([0.5, 0.2, 0.4])
    assert worst([a, b]).item() == pytest.approx((0.5 + 0.9 + 0.4) / 3)


class _MeanD(torch.nn.Module):
    """Score = sigmoid(mean of channel 0 * w), remembers its inputs' channel counts."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(2.0))
        self.seen = []

    def forward(self, x):
        self.seen.append(x.shape[1])
        return torch.sigmoid(self.w * x[:, 0].mean(dim=(1, 2))).view(-1, 1)


def test_sa_losses_against_hand_computation():
    d = _MeanD()
    sa = SALoss(d)
    fake = torch.full((2, 3, 4, 4), 0.2)
    real = torch.full((2, 3, 4, 4), 0.8)
    probs = torch.zeros(2, 3, 4, 4)
    probs[:, 0, :, :2] = 1.0  # class 0 (largest) covers the left half
    probs[:, 1, :, 2:] = 0.7  # class 1 the right half, less confidently
    probs[:, 2, :, 2:] = 0.3
    terms = sa.discriminator_loss(fake, real, probs, probs)
    s = lambda v: torch.sigmoid(torch.tensor(2.0 * v))  # noqa: E731
    glob = ((s(0.2) - 0) ** 2 + (s(0.8) - 1) ** 2) / 2
    # candidates: image x mask of class 0 (mean 0.5 v) and of class 1 (mean 0.35 v)
    lf = max(s(0.5 * 0.2) ** 2, s(0.35 * 0.2) ** 2)
    lr = max((s(0.5 * 0.8) - 1) ** 2, (s(0.35 * 0.8) - 1) ** 2)
    assert terms["d_global"].item() == pytest.approx(0.9 * glob.item(), rel=1e-5)
    assert terms["d_local"].item() == pytest.approx(0.1 * (lf + lr).item() / 2, rel=1e-5)
    assert d.seen[:2] == [6, 6]  # bug 2 fixed: D's global loss sees [I; S], as G's does
    g = sa.generator_loss(fake, probs)
    gl = max((s(0.5 * 0.2) - 1) ** 2, (s(0.35 * 0.2) - 1) ** 2)
    assert g.item() == pytest.approx((0.9 * (s(0.2) - 1) ** 2 + 0.1 * gl).item(), rel=1e-5)
    classic = SALoss(d, semantic=False, patch=2)
    d.seen.clear()
    classic.discriminator_loss(fake, real, probs, probs)
    assert d.seen == [3, 3, 3, 3]


def test_one_discriminator_step_trains_the_semantic_input_conv():
    torch.manual_seed(0)
    disc = Discriminator(num_classes=5)
    assert sum(p.numel() for p in disc.conv0.parameters()) == 8 * 64 * 9 + 64
    sa = SALoss(disc)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-3)
    fake, real = torch.rand(2, 3, 32, 32) * 0.3, torch.rand(2, 3, 32, 32)
    probs = torch.softmax(torch.randn(2, 5, 32, 32), 1)
    before = {k: v.clone() for k, v in disc.state_dict().items()}
    terms = sa.discriminator_loss(fake, real, probs, probs)
    loss = terms["d_global"] + terms["d_local"]
    opt.zero_grad()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in disc.named_parameters()}
    opt.step()
    for name, p in disc.named_parameters():  # Adam's first step: -lr * g / (|g| + eps)
        expected = before[name] - 1e-3 * grads[name] / (grads[name].abs() + 1e-8)
        assert torch.allclose(p.detach(), expected, atol=1e-7), name
    assert not torch.equal(disc.conv0.weight, before["conv0.weight"])
    assert disc(torch.rand(1, 8, 20, 28)).shape == (1, 1)


def test_ablation_configs_select_the_tables_settings():
    defaults = skf.skf_defaults({"lr": 1.0})
    got = {}
    for name in skf.ABLATIONS:
        data = tomllib.loads((skf.CONFIG_DIR / name).read_text())
        cfg = merge(defaults, data)
        got[name] = (
            cfg["se"]["enabled"],
            cfg["sch"]["weight"] > 0,
            cfg["sa"]["weight"] > 0,
            cfg["sch"]["semantic"],
            cfg["sa"]["semantic"],
        )
    assert got["sch_only.toml"] == (False, True, False, True, True)
    assert got["sa_only.toml"] == (False, False, True, True, True)
    assert got["se_only.toml"] == (True, False, False, True, True)
    assert got["sch_se.toml"] == (True, True, False, True, True)
    assert got["global_histogram.toml"][3] is False and got["global_histogram.toml"][1]
    assert got["classic_adversarial.toml"][4] is False and got["classic_adversarial.toml"][2]
