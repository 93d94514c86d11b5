"""The embedded dataset: deterministic, LOL-style, darker than its references."""

from __future__ import annotations

import json

import numpy as np

from llbench.datasets.synthetic import SyntheticDataset, SyntheticUnpaired
from llbench.io.images import read_image


def test_generated_once_deterministic_and_dark(tmp_path):
    a = SyntheticDataset(tmp_path / "a" / "synthetic")
    b = SyntheticDataset(tmp_path / "b" / "synthetic")
    a.prepare()
    b.prepare()
    assert len(a.samples("train")) == 24 and len(a.samples("test")) == 9
    assert a.manifest("test") == b.manifest("test")  # bit-identical files
    test_keys = {s.key.rsplit("_", 1)[0] for s in a.samples("test")}
    train_keys = {s.key.rsplit("_", 1)[0] for s in a.samples("train")}
    assert test_keys == {"astronaut", "chelsea", "coffee"} and not test_keys & train_keys
    for s in a.samples("test"):
        low, high = read_image(s.low), read_image(s.high)
        assert low.shape == high.shape == (240, 320, 3)
        assert low.mean() < 0.6 * high.mean()
    params = json.loads((a.root / "params.json").read_text())
    assert 0.04 <= params["test/coffee_0"]["exposure"] <= 0.25
    mtime = (a.root / "test/low/coffee_0.png").stat().st_mtime_ns
    a.prepare()  # second call reuses the files
    assert (a.root / "test/low/coffee_0.png").stat().st_mtime_ns == mtime


def test_noise_is_signal_dependent(tmp_path):
    d = SyntheticDataset(tmp_path / "synthetic")
    d.prepare()
    s = d.samples("test")[0]
    low = read_image(s.low).astype(float)
    # residual after a 3x3 box blur: larger where the scene is brighter (shot noise)
    from scipy.ndimage import uniform_filter

    resid = low - uniform_filter(low, size=(3, 3, 1))
    bright = low > np.percentile(low, 80)
    dark = low < np.percentile(low, 20)
    assert resid[bright].std() > resid[dark].std()


def test_unpaired_view(tmp_path):
    d = SyntheticUnpaired(tmp_path / "synthetic")
    d.prepare()
    train = d.samples("train")
    assert len(train) == 12
    assert all(s.high is not None and s.high.stem != s.low.stem for s in train)
    assert all(s.high is None for s in d.samples("test"))
