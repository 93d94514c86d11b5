"""Inference speed of Zero-DCE, Zero-DCE++ and SGZ at 1200 x 900 (SGZ Table 7's size).

Run with ``python -m pytest tests/benchmarks/test_bench_zero_reference.py --benchmark-enable``
(on a GPU when one is present). Each benchmark records the method's parameter count and its
convolution FLOPs at that size (``torch.utils.flop_counter``) in ``extra_info``.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from llbench.pluginhost.host import get_host

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
H, W = 900, 1200


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def _conv_flops(method) -> int:
    net = copy.deepcopy(method.net).to("meta")  # shapes only: no computation
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(torch.empty(1, 3, H, W, device="meta"))
    return fc.get_total_flops()


@pytest.mark.parametrize(
    ("name", "batch"),
    [("zero-dce", 1), ("zero-dce++", 1), ("sgz", 1), ("zero-dce++", 4), ("sgz", 4)],
)
def test_enhance_1200x900(benchmark, name, batch):
    spec = get_host().method(name)
    torch.manual_seed(0)
    method = spec.build(spec.default_config, DEVICE)
    x = torch.rand(batch, 3, H, W, device=DEVICE) * 0.3
    with torch.inference_mode():
        method.enhance(x)  # warm-up
    _sync()

    def run():
        with torch.inference_mode():
            y = method.enhance(x)
        _sync()
        return y

    y = benchmark(run)
    assert y.shape == x.shape and torch.isfinite(y).all()
    benchmark.extra_info.update(
        {
            "device": str(DEVICE),
            "size": f"{W}x{H}",
            "batch": batch,
            "params": sum(p.numel() for p in method.net.parameters()),
            "conv_gflops": _conv_flops(method) / 1e9,
        }
    )
