"""Inference speed and memory of LightenDiffusion at 600 x 400 (LOL's size).

Run with ``python -m pytest tests/benchmarks/test_bench_lightendiffusion.py --benchmark-enable``
(on a GPU when one is present). The default collection runs the ``quick`` preset's widths
(seconds on a CPU); the paper's widths (about a minute per image on two CPU cores) are marked
``slow``: add ``-m slow``. Each benchmark records the sampling steps, the parameter count, the
FLOPs of one image (``torch.utils.flop_counter``, two per multiply-add) and the peak memory
(CUDA's allocator on a GPU; the process's peak resident set on a CPU, which also holds the
interpreter and torch) in ``extra_info``.
"""

from __future__ import annotations

import resource

import pytest
import torch
from enhance_bench import DEVICE, bench_enhance, sync
from torch.utils.flop_counter import FlopCounterMode

from llbench.config import merge
from llbench.pluginhost.host import get_host

H, W = 400, 600


def _peak_mb() -> float:
    if DEVICE.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    "preset",
    [
        "quick",
        pytest.param("paper", marks=pytest.mark.slow),
    ],
)
def test_enhance_600x400(benchmark, preset):
    spec = get_host().method("lightendiffusion")
    cfg = dict(spec.default_config)
    if preset != "paper":
        cfg = merge(cfg, spec.presets[preset])
    torch.manual_seed(0)
    method = spec.build(cfg, DEVICE)
    x = torch.rand(1, 3, H, W, device=DEVICE) * 0.3
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        method.enhance(x)  # warm-up and FLOPs
    sync()
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    bench_enhance(benchmark, method, x, warm_up=False)  # the FLOP count above warmed it up
    benchmark.extra_info.update(
        {
            "preset": preset,
            "sampling_steps": method.num_steps,
            "params": sum(p.numel() for p in method.net.parameters()),
            "gflops": counter.get_total_flops() / 1e9,
            "peak_mb": round(_peak_mb(), 1),
        }
    )
