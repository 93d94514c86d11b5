"""Zero-DCE, Zero-DCE++ and SGZ: official checkpoint layouts and outputs, losses, training.

The "official" reference functions below restate, step by step, the inference procedure of the
authors' scripts (Zero-DCE ``model.py`` / ``lowlight_test.py``; Zero-DCE++ and SGZ ``model.py``
with ``scale_factor = 12`` and the crop to multiples of 12 in ``lowlight_test.py`` /
``test.py``): read the image as ``np.asarray(img) / 255.0`` then ``float()``, functional
convolutions straight from a state dict in the official key layout, ``F.interpolate`` down,
``nn.UpsamplingBilinear2d`` up, eight explicit curve updates. llbench's output must equal them
bit for bit.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from llbench.api.datasets import Dataset, Sample
from llbench.api.methods import TrainContext
from llbench.config import merge as deep_merge
from llbench.errors import ConfigError, DatasetError, WeightsError
from llbench.io.images import read_image, to_tensor, to_uint8
from llbench.pluginhost.host import get_host
from llbench.plugins._curves import losses
from llbench.plugins._curves.curve import apply_curves, curve_step

METHODS = ("zero-dce", "zero-dce++", "sgz")
CPU = torch.device("cpu")


def spec(name):
    return get_host().method(name)


def build(name, **over):
    s = spec(name)
    return s.build(deep_merge(s.default_config, over), CPU)


# --------------------------------------------------------------------------------------------
# official key layouts and reference forward passes
# --------------------------------------------------------------------------------------------
def official_zero_dce_state(gen: torch.Generator) -> OrderedDict:
    """Keys and shapes of Zero-DCE ``enhance_net_nopool`` (plain 3x3 convs, 32 wide, 24 out)."""
    shapes = [(32, 3), (32, 32), (32, 32), (32, 32), (32, 64), (32, 64), (24, 64)]
    sd = OrderedDict()
    for i, (o, c) in enumerate(shapes, 1):
        sd[f"e_conv{i}.weight"] = torch.randn(o, c, 3, 3, generator=gen) * 0.1
        sd[f"e_conv{i}.bias"] = torch.randn(o, generator=gen) * 0.05
    return sd


def official_dsc_state(gen: torch.Generator) -> OrderedDict:
    """Keys and shapes of Zero-DCE++ / SGZ ``enhance_net_nopool`` (``CSDN_Tem`` / ``DSC``)."""
    shapes = [(3, 32), (32, 32), (32, 32), (32, 32), (64, 32), (64, 32), (64, 3)]
    sd = OrderedDict()
    for i, (c, o) in enumerate(shapes, 1):
        sd[f"e_conv{i}.depth_conv.weight"] = torch.randn(c, 1, 3, 3, generator=gen) * 0.3
        sd[f"e_conv{i}.depth_conv.bias"] = torch.randn(c, generator=gen) * 0.05
        sd[f"e_conv{i}.point_conv.weight"] = torch.randn(o, c, 1, 1, generator=gen) * 0.3
        sd[f"e_conv{i}.point_conv.bias"] = torch.randn(o, generator=gen) * 0.05
    return sd


def _official_input(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(arr) / 255.0).float()


def _body(conv, x):
    x1 = F.relu(conv(1, x))
    x2 = F.relu(conv(2, x1))
    x3 = F.relu(conv(3, x2))
    x4 = F.relu(conv(4, x3))
    x5 = F.relu(conv(5, torch.cat([x3, x4], 1)))
    x6 = F.relu(conv(6, torch.cat([x2, x5], 1)))
    return F.tanh(conv(7, torch.cat([x1, x6], 1)))


def official_zero_dce(sd, arr):
    x = _official_input(arr).permute(2, 0, 1).unsqueeze(0)

    def conv(i, t):
        return F.conv2d(t, sd[f"e_conv{i}.weight"], sd[f"e_conv{i}.bias"], 1, 1)

    r = torch.split(_body(conv, x), 3, dim=1)
    for k in range(8):
        x = x + r[k] * (torch.pow(x, 2) - x)
    return x


def official_dsc(sd, arr, scale_factor=12):
    x = _official_input(arr)
    h = (x.shape[0] // scale_factor) * scale_factor
    w = (x.shape[1] // scale_factor) * scale_factor
    x = x[0:h, 0:w, :].permute(2, 0, 1).unsqueeze(0)
    x_down = (
        x if scale_factor == 1 else F.interpolate(x, scale_factor=1 / scale_factor, mode="bilinear")
    )

    def conv(i, t):
        t = F.conv2d(
            t,
            sd[f"e_conv{i}.depth_conv.weight"],
            sd[f"e_conv{i}.depth_conv.bias"],
            1,
            1,
            1,
            t.shape[1],
        )
        return F.conv2d(t, sd[f"e_conv{i}.point_conv.weight"], sd[f"e_conv{i}.point_conv.bias"])

    x_r = _body(conv, x_down)
    if scale_factor != 1:
        x_r = nn.UpsamplingBilinear2d(scale_factor=scale_factor)(x_r)
    for _ in range(8):
        x = x + x_r * (torch.pow(x, 2) - x)
    return x


def save_image_uint8(t: torch.Tensor) -> np.ndarray:
    """``torchvision.utils.save_image``'s conversion: clamp, x255, +0.5, truncate."""
    return t[0].mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()


