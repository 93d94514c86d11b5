"""Efficiency of a method: parameters, FLOPs and inference time per image.

These are the columns of the papers' efficiency tables (e.g. SGZ, Zheng & Gupta, Table 7: "Images
of size 1200x900 ... 'RT' is the inference time in seconds per image, 'Params' the numbers of
trainable parameters in millions, 'FLOPs' the numbers of floating-point operations in billions").

* ``params``: parameters of the method's torch modules (:meth:`Method.modules`), each tensor
  counted once even when modules share it, in millions. Every parameter counts (frozen ones
  too: they are part of the model's size); ``options["trainable_only"]`` counts only those with
  ``requires_grad``.
* ``flops``: floating-point operations of one ``method.enhance`` call on a ``1 x 3 x H x W``
  input, in billions (GFLOPs), counted by ``torch.utils.flop_counter.FlopCounterMode``, torch's
  own counter. It counts matrix products and convolutions (and attention) at two FLOPs per
  multiply-add; element-wise operations are not counted. Many LLIE papers' "FLOPs" are
  multiply-accumulates counted by thop, half of this: Zero-DCE measures 171.07 GFLOPs here at
  1200x900, where SGZ's Table 7 lists 84.99 G. A method whose work is not done in torch
  modules (``modules()`` empty: HE, CLAHE, LIME) gets NaN, since its arithmetic is invisible to
  the counter and 0 would be wrong.
* ``time``: milliseconds per image for ``method.enhance`` under ``torch.inference_mode``:
  ``warmup`` untimed calls (default 2), then ``repeats`` timed calls (default 5), each bracketed
  by ``torch.cuda.synchronize`` on CUDA so the time covers the kernels and not just their launch;
  the value is the median of the repeats.

The size. FLOPs and time are measured at a stated size, by default **900 x 1200 (H x W), i.e.
1200x900 images as in SGZ's Table 7**, so numbers are comparable across datasets. The option
``size`` overrides it: ``"HxW"`` (e.g. ``"400x600"``), a ``(H, W)`` pair, or ``"input"`` for the
size :meth:`measure` is given (the runner passes the size of the split's first image). The
definition stored with each value says which size and device were used.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llbench.api import EfficiencyMetric, MetricSpec, hookimpl
from llbench.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from llbench.api import Method
from llbench._lazy import torch  # imported on first use (light plugin loading)

DEFAULT_SIZE: tuple[int, int] = (900, 1200)  # H x W: SGZ Table 7's 1200x900 images


def parse_size(value: Any, given: tuple[int, int] | None = None) -> tuple[int, int]:
    """``"HxW"``, ``(H, W)``, ``"input"`` (-> ``given``) or None (-> :data:`DEFAULT_SIZE`)."""
    if value is None:
        return DEFAULT_SIZE
    if isinstance(value, str):
        v = value.strip().lower()
        if v == "input":
            if given is None:
                raise ConfigError("efficiency size 'input' needs the input size from the caller")
            return (int(given[0]), int(given[1]))
        parts = v.replace("*", "x").split("x")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            h, w = (int(p) for p in parts)
        else:
            raise ConfigError(f"efficiency size {value!r}: write HxW (e.g. 900x1200) or 'input'")
    else:
        try:
            h, w = (int(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"efficiency size {value!r}: expected (H, W)") from None
    if h < 1 or w < 1:
        raise ConfigError(f"efficiency size {value!r} must be positive")
    return (h, w)


def count_flops(method: Method, size: tuple[int, int], device: torch.device | None = None) -> int:
    """FLOPs of one ``method.enhance`` on a ``1 x 3 x H x W`` input (torch's flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    device = device or method.device
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        method.enhance(x)
    return int(counter.get_total_flops())


def time_per_image(
    method: Method, size: tuple[int, int], warmup: int = 2, repeats: int = 5
) -> float:
    """Median seconds of ``method.enhance`` on a ``1 x 3 x H x W`` input (see module docstring)."""
    if repeats < 1 or warmup < 0:
        raise ConfigError("time: repeats must be >= 1 and warmup >= 0")
    device = method.device
    cuda = device.type == "cuda"
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if cuda:
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            method.enhance(x)
            if cuda:
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


class _Efficiency(EfficiencyMetric):
    def __init__(
        self, device: torch.device | str = "cpu", options: Mapping[str, Any] | None = None
    ):
        super().__init__(device, options)
        self.size_option = self.options.get("size")
        self.last_size: tuple[int, int] | None = None

    def _size(self, size: tuple[int, int] | None) -> tuple[int, int]:
        self.last_size = parse_size(self.size_option, size)
        return self.last_size


class Params(_Efficiency):
    """Millions of parameters (``params``)."""

    def measure(self, method: Method, size: tuple[int, int] | None = None) -> float:
        from llbench.api.methods import count_parameters

        trainable = bool(self.options.get("trainable_only", False))
        return count_parameters(method.modules(), trainable) / 1e6


class Flops(_Efficiency):
    """GFLOPs of one forward at the stated size (``flops``)."""

    def measure(self, method: Method, size: tuple[int, int] | None = None) -> float:
        if not method.modules():
            return math.nan
        return count_flops(method, self._size(size)) / 1e9


class Time(_Efficiency):
    """Milliseconds per image at the stated size (``time``)."""

    def measure(self, method: Method, size: tuple[int, int] | None = None) -> float:
        warmup = int(self.options.get("warmup", 2))
        repeats = int(self.options.get("repeats", 5))
        return time_per_image(method, self._size(size), warmup, repeats) * 1e3


@hookimpl
def register_metrics(register):
    common = dict(
        kind="efficiency", higher_better=False, needs=frozenset({"method"}), default=False
    )
    register(
        MetricSpec(
            name="params",
            build=lambda device, options: Params(device, options),
            summary="Parameters of the method's networks, in millions.",
            definition="parameter elements of Method.modules(), shared tensors once, / 1e6",
            score_range=(0.0, math.inf),
            **common,
        )
    )
    register(
        MetricSpec(
            name="flops",
            build=lambda device, options: Flops(device, options),
            summary="GFLOPs of one forward at 1200x900 (torch.utils.flop_counter).",
            definition="FlopCounterMode total of one enhance() on 1x3x900x1200 unless option "
            "size=HxW|input; 2 FLOPs per multiply-add; NaN without torch modules",
            score_range=(0.0, math.inf),
            **common,
        )
    )
    register(
        MetricSpec(
            name="time",
            build=lambda device, options: Time(device, options),
            summary="Inference time per image in ms at 1200x900 (median of repeats).",
            definition="median of 5 timed enhance() calls after 2 warm-up calls on 1x3x900x1200 "
            "(option size=HxW|input), CUDA synchronized, on the run's device",
            score_range=(0.0, math.inf),
            **common,
        )
    )
