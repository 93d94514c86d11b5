"""What every method's inference benchmark shares: the device, timing a method's ``enhance``
(with a warm-up and CUDA synchronisation) and counting FLOPs on the meta device."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def meta_flops(
    net: torch.nn.Module, call: Callable[[torch.nn.Module, torch.Tensor], Any], h: int, w: int
) -> int:
    """FLOPs (two per multiply-add) of ``call(net, x)`` for one ``h x w`` image, counted on the
    meta device: shapes only, no computation."""
    meta = copy.deepcopy(net).to("meta")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        call(meta, torch.empty(1, 3, h, w, device="meta"))
    return fc.get_total_flops()


def bench_enhance(benchmark, method, x: torch.Tensor, warm_up: bool = True) -> torch.Tensor:
    """Time ``method.enhance(x)`` under inference mode; check the output's shape and values."""
    if warm_up and not benchmark.disabled:
        with torch.inference_mode():
            method.enhance(x)
        sync()

    def run():
        with torch.inference_mode():
            y = method.enhance(x)
        sync()
        return y

    y = benchmark(run)
    assert y.shape == x.shape and torch.isfinite(y).all()
    benchmark.extra_info.update({"device": str(DEVICE), "size": f"{x.shape[3]}x{x.shape[2]}"})
    return y
