"""The annotator plugin kind: labels, majority votes, the simulated committee, the oracle, and a
third party's annotator registered like any plugin."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from llbench.api import AnnotationContext, Annotator, AnnotatorSpec, Label, Pair, hookimpl
from llbench.errors import ConfigError, DatasetError
from llbench.plugins.hillie import annotators as A


def _png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)
    return path


def _pairs(tmp_path: Path, n: int = 6) -> list[Pair]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        base = rng.uniform(0, 1, (32, 40, 3))
        dark = _png(tmp_path / f"dark{i}.png", base * 30)  # under-exposed, flat, grey-ish
        good = base * [200, 140, 90] + 30  # exposed, colourful, spread histogram
        bright = _png(tmp_path / f"good{i}.png", good.clip(0, 255))
        a, b = (dark, bright) if i % 2 == 0 else (bright, dark)
        out.append(Pair(f"s1-{i}", f"im{i}", "f0", a, "f1", b))
    return out


def _ctx(tmp_path: Path, seed: int = 0) -> AnnotationContext:
    return AnnotationContext(run="r" * 20, stage=1, home=tmp_path, workdir=tmp_path, seed=seed)


def test_label_and_majority_of_three():
    lab = A.majority("p", ["a", "b", "a"])
    assert (lab.winner, lab.votes_a, lab.votes_b) == ("a", 2, 1)
    assert lab.agreement == pytest.approx(2 / 3)
    assert A.majority("q", ["b", "b", "b"]).agreement == 1.0
    assert A.majority("q", ["b", "b", "b"]).winner == "b"
    assert Label.from_dict(lab.to_dict()) == lab
    with pytest.raises(ValueError, match="tied"):
        A.majority("t", ["a", "b"])
    with pytest.raises(ValueError):
        A.majority("x", ["a", "c", "a"])
    with pytest.raises(ValueError, match="lost the vote"):
        Label("p", "b", 2, 1)


def test_builtin_measures_on_known_images():
    grey = torch.full((1, 3, 8, 8), 0.5)
    assert A.exposedness(grey).item() == pytest.approx(1.0)
    assert A.colorfulness(grey).item() == pytest.approx(0.0, abs=1e-4)
    assert A.entropy(grey).item() == pytest.approx(0.0)
    half = torch.zeros(1, 3, 8, 8)
    half[..., :4] = 1.0  # two luma levels, equally often: one bit
    assert A.entropy(half).item() == pytest.approx(1.0)
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0  # rg = 255, yb = 127.5, no spread
    assert A.colorfulness(red).item() == pytest.approx(0.3 * (255**2 + 127.5**2) ** 0.5)


def test_simulated_committee_prefers_well_exposed_and_is_deterministic(tmp_path):
    pairs = _pairs(tmp_path)
    sim = A.SimulatedAnnotator()
    labels = sim.annotate(pairs, _ctx(tmp_path))
    assert [lab.winner for lab in labels] == ["b", "a", "b", "a", "b", "a"]  # the good image
    assert all(lab.votes == 3 and lab.agreement == 1.0 for lab in labels)
    noisy = A.SimulatedAnnotator(noise=0.45)
    first = noisy.annotate(pairs, _ctx(tmp_path, seed=3))
    again = noisy.annotate(pairs, _ctx(tmp_path, seed=3))
    assert first == again  # deterministic for a seed
    others = [noisy.annotate(pairs, _ctx(tmp_path, seed=s)) for s in range(4, 9)]
    assert any(o != first for o in others)  # and the seed matters
    assert sim.provenance()["committee"] == list(A.DEFAULT_COMMITTEE)
    with pytest.raises(ConfigError, match="odd"):
        A.SimulatedAnnotator(committee=["entropy", "exposedness"])
    with pytest.raises(ConfigError, match="noise"):
        A.SimulatedAnnotator(noise=0.9)


def test_simulated_committee_accepts_metric_plugins(home, tmp_path):
    pairs = _pairs(tmp_path, 2)
    sim = A.build_simulated({"committee": ["niqe", "entropy", "exposedness"]})
    assert sim.provenance()["circular"] == ["niqe"]  # flagged: niqe is an evaluation metric
    with pytest.raises(ConfigError, match="not a no-reference"):
        A.build_simulated({"committee": ["psnr"]}).annotate(pairs, _ctx(tmp_path))
    with pytest.raises(ConfigError, match="unknown simulated annotator option"):
        A.build_simulated({"members": []})


def test_oracle_votes_for_the_image_closer_to_the_reference(home, tmp_path):
    rng = np.random.default_rng(1)
    ref = rng.uniform(40, 220, (32, 32, 3))
    p_ref = _png(tmp_path / "ref.png", ref)
    close = _png(tmp_path / "close.png", ref + rng.normal(0, 3, ref.shape))
    far = _png(tmp_path / "far.png", ref * 0.3)
    pairs = [
        Pair("s1-0", "x", "f0", far, "f1", close, p_ref),
        Pair("s1-1", "x", "f0", close, "f1", far, p_ref),
    ]
    oracle = A.build_oracle({"metric": "psnr"})
    assert oracle.leaks_supervision
    labels = oracle.annotate(pairs, _ctx(tmp_path))
    assert [lab.winner for lab in labels] == ["b", "a"]
    assert labels[0].votes_b == 3 and labels[0].votes_a == 0
    with pytest.raises(DatasetError, match="held-out reference"):
        oracle.annotate([Pair("s1-2", "y", "f0", far, "f1", close)], _ctx(tmp_path))
    with pytest.raises(ConfigError, match="full-reference"):
        A.build_oracle({"metric": "niqe"}).annotate(pairs, _ctx(tmp_path))


class _Crowd(Annotator):
    human = True

    def __init__(self, prefer: str):
        self.prefer = prefer

    def annotate(self, pairs, context):
        return [Label(p.id, self.prefer, 3 * (self.prefer == "a"), 3 * (self.prefer == "b"))
                for p in pairs]  # fmt: skip


def test_third_party_annotator_plugs_into_hillie(home):
    from llbench.pluginhost.host import get_host

    plugin = types.SimpleNamespace()

    @hookimpl
    def register_annotators(register):
        register(
            AnnotatorSpec(
                name="crowd",
                build=lambda options: _Crowd(**options),
                summary="test crowd",
                human=True,
            )
        )

    plugin.register_annotators = register_annotators
    host = get_host()
    host.register(plugin, name="crowd-plugin")
    try:
        spec = host.registry("annotator").get("crowd")
        assert host.registry("annotator").origin("crowd") == "crowd-plugin"
        m = host.method("hillie").build(
            {"annotator": "crowd", "annotator_options": {"prefer": "b"}}, torch.device("cpu")
        )
        assert m.annotator_spec is spec and m.annotator.prefer == "b"
        assert m.provenance()["human"] is True
    finally:
        host.unregister("crowd-plugin")
    with pytest.raises(Exception, match="unknown annotator 'crowd'"):
        get_host().registry("annotator").get("crowd")