def dark_png(path: Path, size: tuple[int, int], seed: int = 0) -> Path:
    from skimage import data as skd

    src = [skd.astronaut, skd.chelsea, skd.coffee, skd.rocket][seed % 4]()
    im = np.asarray(Image.fromarray(src).resize(size, Image.BICUBIC)) / 255.0
    rng = np.random.default_rng(seed)
    dark = 255 * 0.35 * im**1.8 + rng.normal(0, 1.0, im.shape)
    Image.fromarray(np.clip(np.round(dark), 0, 255).astype(np.uint8)).save(path)
    return path


# --------------------------------------------------------------------------------------------
# registration and metadata
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", METHODS)
def test_registered_with_published_defaults(name):
    s = spec(name)
    assert s.supervision == "zero-reference" and s.trains
    assert "quick" in s.presets
    ref = s.official_weights
    assert ref.filename == "Epoch99.pth"
    assert ref.url.startswith("https://raw.githubusercontent.com/") and ref.url.endswith(
        "Epoch99.pth"
    )
    cfg = s.default_config
    assert cfg["lr"] == 1e-4 and cfg["weight_decay"] == 1e-4 and cfg["grad_clip_norm"] == 0.1
    assert cfg["exposure_level"] == 0.6


def test_default_settings_follow_the_official_code():
    zd, zpp, sgz = (spec(n).default_config for n in METHODS)
    assert zd["loss_weights"] == {"spa": 1.0, "exp": 10.0, "col": 5.0, "tv": 200.0}
    assert (zd["train_size"], zd["batch_size"], zd["init"]) == (256, 8, "normal")
    assert zpp["loss_weights"]["tv"] == 1600.0 and zpp["test_scale_factor"] == 12
    assert (zpp["train_size"], zpp["batch_size"], zpp["num_epochs"]) == (512, 8, 100)
    assert sgz["loss_weights"]["code"]["sem"] == sgz["loss_weights"]["paper"]["sem"] == 0.1
    assert (sgz["train_size"], sgz["batch_size"], sgz["num_epochs"]) == (512, 6, 100)
    assert sgz["spatial_patch"] == 4 and sgz["spatial_diagonal_weight"] == 0.5
    assert (sgz["focal_beta"], sgz["focal_gamma"]) == (1.0, 2.0)
    assert sgz["uss"]["if_missing"] == "stop"


# --------------------------------------------------------------------------------------------
# Table 7: parameters and FLOPs at 1200 x 900
# --------------------------------------------------------------------------------------------
def test_parameter_counts_match_sgz_table7():
    counts = {n: sum(p.numel() for p in build(n).net.parameters()) for n in METHODS}
    assert counts == {"zero-dce": 79_416, "zero-dce++": 10_561, "sgz": 10_561}
    assert round(counts["sgz"] / 1e6, 3) == 0.011  # SGZ Table 7
    assert round(counts["zero-dce"] / 1e6, 3) == 0.079  # Zero-DCE row of Table 7


def _flops(method, h=900, w=1200):
    net = method.net.to("meta")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(torch.empty(1, 3, h, w, device="meta"))
    return fc.get_total_flops()


