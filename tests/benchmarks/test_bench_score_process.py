"""Whole-process scoring: ``llbench score --metrics psnr,ssim,niqe`` against the same scores
computed by a pyiqa script, both as fresh subprocesses on 15 pairs of 600 x 400 PNGs (the size
and count of LOL's test split), so imports and start-up count as a user sees them.

Run with ``python -m pytest tests/benchmarks/test_bench_score_process.py --benchmark-enable``;
group ``score-process`` holds an ``llbench`` and a ``pyiqa`` row. Target (issue 20): llbench at
least 5x faster. No timing is asserted; the test checks that both processes give the same
scores. Measured on the 2-core development machine (OMP_NUM_THREADS=1): llbench 2.5-2.7 s
(torch import 0.9 s, pandas 0.25 s, plugin loading 0.1 s, PNG decoding 0.15 s, the metrics
about 1 s), pyiqa 14.4 s (its import alone, with torchvision and its dependencies, about 4.5 s).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

N_PAIRS = 15
PYIQA_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    from pathlib import Path
    import numpy as np
    import torch
    from PIL import Image
    from llbench._torchvision import import_torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_torchvision()  # the mismatched torchvision build of this machine; see ENVIRONMENT
        import pyiqa
    pred, ref, mat = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    metrics = {
        "psnr": pyiqa.create_metric("psnr", device="cpu"),
        "ssim": pyiqa.create_metric("ssim", device="cpu"),
        "niqe": pyiqa.create_metric("niqe", device="cpu", pretrained_model_path=mat),
    }

    def load(p):
        arr = np.array(Image.open(p).convert("RGB"))
        return torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255

    with torch.inference_mode():
        for p in sorted(pred.glob("*.png")):
            x, y = load(p), load(ref / p.name)
            vals = [float(m(x) if n == "niqe" else m(x, y)) for n, m in metrics.items()]
            print(p.stem, *vals)
    """
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    if importlib.util.find_spec("pyiqa") is None:
        pytest.skip("pyiqa is not installed: nothing to compare with")
    import scipy.io
    from PIL import Image
    from skimage import data

    from llbench.metrics import _niqe

    root = tmp_path_factory.mktemp("score-process")
    (root / "pred").mkdir()
    (root / "ref").mkdir()
    rng = np.random.default_rng(0)
    base = data.coffee()  # 400 x 600
    for i in range(N_PAIRS):
        ref = np.roll(base, 20 * i, axis=1)
        pred = np.clip(ref * 0.7 + rng.normal(0, 8, ref.shape), 0, 255).astype(np.uint8)
        Image.fromarray(ref).save(root / "ref" / f"{i}.png")
        Image.fromarray(pred).save(root / "pred" / f"{i}.png")
    mu, cov = _niqe._load_params_cpu()
    scipy.io.savemat(
        root / "niqe.mat", {"mu_prisparam": mu.numpy()[None], "cov_prisparam": cov.numpy()}
    )
    (root / "pyiqa_score.py").write_text(PYIQA_SCRIPT)
    return root


def _env(root):
    return {**os.environ, "LLBENCH_HOME": str(root / "home"), "OMP_NUM_THREADS": "1"}


def _llbench(root) -> dict[str, list[float]]:
    out = root / "scores.csv"
    cmd = [sys.executable, "-m", "llbench.cli.main", "score", "--metrics", "psnr,ssim,niqe"]
    cmd += ["--ref", str(root / "ref"), "-o", str(out), str(root / "pred")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(root), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    return {row[0]: [float(v) for v in row[1:]] for row in rows}


def _pyiqa(root) -> dict[str, list[float]]:
    cmd = [sys.executable, str(root / "pyiqa_score.py"), str(root / "pred"), str(root / "ref")]
    cmd.append(str(root / "niqe.mat"))
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(root), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line.split() for line in r.stdout.strip().splitlines()]
    return {row[0]: [float(v) for v in row[1:]] for row in rows}


def _check(got: dict[str, list[float]]) -> None:
    assert len(got) == N_PAIRS
    for psnr, ssim, niqe in got.values():
        assert 10 < psnr < 40 and 0 < ssim < 1 and 0 < niqe < 30


@pytest.mark.benchmark(group="score-process")
def test_bench_llbench_score_process(benchmark, folders):
    benchmark.extra_info.update(implementation="llbench", pairs=N_PAIRS, size="600x400")
    got = benchmark.pedantic(_llbench, args=(folders,), rounds=3, iterations=1)
    _check(got)


@pytest.mark.benchmark(group="score-process")
def test_bench_pyiqa_score_process(benchmark, folders):
    benchmark.extra_info.update(implementation="pyiqa", pairs=N_PAIRS, size="600x400")
    theirs = benchmark.pedantic(_pyiqa, args=(folders,), rounds=1, iterations=1)
    ours = _llbench(folders)
    for key, (psnr, ssim, niqe) in theirs.items():
        assert ours[key][0] == pytest.approx(psnr, abs=1e-4)
        assert ours[key][1] == pytest.approx(ssim, abs=1e-5)
        assert ours[key][2] == pytest.approx(niqe, abs=2e-3)
