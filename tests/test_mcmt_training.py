"""CRNet / MCMT training: one optimizer step of each loss against a hand-written reference, the
teacher (no gradient, EMA, checkpointed), unlabelled references never read, exact resume, and
(slow) quick runs on the embedded dataset that beat the dark input."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import llbench
from llbench.api import Patches, TrainContext
from llbench.api import training as api_training
from llbench.api.datasets import Sample
from llbench.io.images import write_png
from llbench.pluginhost.host import get_host
from llbench.plugins.mcmt.model import build_crnet
from llbench.plugins.mcmt.training import select_labelled, teacher_noise

TINY = {
    "width": 4,
    "groups": 3,
    "recurrences": 2,
    "blocks": 2,
    "patch_size": 16,
    "batch_size": 4,
    "max_steps": 1,
    "augment": True,
    "lr": 1e-3,
}
CPU = torch.device("cpu")


def _pairs(root: Path, n: int = 6, size: tuple[int, int] = (20, 24)) -> list[Sample]:
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        high = rng.integers(40, 255, (*size, 3), dtype=np.uint8)
        low = (high * 0.15 + rng.integers(0, 6, high.shape)).astype(np.uint8)
        key = f"p{i:02d}"
        write_png(root / "low" / f"{key}.png", low)
        write_png(root / "high" / f"{key}.png", high)
        samples.append(Sample(key, root / "low" / f"{key}.png", root / "high" / f"{key}.png"))
    return samples


def _ctx(tmp: Path, samples: list[Sample], name: str = "work", **kw) -> TrainContext:
    return TrainContext(dataset=None, samples=samples, workdir=tmp / name, seed=3, device=CPU, **kw)


def _method(name: str, **over):
    spec = get_host().method(name)
    return spec.build({**spec.default_config, **TINY, **over}, CPU)


# -- hand-written references -------------------------------------------------------------------
def _ssim_ref(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM with explicit 11 x 11 windows (unfold) and a Gaussian built with math.exp."""
    g = torch.tensor([math.exp(-((i - 5) ** 2) / (2 * 1.5**2)) for i in range(11)])
    w = (g[:, None] * g[None, :]).flatten()
    w = w / w.sum()
    n, c, h, wd = x.shape
    xs = F.unfold(x.reshape(n * c, 1, h, wd), 11)  # (n c) x 121 x windows
    ys = F.unfold(y.reshape(n * c, 1, h, wd), 11)
    mx = (w[None, :, None] * xs).sum(1)
    my = (w[None, :, None] * ys).sum(1)
    vx = (w[None, :, None] * (xs - mx[:, None]) ** 2).sum(1)
    vy = (w[None, :, None] * (ys - my[:, None]) ** 2).sum(1)
    cxy = (w[None, :, None] * (xs - mx[:, None]) * (ys - my[:, None])).sum(1)
    c1, c2 = 1e-4, 9e-4
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean()


def _adam_first_step(params: list[torch.Tensor], grads: list[torch.Tensor], lr: float):
    """Adam's first update with bias correction: ``p - lr g / (|g| + eps)``."""
    return [p - lr * g / (g.abs() + 1e-8) for p, g in zip(params, grads, strict=True)]


def _assert_params_close(a: list[torch.Tensor], b: list[torch.Tensor], lr: float) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=lr * 1e-3)


