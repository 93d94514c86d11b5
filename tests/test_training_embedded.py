"""Zero-reference training on the embedded dataset makes measurable progress in CPU minutes."""

from __future__ import annotations

import numpy as np

import llbench
from llbench.io.images import read_image
from llbench.store.frames import training_log


def _exposure_error(paths) -> float:
    """No-reference exposure score: mean |16x16 regional brightness - 0.6| (lower is better)."""
    errs = []
    for p in paths:
        y = read_image(p).astype(np.float64).mean(axis=2) / 255.0
        h, w = (y.shape[0] // 16) * 16, (y.shape[1] // 16) * 16
        blocks = y[:h, :w].reshape(h // 16, 16, w // 16, 16).mean(axis=(1, 3))
        errs.append(np.abs(blocks - 0.6).mean())
    return float(np.mean(errs))


def test_zero_dce_pp_quick_preset_on_synthetic(home):
    dark = llbench.run("input", "synthetic", metrics=["psnr", "ssim"], device="cpu", progress=False)
    trained = llbench.run(
        "zero-dce++",
        "synthetic",
        preset="quick",
        metrics=["psnr", "ssim"],
        device="cpu",
        progress=False,
    )
    assert trained.ok and trained.n_images == 9
    log = training_log()
    loss = log[log["name"] == "loss"].sort_values("step")["value"].to_numpy()
    assert len(loss) >= 20
    assert loss[-5:].mean() < 0.7 * loss[:5].mean()  # the loss falls
    # a no-reference score improves over the input ...
    before = _exposure_error(sorted((dark.out_dir / "images").glob("*.png")))
    after = _exposure_error(sorted((trained.out_dir / "images").glob("*.png")))
    assert after < before - 0.1
    # ... and so do the full-reference scores against the normal-light images
    assert trained.scores["psnr"] > dark.scores["psnr"] + 1.0
    assert trained.scores["ssim"] > dark.scores["ssim"]
