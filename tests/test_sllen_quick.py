"""SLLEN's quick preset trains on ``synthetic`` + ``scenes`` on a CPU and beats the dark input."""

from __future__ import annotations

import pytest

import llbench


@pytest.mark.slow
def test_quick_preset_beats_the_dark_input(home):
    dark = llbench.run(
        "input", "synthetic", home=home, metrics=["psnr", "ssim"], device="cpu", progress=False
    )
    run = llbench.run(
        "sllen",
        "synthetic",
        preset="quick",
        home=home,
        metrics=["psnr", "ssim"],
        device="cpu",
        progress=False,
    )
    assert run.ok
    assert run.scores["psnr"] > dark.scores["psnr"] + 3.0
    assert run.scores["ssim"] > dark.scores["ssim"] + 0.05
    # both stages of Algorithm 1 were logged, and the data choices are in the provenance
    import json

    from llbench.store.database import Store
    from llbench.store.frames import training_log

    log = training_log(home=home)
    names = set(log.loc[log["method"] == "sllen", "name"])
    assert {"ss/ce", "lle/loss", "lle/smooth_l1", "lle/kd", "lle/itv", "lle/grad"} <= names
    prov = json.loads(Store(home).get_run(run.key)["provenance"])
    trained = prov["training"]["method_provenance"]
    assert trained["segmentation"]["dataset"] == "scenes"
    assert trained["segmentation"]["classes"] == 5
    assert 0.0 < trained["grad_target"]["G"] < 0.5
    assert "drop" in trained["perceptual"]["L_p"]
