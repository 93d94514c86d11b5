"""Throughput of llbench's learned-metric adapters against pyiqa's own ``create_metric`` on the
same images and the same (locally generated) weight files.

Run with ``python -m pytest tests/benchmarks/test_bench_learned.py --benchmark-enable``; compare
the ``llbench`` and ``pyiqa`` rows of each group. With the default ``--benchmark-disable`` each
case runs once, as a smoke test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import learned_fixtures as F  # noqa: E402

from llbench.metrics import learned as L  # noqa: E402

METRICS = ["brisque", "lpips", "musiq", "nrqm"]
BATCH = 4


@pytest.fixture(scope="module")
def generated_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("TORCH_HOME", str(root / "torch"))
    mp.setenv("HF_HUB_CACHE", str(root / "hf"))
    L.import_pyiqa()
    mp.setattr(
        sys.modules["pyiqa.utils.download_util"],
        "DEFAULT_CACHE_DIR",
        os.path.join(torch.hub.get_dir(), "pyiqa"),
    )
    for name in METRICS:
        F.WRITERS[name]()
    yield root
    mp.undo()


def _images(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.round(torch.rand(BATCH, 3, 96, 128, generator=g) * 255) / 255


@pytest.mark.parametrize("impl", ["llbench", "pyiqa"])
@pytest.mark.parametrize("name", METRICS)
def test_throughput(benchmark, generated_cache, name, impl):
    benchmark.group = f"{name} ({BATCH} images 96x128, CPU)"
    x, ref = _images(0), _images(1)
    fr = name == "lpips"
    if impl == "llbench":
        spec = L.make_spec(next(d for d in L._SPECS if d["name"] == name))
        metric = spec.build(torch.device("cpu"), {"metric_batch_size": BATCH})

        def score():
            return metric(x, ref if fr else None)
    else:
        pyiqa = L.import_pyiqa()
        with L.hub_offline_default():
            model = pyiqa.create_metric(name, device="cpu")

        def score():
            with torch.inference_mode():
                return model(x, ref) if fr else model(x)

    out = benchmark(score)
    assert out.numel() == BATCH and torch.isfinite(out).all()
