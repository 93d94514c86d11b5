"""CRNet (the paper's network: 4 LMRGs x 2 recurrences x 5 MRBs, width 32) inference at 600 x 400
and one training step of ``crnet`` (``L_PE``) and ``mcmt`` (student + teacher, ``L_SSL``, EMA).

Run with ``python -m pytest tests/benchmarks/test_bench_mcmt.py --benchmark-enable`` (on a GPU
when one is present). With the default ``--benchmark-disable`` each case runs once as a smoke
test on small inputs (the same code path), so the suite stays fast. ``extra_info`` records the
parameter count, the input size and, for inference, the FLOPs at that size.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from llbench.api import TrainContext
from llbench.api.datasets import Sample
from llbench.io.images import write_png
from llbench.pluginhost.host import get_host

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def _flops(net: torch.nn.Module, shape: tuple[int, ...]) -> int:
    meta = copy.deepcopy(net).to("meta")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        meta(torch.empty(*shape, device="meta"))
    return fc.get_total_flops()


@pytest.mark.parametrize("batch", [1, 4])
def test_crnet_inference_600x400(benchmark, batch):
    h, w = (400, 600) if not benchmark.disabled else (24, 36)
    spec = get_host().method("crnet")
    torch.manual_seed(0)
    method = spec.build(spec.default_config, DEVICE)
    x = torch.rand(batch, 3, h, w, device=DEVICE) * 0.3
    if not benchmark.disabled:
        with torch.inference_mode():
            method.enhance(x)  # warm-up

    def run():
        with torch.inference_mode():
            y = method.enhance(x)
        _sync()
        return y

    y = (
        benchmark.pedantic(run, rounds=3, iterations=1)
        if not benchmark.disabled
        else benchmark(run)
    )
    assert y.shape == x.shape and torch.isfinite(y).all()
    benchmark.extra_info.update(
        {
            "device": str(DEVICE),
            "size": f"{w}x{h}",
            "batch": batch,
            "params": sum(p.numel() for p in method.net.parameters()),
            "gflops": _flops(method.net, (1, 3, h, w)) / 1e9,
        }
    )


@pytest.mark.parametrize("name", ["crnet", "mcmt"])
def test_training_step(benchmark, name, tmp_path):
    spec = get_host().method(name)
    cfg = dict(spec.default_config)  # batch 16 of 100 x 100 patches (mcmt: 8 + 8)
    if name == "mcmt":
        cfg["label_fraction"] = 0.4  # 8 of the 20 images labelled: full 8 + 8 batches
    size = (120, 160)
    if benchmark.disabled:  # smoke test: a small network and batch, the same code path
        cfg.update(width=4, groups=2, blocks=2, patch_size=16, batch_size=4, labelled_per_batch=2)
        cfg = {k: v for k, v in cfg.items() if k in spec.default_config}
        size = (20, 24)
    rng = np.random.default_rng(0)
    samples = []
    for i in range(20):
        high = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
        for kind, img in (("high", high), ("low", (high // 6).astype(np.uint8))):
            write_png(tmp_path / kind / f"{i}.png", img)
        samples.append(
            Sample(str(i), tmp_path / "low" / f"{i}.png", tmp_path / "high" / f"{i}.png")
        )
    method = spec.build(cfg, DEVICE)
    ctx = TrainContext(dataset=None, samples=samples, workdir=tmp_path / "w", seed=0, device=DEVICE)
    (phase,) = method.training_phases(ctx)
    opt = phase.make_optimizer(phase.parameters())
    batches = [tuple(t.to(DEVICE) for t in phase.batches(s)) for s in range(2)]
    state = {"step": 0}

    def step():
        s = state["step"]
        state["step"] += 1
        _, terms = phase.loss(s, batches[s % 2])
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if phase.extra_step is not None:
            phase.extra_step(s, batches[s % 2], None)
        _sync()
        return loss.detach()

    if not benchmark.disabled:
        step()  # warm-up
        loss = benchmark.pedantic(step, rounds=3, iterations=1)
    else:
        loss = benchmark(step)
    assert torch.isfinite(loss)
    benchmark.extra_info.update(
        {
            "device": str(DEVICE),
            "batch": [list(t.shape) for t in phase.batches(0)],
            "params": sum(p.numel() for p in method.net.parameters()),
        }
    )
