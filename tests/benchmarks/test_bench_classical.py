"""Time the classical baselines on one 600 x 400 image (pytest-benchmark).

Run with ``python -m pytest tests/benchmarks/test_bench_classical.py --benchmark-enable``; with
the project's default ``--benchmark-disable`` each body runs once, as a smoke test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llbench.plugins.clahe import SPEC as CLAHE_SPEC
from llbench.plugins.gamma import SPEC as GAMMA_SPEC
from llbench.plugins.he import SPEC as HE_SPEC
from llbench.plugins.identity import SPEC as INPUT_SPEC
from llbench.plugins.lime import SPEC as LIME_SPEC

SPECS = {s.name: s for s in (INPUT_SPEC, GAMMA_SPEC, HE_SPEC, CLAHE_SPEC, LIME_SPEC)}


@pytest.fixture(scope="module")
def low_600x400() -> torch.Tensor:
    """scikit-image's 'coffee' (400 x 600, ships with the package) darkened to mean ~0.1."""
    from skimage import data

    rgb = data.coffee().astype(np.float32) / 255 * 0.2
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("input", {}),
        ("gamma", {}),
        ("gamma", {"adaptive": True}),
        ("he", {}),
        ("clahe", {}),
        ("lime", {}),
    ],
    ids=["input", "gamma", "gamma-adaptive", "he", "clahe", "lime"],
)
def test_bench_classical_600x400(benchmark, low_600x400, name, overrides):
    spec = SPECS[name]
    method = spec.build({**spec.default_config, **overrides}, torch.device("cpu"))
    benchmark.group = "classical 1x3x400x600 cpu"
    with torch.inference_mode():
        out = benchmark(method.enhance, low_600x400)
    assert out.shape == low_600x400.shape and torch.isfinite(out).all()