def test_flops_at_1200x900():
    # convolution multiply-accumulates per pixel of the network's input
    dce_macs = 3 * 32 * 9 + 3 * 32 * 32 * 9 + 2 * 64 * 32 * 9 + 64 * 24 * 9
    dsc_macs = (
        (3 * 9 + 3 * 32) + 3 * (32 * 9 + 32 * 32) + 2 * (64 * 9 + 64 * 32) + (64 * 9 + 64 * 3)
    )
    assert _flops(build("zero-dce")) == 2 * dce_macs * 900 * 1200
    # Zero-DCE++ / SGZ estimate the curve on the 1/12 downsampled 100 x 75 image
    assert _flops(build("sgz")) == _flops(build("zero-dce++")) == 2 * dsc_macs * 75 * 100
    assert _flops(build("sgz", test_scale_factor=1)) == 2 * dsc_macs * 900 * 1200
    # SGZ Table 7 lists Zero-DCE at 84.99 G (multiply-accumulates): within 1 %
    assert abs(dce_macs * 900 * 1200 / 1e9 - 84.99) / 84.99 < 0.01


# --------------------------------------------------------------------------------------------
# the curve and the networks
# --------------------------------------------------------------------------------------------
def test_curve_stays_in_range_and_is_monotonic():
    x = torch.linspace(0, 1, 101).view(1, 1, 1, -1).expand(1, 3, 1, 101)
    for a in (-1.0, -0.4, 0.0, 0.5, 1.0):
        y = curve_step(x, torch.full_like(x, a))
        assert y.min() >= 0 and y.max() <= 1
        assert (y.diff(dim=-1) >= 0).all()
        assert torch.allclose(y, x - a * x * (1 - x))
    maps = torch.full((1, 3, 1, 101), -0.5)
    assert (apply_curves(x, maps, 8) > x)[..., 1:-1].all()  # negative maps brighten
    with pytest.raises(ValueError):
        apply_curves(x, torch.zeros(1, 6, 1, 101), 8)


