"""Efficiency metrics: parameters, FLOPs against the analytic count, timing, the stated size."""

from __future__ import annotations

import math

import pytest
import torch

from llbench.api.methods import Method
from llbench.errors import ConfigError
from llbench.metrics import efficiency as E


class ConvMethod(Method):
    """One 3x3 convolution (3 -> 8) and a 1x1 back to 3, the second reusing nothing."""

    def __init__(self, shared: bool = False):
        super().__init__({}, torch.device("cpu"))
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(8, 3, 1, bias=False)
        self.extra = torch.nn.Sequential(self.conv) if shared else torch.nn.Identity()

    def enhance(self, low):
        return torch.sigmoid(self.head(torch.relu(self.conv(low))))

    def modules(self):
        return [self.conv, self.head, self.extra]


class NumpyMethod(Method):
    """No torch modules: its work is invisible to the FLOP counter."""

    def enhance(self, low):
        return low.sqrt()


def test_params_counts_each_tensor_once():
    expected = (3 * 8 * 9 + 8) + 8 * 3
    assert E.Params().measure(ConvMethod()) == pytest.approx(expected / 1e6)
    assert E.Params().measure(ConvMethod(shared=True)) == pytest.approx(expected / 1e6)
    m = ConvMethod()
    m.head.weight.requires_grad_(False)
    assert E.Params(options={"trainable_only": True}).measure(m) == pytest.approx(
        (3 * 8 * 9 + 8) / 1e6
    )


def test_flops_match_the_analytic_count_at_the_stated_size():
    h, w = 30, 40
    # 2 FLOPs per multiply-add: 3x3x3 taps per output of 8 channels, then 8 taps per output of 3
    analytic = 2 * h * w * (8 * 3 * 9 + 3 * 8)
    flops = E.Flops(options={"size": f"{h}x{w}"}).measure(ConvMethod(), (999, 999))
    assert flops == pytest.approx(analytic / 1e9)
    # 'input' takes the size the caller passes; the default is 900x1200
    assert E.Flops(options={"size": "input"}).measure(ConvMethod(), (h, w)) == pytest.approx(
        analytic / 1e9
    )
    assert E.count_flops(ConvMethod(), (h, 2 * w)) == 2 * analytic


def test_flops_of_default_size_and_methods_without_networks():
    metric = E.Flops()
    value = metric.measure(ConvMethod(), (10, 10))
    assert metric.last_size == E.DEFAULT_SIZE == (900, 1200)
    assert value == pytest.approx(2 * 900 * 1200 * (8 * 3 * 9 + 3 * 8) / 1e9)
    assert math.isnan(E.Flops().measure(NumpyMethod({}, torch.device("cpu"))))


def test_time_is_the_median_of_timed_repeats(monkeypatch):
    calls = []

    class Slow(ConvMethod):
        def enhance(self, low):
            calls.append(low.shape)
            return low

    ticks = iter([0.0, 1.0, 10.0, 11.0, 20.0, 20.004, 30.0, 30.002, 40.0, 40.009])
    monkeypatch.setattr(E.time, "perf_counter", lambda: next(ticks, 100.0))
    ms = E.Time(options={"size": "8x16", "warmup": 2, "repeats": 3}).measure(Slow(), None)
    assert len(calls) == 5 and calls[0] == (1, 3, 8, 16)
    assert ms == pytest.approx(4.0)  # warm-ups (1 s each) excluded; median of 4, 2, 9 ms


def test_real_timing_is_positive():
    assert E.Time(options={"size": "16x16", "warmup": 1, "repeats": 2}).measure(ConvMethod()) > 0


@pytest.mark.parametrize("bad", ["12", "ax3", (0, 4), "0x4"])
def test_bad_sizes_are_config_errors(bad):
    with pytest.raises(ConfigError):
        E.parse_size(bad)


def test_registered_as_non_default_efficiency_metrics(home):
    from llbench.pluginhost.host import get_host

    reg = get_host().registry("metric")
    for name in ("params", "flops", "time"):
        spec = reg.get(name)
        assert spec.kind == "efficiency" and not spec.default and not spec.higher_better
        assert isinstance(spec.build(torch.device("cpu"), {}), E.EfficiencyMetric)
