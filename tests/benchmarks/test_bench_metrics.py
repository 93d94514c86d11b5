"""Speed of llbench's core metrics against pyiqa's, on one 600 x 400 RGB image on CPU.

Run with ``python -m pytest tests/benchmarks/test_bench_metrics.py --benchmark-enable``; each
group (psnr, ssim, niqe, suite) holds an ``llbench`` and a ``pyiqa`` row. The target is the
llbench suite (psnr + ssim + niqe) at least 5x faster than pyiqa's. No timing is asserted; the
tests check that both sides compute the same scores. With benchmarks disabled (the default
``addopts``) each function runs once, as a smoke test.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import torch

from llbench.io.images import to_tensor
from llbench.metrics import functional as M

METRICS = ["psnr", "ssim", "niqe"]
TOL = {"psnr": 1e-4, "ssim": 1e-6, "niqe": 2e-3}


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """skimage's coffee (400 x 600) and a darkened, noisy, 8-bit version of it."""
    from skimage import data

    ref = to_tensor(data.coffee())
    assert ref.shape == (1, 3, 400, 600)
    g = torch.Generator().manual_seed(0)
    pred = (ref * 0.7 + 0.03 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    return torch.round(pred * 255) / 255, ref


@pytest.fixture(scope="module")
def pyiqa_metrics(tmp_path_factory):
    if importlib.util.find_spec("pyiqa") is None:
        pytest.skip("pyiqa is not installed: nothing to compare with")
    import scipy.io

    from llbench._torchvision import import_torchvision
    from llbench.metrics import _niqe

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_torchvision()
        import pyiqa

    # pyiqa's niqe reads niqe_modelparameters.mat; build it from the parameters llbench ships
    mu, cov = _niqe.pristine_params(torch.device("cpu"), torch.float64)
    mat = tmp_path_factory.mktemp("torch_home") / "niqe_modelparameters.mat"
    scipy.io.savemat(mat, {"mu_prisparam": mu.numpy()[None], "cov_prisparam": cov.numpy()})
    return {
        "psnr": pyiqa.create_metric("psnr", device="cpu"),
        "ssim": pyiqa.create_metric("ssim", device="cpu"),
        "niqe": pyiqa.create_metric("niqe", device="cpu", pretrained_model_path=str(mat)),
    }


def _ours(name: str, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return M.niqe(pred) if name == "niqe" else getattr(M, name)(pred, ref)


def _theirs(metrics, name: str, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        out = metrics[name](pred) if name == "niqe" else metrics[name](pred, ref)
    return out.double().flatten()


def _info(benchmark, impl: str) -> None:
    benchmark.extra_info.update(
        implementation=impl, size="600x400", device="cpu", threads=torch.get_num_threads()
    )


@pytest.mark.parametrize("name", METRICS)
def test_bench_llbench(benchmark, images, name):
    pred, ref = images
    benchmark.group = name
    _info(benchmark, "llbench")
    out = benchmark(_ours, name, pred, ref)
    assert out.shape == (1,) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", METRICS)
def test_bench_pyiqa(benchmark, images, pyiqa_metrics, name):
    pred, ref = images
    benchmark.group = name
    _info(benchmark, "pyiqa")
    theirs = benchmark(_theirs, pyiqa_metrics, name, pred, ref)
    ours = _ours(name, pred, ref)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=TOL[name], rtol=0)


def test_bench_llbench_suite(benchmark, images):
    pred, ref = images
    benchmark.group = "suite (psnr + ssim + niqe)"
    _info(benchmark, "llbench")
    out = benchmark(lambda: [_ours(n, pred, ref) for n in METRICS])
    assert len(out) == 3


def test_bench_pyiqa_suite(benchmark, images, pyiqa_metrics):
    pred, ref = images
    benchmark.group = "suite (psnr + ssim + niqe)"
    _info(benchmark, "pyiqa")
    out = benchmark(lambda: [_theirs(pyiqa_metrics, n, pred, ref) for n in METRICS])
    for name, theirs in zip(METRICS, out, strict=True):
        np.testing.assert_allclose(
            _ours(name, pred, ref).numpy(), theirs.numpy(), atol=TOL[name], rtol=0
        )