# -- one optimizer step ------------------------------------------------------------------------
@pytest.mark.parametrize("lambda_ms", [1.0, 0.0])
def test_one_crnet_step_matches_reference(tmp_path, lambda_ms):
    samples = _pairs(tmp_path / "d")
    torch.manual_seed(0)
    m = _method("crnet", lambda_ms=lambda_ms)
    start = copy.deepcopy(m.net.state_dict())
    logged = {}
    m.fit(_ctx(tmp_path, samples, log=lambda step, v: logged.update(v)))

    ref = build_crnet(m.config)
    ref.load_state_dict(start)
    items = [(s.low, s.high) for s in sorted(samples, key=lambda s: s.key)]
    low, high = Patches(items, patch=16, batch_size=4, seed=3, augment=True).batch(0)
    final, mids = ref(low)
    l_e = -_ssim_ref(final, high)
    l_ms = sum((h - high).abs().mean() for h in mids) / len(mids)
    loss = l_e + lambda_ms * l_ms
    params = list(ref.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    expected = _adam_first_step([p.detach() for p in params], grads, 1e-3)
    _assert_params_close([p.detach() for p in m.net.parameters()], expected, 1e-3)
    assert logged["supervised/enhance"] == pytest.approx(l_e.item(), abs=1e-5)
    if lambda_ms:
        assert logged["supervised/mid_step"] == pytest.approx(l_ms.item(), abs=1e-6)
    else:
        assert "supervised/mid_step" not in logged
    assert logged["supervised/loss"] == pytest.approx(loss.item(), abs=1e-5)


@pytest.mark.parametrize("lambda_mc", [1.0, 0.0])
def test_one_mcmt_step_matches_reference(tmp_path, lambda_mc):
    samples = _pairs(tmp_path / "d", n=8)
    torch.manual_seed(0)
    over = {"label_fraction": 0.25, "labelled_per_batch": 2, "lambda_mc": lambda_mc}
    over |= {"teacher_noise_std": 0.05, "lambda_mcr": 2.0, "ema_decay": 0.9}
    m = _method("mcmt", **over)
    start = copy.deepcopy(m.net.state_dict())
    logged = {}
    m.fit(_ctx(tmp_path, samples, log=lambda step, v: logged.update(v)))

    keys = select_labelled([s.key for s in samples], 0.25, seed=3)
    lab = [(s.low, s.high) for s in samples if s.key in keys]
    unl = [(s.low,) for s in samples if s.key not in keys]
    low_l, high_l = Patches(lab, patch=16, batch_size=2, seed=3).batch(0)
    (low_u,) = Patches(unl, patch=16, batch_size=2, seed=4, kinds=("image",)).batch(0)
    student, teacher = build_crnet(m.config), build_crnet(m.config)
    student.load_state_dict(start)
    teacher.load_state_dict(start)
    low = torch.cat([low_l, low_u])
    final, mids = student(low)
    with torch.no_grad():
        t_final, t_mids = teacher(low + teacher_noise(low.shape, 0.05, 3, 0))
    l_pe = -_ssim_ref(final[:2], high_l) + sum((h[:2] - high_l).abs().mean() for h in mids) / len(
        mids
    )
    l_c = ((final - t_final) ** 2).mean()
    l_mc = sum(((h - t) ** 2).mean() for h, t in zip(mids, t_mids, strict=True)) / len(mids)
    loss = l_pe + 2.0 * (l_c + lambda_mc * l_mc)
    params = list(student.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    new_student = _adam_first_step([p.detach() for p in params], grads, 1e-3)
    _assert_params_close([p.detach() for p in m.net.parameters()], new_student, 1e-3)
    # the teacher: 0.9 * its start + 0.1 * the updated student
    new_teacher = [
        0.9 * t.detach() + 0.1 * s for t, s in zip(teacher.parameters(), new_student, strict=True)
    ]
    _assert_params_close([p.detach() for p in m.teacher.parameters()], new_teacher, 1e-4)
    assert logged["semi/consistency"] == pytest.approx(2.0 * l_c.item(), rel=1e-4)
    if lambda_mc:
        assert logged["semi/mid_consistency"] == pytest.approx(2.0 * l_mc.item(), rel=1e-4)
    else:
        assert "semi/mid_consistency" not in logged
    assert logged["semi/loss"] == pytest.approx(loss.item(), abs=1e-5)
    assert "semi/psnr_teacher" in logged and "semi/psnr_student" in logged
    assert m.provenance()["labelled"] == keys and m.provenance()["n_unlabelled"] == 6


def test_teacher_receives_no_gradient(tmp_path):
    samples = _pairs(tmp_path / "d", n=8)
    m = _method("mcmt", label_fraction=0.25, labelled_per_batch=2)
    (phase,) = m.training_phases(_ctx(tmp_path, samples))
    assert all(not p.requires_grad for p in m.teacher.parameters())
    assert {id(p) for p in phase.parameters()} == {id(p) for p in m.net.parameters()}
    _, terms = phase.loss(0, phase.batches(0))
    assert {"enhance", "mid_step", "consistency", "mid_consistency"} == set(terms)
    sum(terms.values()).backward()
    assert all(p.grad is None for p in m.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.net.parameters())


def test_unlabelled_references_are_never_read(tmp_path, monkeypatch):
    samples = _pairs(tmp_path / "d", n=10)
    keys = select_labelled([s.key for s in samples], 0.3, seed=3)
    assert len(keys) == 3
    unlabelled_refs = {s.high for s in samples if s.key not in keys}
    for path in unlabelled_refs:  # gone from disk: any read would fail ...
        path.unlink()
    read: list[Path] = []
    original = api_training.READERS["image"]

    def spy(path):
        read.append(Path(path))
        return original(path)

    monkeypatch.setitem(api_training.READERS, "image", spy)  # ... and is recorded
    m = _method("mcmt", label_fraction=0.3, labelled_per_batch=2, max_steps=4)
    m.fit(_ctx(tmp_path, samples))
    assert not set(read) & unlabelled_refs
    assert {s.low for s in samples} <= set(read)  # every low-light image was used ...
    assert {s.high for s in samples if s.key in keys} <= set(read)  # ... and labelled refs
    assert m.provenance()["labelled"] == keys


def test_resume_is_exact(tmp_path):
    samples = _pairs(tmp_path / "d", n=8)
    over = {"label_fraction": 0.25, "labelled_per_batch": 2, "max_steps": 4}
    over["checkpoint_every"] = 2
    torch.manual_seed(1)
    full = _method("mcmt", **over)
    full.fit(_ctx(tmp_path, samples, "a"))

    def stop_at_3(done, total):
        if done == 3:
            raise KeyboardInterrupt

    torch.manual_seed(1)
    first = _method("mcmt", **over)
    with pytest.raises(KeyboardInterrupt):
        first.fit(_ctx(tmp_path, samples, "b", progress=stop_at_3))
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2 and set(state["modules"]) == {"student", "teacher"}
    torch.manual_seed(99)  # fresh weights, replaced by the checkpoint
    second = _method("mcmt", **over)
    second.fit(_ctx(tmp_path, samples, "b"))
    assert second.training_info["resumed_from_step"] == 2
    for a, b in ((full.net, second.net), (full.teacher, second.teacher)):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert ka == kb and torch.equal(va, vb), ka


def test_steps_per_epoch_and_schedule(tmp_path):
    samples = _pairs(tmp_path / "d", n=10)
    m = _method("mcmt", label_fraction=0.2, labelled_per_batch=1, max_steps=0, epochs=2)
    m.config.update({"patches_per_image": 3, "lr_milestones": [1], "lr_gamma": 0.5})
    (phase,) = m.training_phases(_ctx(tmp_path, samples))
    # 3 patches of each of the 10 images per epoch, batches of 4: 3 x ceil(10 / 4) = 9 steps
    assert m.training_info["steps_per_epoch"] == 9 and phase.steps == 18
    opt = phase.make_optimizer(phase.parameters())
    sched = phase.make_scheduler(opt)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[8] == pytest.approx(1e-3) and lrs[9] == pytest.approx(5e-4)  # halved at epoch 1
    low_l, high_l, low_u = phase.batches(0)
    assert low_l.shape == high_l.shape == (1, 3, 16, 16) and low_u.shape == (3, 3, 16, 16)


def test_mcmt_refuses_a_split_without_unlabelled_images(tmp_path):
    from llbench.errors import ConfigError

    m = _method("mcmt", label_fraction=1.0)
    with pytest.raises(ConfigError, match="no unlabelled"):
        m.training_phases(_ctx(tmp_path, _pairs(tmp_path / "d", n=3)))


# -- quick runs on the embedded dataset (slow) ------------------------------------------------
@pytest.fixture
def one_thread():
    """One intra-op thread: on a busy shared machine two spinning OpenMP threads made these runs
    ten times slower (about 15 s each with one thread; minutes with two under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _quick(method: str, tmp_path: Path):
    kw = {"home": tmp_path, "metrics": ["psnr", "ssim"], "progress": False, "device": "cpu"}
    dark = llbench.run("input", "synthetic", **kw)
    trained = llbench.run(method, "synthetic", preset="quick", **kw)
    return dark, trained


@pytest.mark.slow
def test_crnet_quick_run_beats_the_input(tmp_path, one_thread):
    dark, trained = _quick("crnet", tmp_path)
    assert trained.ok and trained.n_images == 9
    assert trained.scores["psnr"] > dark.scores["psnr"] + 3.0
    assert trained.scores["ssim"] > dark.scores["ssim"] + 0.1


@pytest.mark.slow
def test_mcmt_quick_run_beats_the_input(tmp_path, one_thread):
    from llbench.store.database import Store
    from llbench.store.frames import training_log

    dark, trained = _quick("mcmt", tmp_path)
    assert trained.ok and trained.n_images == 9
    assert trained.scores["psnr"] > dark.scores["psnr"] + 3.0
    assert trained.scores["ssim"] > dark.scores["ssim"] + 0.1
    log = training_log(home=tmp_path)
    assert {"semi/psnr_teacher", "semi/consistency", "semi/mid_consistency"} <= set(log["name"])
    prov = json.loads(Store(tmp_path).get_run(trained.key)["provenance"])
    labelled = prov["training"]["method_provenance"]["labelled"]
    assert len(labelled) == round(0.1 * 24)