@pytest.mark.parametrize("name", METHODS)
def test_enhance_keeps_shape_and_range(name):
    torch.manual_seed(0)
    m = build(name)
    for h, w in [(37, 53), (96, 120), (5, 7)]:
        x = torch.rand(2, 3, h, w)
        with torch.inference_mode():
            y = m.enhance(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
        assert y.min() >= 0 and y.max() <= 1


# --------------------------------------------------------------------------------------------
# official checkpoints: strict loading and identical outputs
# --------------------------------------------------------------------------------------------
def test_zero_dce_official_checkpoint_gives_the_official_output(tmp_path):
    sd = official_zero_dce_state(torch.Generator().manual_seed(1))
    path = tmp_path / "Epoch99.pth"
    torch.save(sd, path)
    m = build("zero-dce")
    m.load_weights(path)
    assert list(m.state_dict()) == list(sd)
    arr = read_image(dark_png(tmp_path / "a.png", (131, 97)))
    with torch.inference_mode():
        ours = m.enhance(to_tensor(arr))
        ref = official_zero_dce(sd, arr)
    assert ours.shape == ref.shape
    assert torch.equal(ours, ref.clamp(0, 1))
    assert np.array_equal(to_uint8(ours), save_image_uint8(ref))
    assert (ref - to_tensor(arr)).abs().mean() > 0.01  # the random weights do something


@pytest.mark.parametrize("name", ["zero-dce++", "sgz"])
def test_dsc_official_checkpoint_gives_the_official_output(tmp_path, name):
    sd = official_dsc_state(torch.Generator().manual_seed(2))
    path = tmp_path / "Epoch99.pth"
    torch.save(sd, path)
    m = build(name)
    m.load_weights(path)
    assert list(m.state_dict()) == list(sd)
    # a size that is a multiple of 12: the whole image equals the official output
    arr = read_image(dark_png(tmp_path / "a.png", (240, 180)))
    with torch.inference_mode():
        ours = m.enhance(to_tensor(arr))
        ref = official_dsc(sd, arr)
    assert ours.shape == ref.shape == (1, 3, 180, 240)
    assert torch.equal(ours, ref.clamp(0, 1))
    assert np.array_equal(to_uint8(ours), save_image_uint8(ref))
    assert (ref - to_tensor(arr)).abs().mean() > 0.01
    # other sizes: the official script crops to multiples of 12; the crop region is identical
    # and llbench keeps the full size
    arr = read_image(dark_png(tmp_path / "b.png", (137, 101), seed=1))
    with torch.inference_mode():
        ours = m.enhance(to_tensor(arr))
        ref = official_dsc(sd, arr)
    assert ours.shape == (1, 3, 101, 137) and ref.shape == (1, 3, 96, 132)
    assert torch.equal(ours[..., :96, :132], ref.clamp(0, 1))
    # the uncropped border continues the curve of the nearest estimated column/row
    x = to_tensor(arr)
    edge = m.net.curve_maps(x)
    assert torch.equal(edge[..., :, 132:], edge[..., :, 131:132].expand(-1, -1, -1, 5))
    # batched inference gives the same images as one at a time
    batch = torch.cat([x, x.flip(-1)])
    with torch.inference_mode():
        both = m.enhance(batch)
        single = m.enhance(x.flip(-1))
    assert torch.allclose(both[1:], single, atol=1e-6)


def test_sgz_paper_scale_runs_at_full_resolution(tmp_path):
    sd = official_dsc_state(torch.Generator().manual_seed(3))
    m = build("sgz", test_scale_factor=1)
    m.load_state_dict(sd)
    arr = read_image(dark_png(tmp_path / "a.png", (50, 38)))
    with torch.inference_mode():
        assert torch.equal(m.enhance(to_tensor(arr)), official_dsc(sd, arr, 1).clamp(0, 1))


def test_checkpoints_of_another_layout_are_refused(tmp_path):
    path = tmp_path / "zero_dce.pth"
    torch.save(official_zero_dce_state(torch.Generator().manual_seed(0)), path)
    with pytest.raises(WeightsError, match="do not fit"):
        build("sgz").load_weights(path)
    path2 = tmp_path / "dsc.pth"
    sd = official_dsc_state(torch.Generator().manual_seed(0))
    sd.pop("e_conv7.point_conv.bias")
    torch.save(sd, path2)
    with pytest.raises(WeightsError, match="e_conv7.point_conv.bias"):
        build("zero-dce++").load_weights(path2)
    with pytest.raises(WeightsError, match="not found"):
        build("zero-dce").load_weights(tmp_path / "absent.pth")


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(5)
    a = build("sgz")
    a.save_weights(tmp_path / "w.pt")
    b = build("sgz")
    b.load_weights(tmp_path / "w.pt")
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------
def _official_spatial(org, enh, diagonal: bool):
    """The official ``L_spa`` / ``L_spa8`` with its 3x3 difference kernels."""
    kernels = [
        [[0, 0, 0], [-1, 1, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 1, -1], [0, 0, 0]],
        [[0, -1, 0], [0, 1, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 1, 0], [0, -1, 0]],
        [[-1, 0, 0], [0, 1, 0], [0, 0, 0]],
        [[0, 0, -1], [0, 1, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 1, 0], [-1, 0, 0]],
        [[0, 0, 0], [0, 1, 0], [0, 0, -1]],
    ]
    op = F.avg_pool2d(org.mean(1, keepdim=True), 4)
    ep = F.avg_pool2d(enh.mean(1, keepdim=True), 4)
    total = 0
    for k, kern in enumerate(kernels[: 8 if diagonal else 4]):
        w = torch.tensor(kern, dtype=torch.float32).view(1, 1, 3, 3)
        d = (F.conv2d(op, w, padding=1) - F.conv2d(ep, w, padding=1)) ** 2
        total = total + (d if k < 4 else 0.5 * d)
    return total.mean()


def test_spatial_consistency_matches_the_official_kernels():
    g = torch.Generator().manual_seed(0)
    low = torch.rand(2, 3, 32, 40, generator=g) * 0.3
    enh = torch.rand(2, 3, 32, 40, generator=g)
    assert torch.allclose(losses.spatial_consistency(low, enh), _official_spatial(low, enh, False))
    ours8 = losses.spatial_consistency(low, enh, diagonal_weight=0.5)
    assert torch.allclose(ours8, _official_spatial(low, enh, True))
    # A uniform brightness offset c keeps every interior region difference; only the terms
    # whose neighbour lies outside the map change (by c^2): the official kernels zero-pad.
    # On the 8 x 10 region map: 2 (8 + 10) axial and 4 (8 + 10 - 1) diagonal border terms.
    c, hp, wp = 0.2, 8, 10
    expected = c**2 * (2 * (hp + wp) + 0.5 * 4 * (hp + wp - 1)) / (hp * wp)
    for form in ("code", "paper"):
        got = losses.spatial_consistency(low, low + c, form=form, diagonal_weight=0.5).item()
        assert math.isclose(got, expected, rel_tol=1e-4)
        assert losses.spatial_consistency(low, enh, form=form) > 0
    # (|b| - |a|)^2 <= (b - a)^2: the absolute (paper) form never exceeds the signed (code)
    # form, and inverting local contrast (b = -a inside the image) costs only the signed form
    assert losses.spatial_consistency(low, enh, form="paper") <= losses.spatial_consistency(
        low, enh
    )
    flipped = 0.5 - low
    paper = losses.spatial_consistency(low, flipped, form="paper")
    code = losses.spatial_consistency(low, flipped, form="code")
    assert code - paper > 1e-3


def test_exposure_color_tv_and_semantic_losses():
    grey = torch.full((2, 3, 32, 32), 0.5)
    assert math.isclose(losses.exposure_control(grey).item(), 0.01, rel_tol=1e-5)
    assert math.isclose(losses.exposure_control(grey, norm="l1").item(), 0.1, rel_tol=1e-5)
    assert losses.exposure_control(torch.full_like(grey, 0.6)) < 1e-12
    assert losses.color_constancy(grey) == 0
    assert math.isclose(losses.charbonnier_rgb(grey).item(), 3e-6, rel_tol=1e-3)
    tinted = grey.clone()
    tinted[:, 0] += 0.2  # red cast: D_rg = D_rb = 0.04
    assert math.isclose(losses.color_constancy(tinted).item(), math.sqrt(2) * 0.04, rel_tol=1e-4)
    assert math.isclose(losses.charbonnier_rgb(tinted).item(), 0.4, rel_tol=1e-4)
    assert losses.total_variation_rgb(grey) == 0 and losses.illumination_smoothness(grey) == 0
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 8, 8) / 8
    # official L_TV: 2 * (0 + sum (1/8)^2 / (H (W-1))) / N = 2 * 3 * 8 * 7 / 64 / 56
    assert math.isclose(losses.illumination_smoothness(ramp).item(), 2 * 3 / 64, rel_tol=1e-5)
    assert losses.total_variation_rgb(tinted) > losses.total_variation_rgb(grey)
    k = 21
    uniform = torch.zeros(1, k, 4, 4)
    expected = -((1 - 1 / k) ** 2) * math.log(1 / k)
    assert math.isclose(losses.focal_semantic(uniform).item(), expected, rel_tol=1e-5)
    confident = torch.zeros(1, k, 4, 4)
    confident[:, 3] = 30.0
    assert losses.focal_semantic(confident) < 1e-10
    logits = torch.randn(2, k, 4, 4, requires_grad=True)
    losses.focal_semantic(logits).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def _official_objective(low, enhanced, maps, tv_weight, diagonal):
    """``get_loss`` of the official training scripts, restated: ``tv_weight * L_TV(A) + L_spa
    + 5 L_color + 10 L_exp(16, 0.6)`` (``L_spa8`` with its 0.5 diagonal weight for SGZ)."""
    n, _, h, w = maps.shape
    l_tv = (
        2
        * (
            (maps[:, :, 1:] - maps[:, :, :-1]).pow(2).sum() / ((h - 1) * w)
            + (maps[..., 1:] - maps[..., :-1]).pow(2).sum() / (h * (w - 1))
        )
        / n
    )
    mr, mg, mb = enhanced.mean((2, 3)).unbind(1)
    l_col = ((mr - mg) ** 4 + (mr - mb) ** 4 + (mb - mg) ** 4).sqrt().mean()
    l_exp = ((F.avg_pool2d(enhanced.mean(1, keepdim=True), 16) - 0.6) ** 2).mean()
    spa = _official_spatial(enhanced, low, diagonal)
    return tv_weight * l_tv + spa + 5 * l_col + 10 * l_exp


