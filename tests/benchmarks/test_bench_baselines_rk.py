"""Inference speed of Retinex-Net and KinD at 600 x 400 (LOL's size).

Run with ``python -m pytest tests/benchmarks/test_bench_baselines_rk.py --benchmark-enable``
(on a GPU when one is present). Each benchmark records the parameter count and the convolution
FLOPs of the networks' forward pass at that size (``torch.utils.flop_counter``, two FLOPs per
multiply-add, counted on the meta device) in ``extra_info``.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from llbench.pluginhost.host import get_host

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
H, W = 400, 600


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def _flops(name: str, net: torch.nn.Module) -> int:
    net = copy.deepcopy(net).to("meta")  # shapes only: no computation
    x = torch.empty(1, 3, H, W, device="meta")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(x) if name == "retinexnet" else net(x, 5.0)
    return fc.get_total_flops()


@pytest.mark.parametrize("name", ["retinexnet", "kind"])
def test_enhance_600x400(benchmark, name):
    spec = get_host().method(name)
    torch.manual_seed(0)
    method = spec.build(spec.default_config, DEVICE)
    x = torch.rand(1, 3, H, W, device=DEVICE) * 0.3
    if not benchmark.disabled:
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
            "params": sum(p.numel() for p in method.net.parameters()),
            "gflops": round(_flops(name, method.net) / 1e9, 2),
        }
    )
