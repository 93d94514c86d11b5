"""Inference speed of Zero-DCE, Zero-DCE++ and SGZ at 1200 x 900 (SGZ Table 7's size).

Run with ``python -m pytest tests/benchmarks/test_bench_zero_reference.py --benchmark-enable``
(on a GPU when one is present). Each benchmark records the method's parameter count and its
convolution FLOPs at that size (``torch.utils.flop_counter``) in ``extra_info``.
"""

from __future__ import annotations

import pytest
import torch
from enhance_bench import DEVICE, bench_enhance, meta_flops

from llbench.pluginhost.host import get_host

H, W = 900, 1200


@pytest.mark.parametrize(
    ("name", "batch"),
    [("zero-dce", 1), ("zero-dce++", 1), ("sgz", 1), ("zero-dce++", 4), ("sgz", 4)],
)
def test_enhance_1200x900(benchmark, name, batch):
    spec = get_host().method(name)
    torch.manual_seed(0)
    method = spec.build(spec.default_config, DEVICE)
    x = torch.rand(batch, 3, H, W, device=DEVICE) * 0.3
    bench_enhance(benchmark, method, x)
    benchmark.extra_info.update(
        {
            "batch": batch,
            "params": sum(p.numel() for p in method.net.parameters()),
            "conv_gflops": meta_flops(method.net, lambda net, x: net(x), H, W) / 1e9,
        }
    )