@pytest.mark.parametrize(
    "name, tv_weight, diagonal, maps",
    [("zero-dce", 200, False, 24), ("zero-dce++", 1600, False, 3), ("sgz", 1600, True, 3)],
)
def test_loss_terms_are_the_official_objective(name, tv_weight, diagonal, maps):
    torch.manual_seed(0)
    m = build(name)
    m.net.train()
    m.net.scale_factor = m.train_scale_factor
    low = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(1)) * 0.3
    enhanced, a = m.net(low)
    assert a.shape == (2, maps, 64, 48)  # L_TV sees every iteration's map (Zero-DCE: 24)
    ours = torch.stack(list(m.loss_terms(low, enhanced, a).values())).sum()
    ref = _official_objective(low, enhanced, a, tv_weight, diagonal)
    assert torch.allclose(ours, ref, rtol=1e-5, atol=0)


def test_fit_takes_the_official_optimizer_steps(tmp_path):
    """Adam(lr, weight_decay) on the official objective, gradient norm clipped to 0.1."""
    from llbench.plugins._curves.data import TrainImages

    ds = TinyDark(tmp_path / "data", n_train=3, size=(32, 32))
    for name, tv_weight in (("zero-dce", 200), ("zero-dce++", 1600)):
        torch.manual_seed(0)
        m = build(name, max_steps=2, train_size=32, batch_size=2, lr=1e-3)
        ref = build(name)
        ref.load_state_dict(m.state_dict())
        m.fit(make_ctx(ds, tmp_path / name))
        net = ref.net.train()
        net.scale_factor = 1  # lowlight_train.py: scale_factor = 1
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
        data = TrainImages([s.low for s in ds.samples("train")], size=32, batch_size=2, seed=0)
        for step in range(2):
            low = data.batch(step)
            enhanced, a = net(low)
            opt.zero_grad()
            _official_objective(low, enhanced, a, tv_weight, False).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 0.1)
            opt.step()
        for k, v in net.state_dict().items():
            assert torch.allclose(v, m.net.state_dict()[k], rtol=0, atol=1e-6), (name, k)


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
class TinyDark(Dataset):
    """A few generated dark images (train and test)."""

    name = "tiny-dark"
    paired = False

    def __init__(self, root: Path, n_train: int = 4, size=(64, 64)):
        super().__init__(root)
        root.mkdir(parents=True, exist_ok=True)
        self._files = {
            "train": [dark_png(root / f"train{i}.png", size, seed=i) for i in range(n_train)],
            "test": [dark_png(root / f"test{i}.png", size, seed=10 + i) for i in range(2)],
        }

    def samples(self, split):
        if split not in self._files:
            raise DatasetError(f"no split {split}")
        return [Sample(p.stem, p) for p in self._files[split]]


