"""Inference time at 600 x 400 (one image, CPU): DRBN, DRBN at SKF's width, DRBN-SKF (SE modules
fed by a segmenter; the stand-in segmenter here costs almost nothing, so the difference to DRBN is
the SE modules' cost) and the HRNetV2-W48 segmenter itself (random weights, same compute).

Run with ``python -m pytest tests/benchmarks/test_bench_skf.py --benchmark-enable``; with the
default ``--benchmark-disable`` each case runs once, as a smoke test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_skf_support import StubSegmenter  # noqa: E402

from llbench.plugins import skf  # noqa: E402
from llbench.plugins.drbn.method import DRBNMethod  # noqa: E402

SIZE = (400, 600)


@pytest.fixture(scope="module")
def image():
    return torch.rand(1, 3, *SIZE, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("width", ["code", "skf-width"])
def test_bench_drbn_600x400(benchmark, image, width):
    cfg = {} if width == "code" else {"G0": 32, "G": 16}
    m = DRBNMethod(cfg, "cpu")
    with torch.inference_mode():
        out = benchmark(m.enhance, image)
    assert out.shape == image.shape


def test_bench_drbn_skf_600x400(benchmark, image):
    m = skf.wrap(DRBNMethod({}, "cpu"), StubSegmenter(), name="drbn-skf")
    with torch.inference_mode():
        out = benchmark(m.enhance, image)
    assert out.shape == image.shape


def test_bench_hrnet_w48_segment_600x400(benchmark, image):
    from llbench.segmenters.hrnet import HRNetSegmenter, HRNetV2Seg

    seg = HRNetSegmenter(net=HRNetV2Seg())
    with torch.inference_mode():
        out = benchmark(seg.segment, image)
    assert out.logits.shape == (1, 59, *SIZE)
