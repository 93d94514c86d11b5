"""Inference speed of Retinex-Net and KinD at 600 x 400 (LOL's size).

Run with ``python -m pytest tests/benchmarks/test_bench_baselines_rk.py --benchmark-enable``
(on a GPU when one is present). Each benchmark records the parameter count and the convolution
FLOPs of the networks' forward pass at that size (``torch.utils.flop_counter``, two FLOPs per
multiply-add, counted on the meta device) in ``extra_info``.
"""

from __future__ import annotations

import pytest
import torch
from enhance_bench import DEVICE, bench_enhance, meta_flops

from llbench.pluginhost.host import get_host

H, W = 400, 600


@pytest.mark.parametrize("name", ["retinexnet", "kind"])
def test_enhance_600x400(benchmark, name):
    spec = get_host().method(name)
    torch.manual_seed(0)
    method = spec.build(spec.default_config, DEVICE)
    x = torch.rand(1, 3, H, W, device=DEVICE) * 0.3
    bench_enhance(benchmark, method, x)

    def forward(net, x):
        return net(x) if name == "retinexnet" else net(x, 5.0)

    benchmark.extra_info.update(
        {
            "params": sum(p.numel() for p in method.net.parameters()),
            "gflops": round(meta_flops(method.net, forward, H, W) / 1e9, 2),
        }
    )