def make_ctx(ds, workdir, *, seed=0, logs=None, progress=None):
    return TrainContext(
        dataset=ds,
        samples=ds.samples("train"),
        workdir=workdir,
        seed=seed,
        device=CPU,
        log=(lambda s, v: logs.append((s, dict(v)))) if logs is not None else (lambda s, v: None),
        progress=progress or (lambda d, t: None),
    )


def exposure_error(x: torch.Tensor) -> float:
    """No-reference score: mean |16x16 regional brightness - 0.6| (lower is better)."""
    return (F.avg_pool2d(x.mean(1, keepdim=True), 16) - 0.6).abs().mean().item()


def train_and_score(name, tmp_path, over, n_train=4, size=(64, 64)):
    ds = TinyDark(tmp_path / "data", n_train=n_train, size=size)
    s = spec(name)
    cfg = deep_merge(deep_merge(s.default_config, s.presets["quick"]), over)
    torch.manual_seed(0)
    m = s.build(cfg, CPU)
    logs, prog = [], []
    m.fit(make_ctx(ds, tmp_path / "work", logs=logs, progress=lambda d, t: prog.append((d, t))))
    test = torch.cat([to_tensor(read_image(x.low)) for x in ds.samples("test")])
    with torch.inference_mode():
        out = m.enhance(test)
    return m, logs, prog, test, out


