"""Inference speed of SLLEN at 600 x 400 (LOL's size), the paper's full width (``width = 64``,
21 SSaN classes) and the quick preset's (``width = 16``).

Run with ``python -m pytest tests/benchmarks/test_bench_sllen.py --benchmark-enable`` (on a GPU
when one is present; the paper's Table VI reports 0.00403 s per image on an RTX 3080Ti). Each
benchmark records the parameter count and the FLOPs of one forward pass
(``torch.utils.flop_counter``, counted on the meta device) in ``extra_info``.
"""

from __future__ import annotations

import copy

import pytest
import torch
from enhance_bench import DEVICE, bench_enhance, meta_flops

from llbench.pluginhost.host import get_host

H, W = 400, 600


@pytest.mark.parametrize("preset", [None, "quick"])
def test_enhance_600x400(benchmark, preset):
    spec = get_host().method("sllen")
    cfg = copy.deepcopy(dict(spec.default_config))
    if preset:
        from llbench.config import merge

        cfg = merge(cfg, spec.presets[preset])
    torch.manual_seed(0)
    method = spec.build(cfg, DEVICE)
    x = torch.rand(1, 3, H, W, device=DEVICE) * 0.3
    bench_enhance(benchmark, method, x)
    benchmark.extra_info.update(
        {
            "width": cfg["width"],
            "params": sum(p.numel() for p in method.net.parameters()),
            "gflops": round(meta_flops(method.net, lambda net, x: net(x), H, W) / 1e9, 1),
        }
    )
