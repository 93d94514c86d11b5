"""``hrnet-w48-pascal-context``: official key layout, loading, unavailability, segment() output;
and the segmenter API's generic feature hooks (``Segmenter.feature_modules``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llbench.api import Segmenter
from llbench.errors import WeightsError
from llbench.segmenters import hrnet

#: Shapes of the official checkpoint's tensors (HRNet-Semantic-Segmentation, seg_hrnet.py, W48).
OFFICIAL_SHAPES = {
    "model.conv1.weight": (64, 3, 3, 3),
    "model.layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "model.transition1.0.0.weight": (48, 256, 3, 3),
    "model.transition1.1.0.0.weight": (96, 256, 3, 3),
    "model.transition3.3.0.0.weight": (384, 192, 3, 3),
    "model.stage2.0.branches.1.3.conv2.weight": (96, 96, 3, 3),
    "model.stage4.2.fuse_layers.0.3.0.weight": (48, 384, 1, 1),
    "model.stage4.0.fuse_layers.3.0.0.0.weight": (48, 48, 3, 3),
    "model.stage4.0.fuse_layers.3.0.2.0.weight": (384, 48, 3, 3),
    "model.stage4.0.fuse_layers.3.0.2.1.running_var": (384,),
    "model.last_layer.0.weight": (720, 720, 1, 1),
    "model.last_layer.1.num_batches_tracked": (),
    "model.last_layer.3.weight": (59, 720, 1, 1),
    "model.last_layer.3.bias": (59,),
}


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    """A file in the official layout (FullModel keys) with random tensors of the official shapes."""
    g = torch.Generator().manual_seed(0)
    net = hrnet.HRNetV2Seg()
    state = {}
    for k, v in net.state_dict().items():
        if v.dtype.is_floating_point:
            state[f"model.{k}"] = torch.randn(v.shape, generator=g) * 0.02
        else:
            state[f"model.{k}"] = torch.full_like(v, 7)
    state["loss.criterion.weight"] = torch.ones(59)
    path = tmp_path_factory.mktemp("torch") / "hub" / "checkpoints" / hrnet.CHECKPOINT
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path, state


def test_official_layout_has_the_official_shapes(official_file):
    _, state = official_file
    for key, shape in OFFICIAL_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    n = sum(
        v.numel()
        for k, v in state.items()
        if k.startswith("model.") and "num_batches" not in k and "running" not in k
    )
    assert n == 65_888_219  # HRNetV2-W48, 59 classes (65.9 M)


def test_checkpoint_loads_from_the_torch_hub_cache(official_file, monkeypatch, home):
    path, state = official_file
    monkeypatch.setenv("TORCH_HOME", str(path.parents[2]))
    from llbench.pluginhost.host import get_host

    spec = get_host().segmenter("hrnet-w48-pascal-context")
    assert spec.available() is None
    seg = spec.build(torch.device("cpu"))
    own = seg.net.state_dict()
    assert torch.equal(
        own["stage4.2.fuse_layers.0.3.0.weight"], state["model.stage4.2.fuse_layers.0.3.0.weight"]
    )
    assert torch.equal(own["last_layer.3.bias"], state["model.last_layer.3.bias"])
    assert int(own["bn1.num_batches_tracked"]) == 7
    assert len(seg.info["sha256"]) == 64 and seg.classes[36] == "person" and len(seg.classes) == 59


def test_key_mapping_strips_wrappers_and_drops_the_loss():
    mapped = hrnet.map_official_keys(
        {
            "module.model.conv1.weight": 1,
            "model.bn1.bias": 2,
            "loss.criterion.weight": 3,
            "conv2.weight": 4,
        }
    )
    assert mapped == {"conv1.weight": 1, "bn1.bias": 2, "conv2.weight": 4}


def test_wrong_file_is_refused(tmp_path):
    path = tmp_path / "x.pth"
    torch.save(
        {
            "model.conv1.weight": torch.zeros(64, 3, 3, 3),
            "model.last_layer.3.bias": torch.zeros(19),
        },
        path,
    )
    with pytest.raises(WeightsError, match="missing keys") as err:
        hrnet.load_checkpoint(path)
    assert "1 of another shape" in str(err.value)  # the 19-class (Cityscapes) head


def test_absent_checkpoint_says_what_to_place_where(tmp_path, monkeypatch, home):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    msg = hrnet.unavailable()
    assert hrnet.CHECKPOINT in msg and str(tmp_path / "empty" / "hub" / "checkpoints") in msg
    from llbench.segmenters import build_segmenter

    with pytest.raises(WeightsError, match=hrnet.CHECKPOINT):
        build_segmenter("hrnet-w48-pascal-context")


def test_segment_returns_probs_logits_at_input_size_and_four_stage_features():
    torch.manual_seed(0)
    seg = hrnet.HRNetSegmenter(net=hrnet.HRNetV2Seg())
    x = torch.rand(1, 3, 70, 90)  # not a multiple of 32
    with torch.no_grad():
        out = seg.segment(x)
    assert out.logits.shape == (1, 59, 70, 90) and out.probs.shape == out.logits.shape
    assert torch.allclose(out.probs.sum(1), torch.ones(1, 70, 90), atol=1e-5)
    assert [tuple(f.shape[1:]) for f in out.features] == [
        (48, 18, 23),
        (96, 9, 12),
        (192, 5, 6),
        (384, 3, 3),
    ]
    assert out.strides == (4, 8, 16, 32) and out.feature_at(8) is out.features[1]
    assert seg.predict(x).shape == (1, 70, 90)


class _HookSeg(Segmenter):
    name = "hook-seg"
    classes = ("a", "b")
    feature_modules = ("body.0", "body.2")
    feature_strides = (1, 2)
    feature_channels = (4, 4)

    def __init__(self):
        super().__init__("cpu")
        self.net = nn.ModuleDict(
            {
                "body": nn.Sequential(
                    nn.Conv2d(3, 4, 3, padding=1),
                    nn.ReLU(),
                    nn.Conv2d(4, 4, 3, stride=2, padding=1),
                ),
                "head": nn.Conv2d(4, 2, 1),
            }
        )

    def logits(self, images):
        f = self.net["body"](images)
        return nn.functional.interpolate(self.net["head"](f), size=images.shape[-2:])


def test_feature_modules_give_any_segmenter_features():
    seg = _HookSeg()
    out = seg.segment(torch.rand(2, 3, 8, 10))
    assert [tuple(f.shape) for f in out.features] == [(2, 4, 8, 10), (2, 4, 4, 5)]
    assert out.strides == (1, 2)
    assert not seg.net["body"][0]._forward_hooks  # hooks removed after the pass