def test_quick_training_makes_progress(tmp_path):
    """Fast variant: Zero-DCE++ with the quick preset, shortened."""
    m, logs, prog, test, out = train_and_score(
        "zero-dce++", tmp_path, {"max_steps": 25, "train_size": 32, "lr": 2e-3}
    )
    loss = [v["loss"] for _, v in logs]
    assert [s for s, _ in logs] == list(range(1, 26)) and prog[-1] == (25, 25)
    assert set(logs[0][1]) == {"loss", "spa", "exp", "col", "tv"}
    assert np.mean(loss[-5:]) < 0.6 * np.mean(loss[:5])
    assert exposure_error(out) < exposure_error(test) - 0.1
    assert m.provenance()["training"]["steps"] == 25


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_quick_preset_makes_progress(tmp_path, name, monkeypatch):
    """The quick preset as shipped (SGZ keeps L_sem with a random backbone: no weights here)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    over = {"uss": {"if_missing": "random"}} if name == "sgz" else {}
    m, logs, _, test, out = train_and_score(name, tmp_path, over)
    loss = [v["loss"] for _, v in logs]
    assert len(loss) == spec(name).presets["quick"]["max_steps"]
    assert np.mean(loss[-5:]) < 0.6 * np.mean(loss[:5])
    assert exposure_error(out) < exposure_error(test) - 0.1
    assert out.mean() > test.mean() + 0.2


class Interrupt(Exception):
    pass


def test_training_resumes_to_the_same_weights(tmp_path):
    ds = TinyDark(tmp_path / "data", n_train=3, size=(32, 32))
    cfg = {"max_steps": 7, "train_size": 32, "batch_size": 2, "checkpoint_every": 3, "lr": 1e-3}

    torch.manual_seed(0)
    straight = build("zero-dce++", **cfg)
    straight.fit(make_ctx(ds, tmp_path / "a"))

    def stop_after_4(done, total):
        if done == 4:
            raise Interrupt

    torch.manual_seed(0)
    first = build("zero-dce++", **cfg)
    with pytest.raises(Interrupt):
        first.fit(make_ctx(ds, tmp_path / "b", progress=stop_after_4))
    saved = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 3 and saved["method"] == "zero-dce++"

    torch.manual_seed(123)  # a fresh process: different initial weights, same checkpoint
    resumed = build("zero-dce++", **cfg)
    logs = []
    resumed.fit(make_ctx(ds, tmp_path / "b", logs=logs))
    assert [s for s, _ in logs] == [4, 5, 6, 7]
    assert resumed.provenance()["training"]["resumed_from_step"] == 3
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    # a finished run does nothing more
    logs.clear()
    resumed.fit(make_ctx(ds, tmp_path / "b", logs=logs))
    assert logs == []
    # another method's checkpoint is not silently reused
    with pytest.raises(ConfigError, match="checkpoint of 'zero-dce\\+\\+'"):
        build("sgz", **cfg).fit(make_ctx(ds, tmp_path / "b"))


def test_training_batches_are_resized_and_cropped(tmp_path):
    from llbench.plugins._curves.data import TrainImages

    files = [dark_png(tmp_path / f"{i}.png", (50 + 10 * i, 40), seed=i) for i in range(3)]
    data = TrainImages(files, size=0, crop=24, batch_size=2, seed=1)
    assert data.steps_per_epoch == 2
    b0, b1, b2 = data.batch(0), data.batch(1), data.batch(2)
    assert b0.shape == (2, 3, 24, 24) and b1.shape == (1, 3, 24, 24) and b2.shape[0] == 2
    assert torch.equal(data.batch(0), b0)  # deterministic in (seed, step)
    assert all(sorted(data.order(e)) == [0, 1, 2] for e in range(6))
    assert len({tuple(data.order(e)) for e in range(6)}) > 1  # reshuffled each epoch
    resized = TrainImages(files, size=16, batch_size=3, seed=0).batch(0)
    assert resized.shape == (3, 3, 16, 16) and 0 <= resized.min() and resized.max() <= 1
    with pytest.raises(DatasetError):
        TrainImages([], size=16, batch_size=1, seed=0)
    with pytest.raises(DatasetError):
        TrainImages(files, size=0, crop=0, batch_size=1, seed=0)


# --------------------------------------------------------------------------------------------
# SGZ's semantic loss and its backbone
# --------------------------------------------------------------------------------------------
SGZ_TINY = {"max_steps": 2, "train_size": 32, "batch_size": 2, "checkpoint_every": 10}


def test_sgz_stops_without_backbone_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ds = TinyDark(tmp_path / "data", n_train=2, size=(32, 32))
    m = build("sgz", **SGZ_TINY)
    assert m.provenance()["semantic"] == {"backbone_available": None, "if_missing": "stop"}
    with pytest.raises(WeightsError) as err:
        m.fit(make_ctx(ds, tmp_path / "w"))
    msg = str(err.value)
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    assert "resnet50-0676ba61.pth" in msg and 'if_missing = "drop"' in msg and "random" in msg
    assert not (tmp_path / "w" / "checkpoint.pt").exists()


def test_sgz_without_backbone_drop_and_random(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ds = TinyDark(tmp_path / "data", n_train=2, size=(32, 32))
    logs = []
    m = build("sgz", **SGZ_TINY, uss={"if_missing": "drop"})
    m.fit(make_ctx(ds, tmp_path / "drop", logs=logs))
    assert "sem" not in logs[-1][1] and {"spa", "col", "exp", "tv"} <= set(logs[-1][1])
    assert "w/o L_sem" in m.provenance()["semantic"]["sem_loss"]

    logs.clear()
    m = build("sgz", **SGZ_TINY, uss={"if_missing": "random"})
    m.fit(make_ctx(ds, tmp_path / "random", logs=logs))
    assert logs[-1][1]["sem"] > 0
    prov = m.provenance()["semantic"]
    assert prov["sem_loss"] == "on" and prov["backbone"].startswith("random")
    assert all(not p.requires_grad for p in m.uss.parameters())

    logs.clear()
    m = build("sgz", **SGZ_TINY, losses="paper", uss={"if_missing": "random"})
    m.fit(make_ctx(ds, tmp_path / "paper", logs=logs))
    assert set(logs[-1][1]) == {"loss", "spa", "rgb", "bri", "tv", "sem"}


def test_sgz_finds_and_checks_resnet50_weights_in_the_hub_cache(tmp_path, monkeypatch):
    from llbench._torchvision import import_torchvision

    tv = import_torchvision()
    torch.manual_seed(7)
    backbone = tv.models.resnet50(weights=None).state_dict()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ds = TinyDark(tmp_path / "data", n_train=2, size=(32, 32))
    # torchvision's file name carries its sha256 prefix: a file that does not match is refused
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(backbone, hub / "resnet50-0676ba61.pth")
    m = build("sgz", **SGZ_TINY)
    assert m.provenance()["semantic"]["backbone_available"] == str(hub / "resnet50-0676ba61.pth")
    with pytest.raises(WeightsError, match="damaged"):
        m.fit(make_ctx(ds, tmp_path / "w0"))
    # a file named in the config is used as given, and its sha256 recorded
    own = tmp_path / "my_resnet50.pth"
    torch.save(backbone, own)
    m = build("sgz", **SGZ_TINY, uss={"backbone_file": str(own)})
    logs = []
    m.fit(make_ctx(ds, tmp_path / "w", logs=logs))
    prov = m.provenance()["semantic"]
    assert prov["backbone"] == "imagenet" and prov["backbone_file"] == str(own)
    assert len(prov["backbone_sha256"]) == 64
    assert torch.equal(m.uss.resnet.conv1.weight, backbone["conv1.weight"])
    assert logs[-1][1]["sem"] > 0
    # the top-down pathway is Gaussian N(0, 0.01) with zero biases
    w = m.uss.fpn.smooth1_1.weight
    assert abs(w.std().item() - 0.01) < 1e-3 and m.uss.fpn.smooth1_1.bias.abs().max() == 0
    with pytest.raises(WeightsError, match="does not exist"):
        build("sgz", **SGZ_TINY, uss={"backbone_file": str(tmp_path / "nope.pth")}).fit(
            make_ctx(ds, tmp_path / "w2")
        )


def test_semantic_loss_gradient_reaches_the_enhancer(tmp_path):
    from llbench.plugins.sgz.uss import USS

    torch.manual_seed(0)
    m = build("sgz", train_scale_factor=1)
    m.uss = USS(21, batchnorm="batch")
    m.weights = {"sem": 0.1}
    m.net.train()
    m.net.scale_factor = 1
    x = torch.rand(2, 3, 32, 32) * 0.3
    enhanced, maps = m.net(x)
    terms = m.loss_terms(x, enhanced, maps)
    assert set(terms) == {"sem"}
    terms["sem"].backward()
    grads = [p.grad for p in m.net.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in m.uss.parameters())


def test_bad_configs_are_reported():
    with pytest.raises(ConfigError, match="losses"):
        build("sgz", losses="printed")
    with pytest.raises(ConfigError, match="if_missing"):
        build("sgz", uss={"if_missing": "maybe"})
    with pytest.raises(ConfigError, match="test_scale_factor"):
        build("zero-dce++", test_scale_factor=0)
