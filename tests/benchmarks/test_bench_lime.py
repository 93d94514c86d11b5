"""LIME's solvers on a 600 x 400 image (issue 20: "LIME at least 10x faster").

Run with ``python -m pytest tests/benchmarks/test_bench_lime.py --benchmark-enable``; group
``lime solvers 600x400`` holds one row per solver of ``llbench.plugins.lime.solvers``. Measured
on the 2-core development machine (one thread, median): ``direct-mmd`` (the exact solve before
issue 20) 1.3-1.4 s, ``direct`` (nested dissection, exact) 0.95-1.0 s, ``cg`` (Jacobi-PCG in
torch, CPU, float64) about 4.4 s. The 10x target was not reached on CPU; ``cg`` is the GPU path. No
timing is asserted; each row checks its output against the exact solve.
"""

from __future__ import annotations

import pytest
import torch

from llbench.plugins.lime import SPEC

# CG takes ~4 s per round on two CPU cores (3 rounds even when benchmarks are disabled): slow
SOLVERS = ["direct-mmd", "direct", pytest.param("cg", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def low() -> torch.Tensor:
    from skimage import data

    img = torch.from_numpy(data.coffee()).permute(2, 0, 1)[None].float() / 255  # 400 x 600
    return (img * 0.25).clamp(0, 1)


@pytest.fixture(scope="module")
def exact(low) -> torch.Tensor:
    method = SPEC.build({**SPEC.default_config, "solver": "direct-mmd"}, torch.device("cpu"))
    return method.enhance(low)


@pytest.mark.parametrize("solver", SOLVERS)
def test_bench_lime_solver(benchmark, low, exact, solver):
    method = SPEC.build({**SPEC.default_config, "solver": solver}, torch.device("cpu"))
    benchmark.group = "lime solvers 600x400"
    benchmark.extra_info.update(solver=solver, threads=torch.get_num_threads())
    out = benchmark.pedantic(method.enhance, args=(low,), rounds=3, iterations=1)
    err = float((out - exact).abs().max()) * 255
    benchmark.extra_info["max_error_levels"] = err
    assert err < (1e-6 if solver.startswith("direct") else 1.0)
