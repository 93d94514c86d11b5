"""Segmentation metrics (one confusion matrix, ignore 255, resume), the scenes dataset, tiny-seg
training and the segmenters plugin kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from llbench.api.hookspecs import hookimpl
from llbench.api.specs import SegmenterSpec
from llbench.datasets.scenes import CLASSES, ScenesConfig, ScenesDataset
from llbench.errors import DatasetError, LLBenchError
from llbench.io.images import read_mask
from llbench.metrics import task
from llbench.metrics.task import ConfusionMatrix
from llbench.segmenters.labels import TINY_CLASSES

SMALL = ScenesConfig(height=64, width=80, n_train=16, n_test=4)


# -- confusion matrix ----------------------------------------------------------------------------
def test_miou_and_mpa_on_a_hand_computed_example():
    target = torch.tensor([[0, 0, 1], [1, 2, 255]])
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])  # the last pixel is ignored
    cm = ConfusionMatrix(4)
    cm.update(pred, target)
    assert cm.matrix.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    # IoU: class 0 1/(2+1-1), class 1 2/(2+3-2), class 2 1/1; class 3 absent -> left out
    assert cm.miou() == pytest.approx(100 * (1 / 2 + 2 / 3 + 1) / 3)
    # pixel accuracy per class: 1/2, 2/2, 1/1
    assert cm.mpa() == pytest.approx(100 * (1 / 2 + 1 + 1) / 3)


def test_one_matrix_over_the_split_not_a_mean_of_images():
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([[0, 0, 0, 0]]), torch.tensor([[0, 0, 0, 1]]))  # IoU 0.75, 0
    cm.update(torch.tensor([[1, 1]]), torch.tensor([[1, 1]]))  # IoU -, 1
    # pooled: class 0: 3 / 4; class 1: 2 / 3
    assert cm.miou() == pytest.approx(100 * (3 / 4 + 2 / 3) / 2)


def test_labels_outside_the_segmenter_classes_are_an_error():
    cm = ConfusionMatrix(3)
    with pytest.raises(DatasetError, match="label 7"):
        cm.update(torch.zeros(2, 2, dtype=torch.long), torch.full((2, 2), 7))
    with pytest.raises(DatasetError, match="differ in size"):
        cm.update(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))


# -- metrics with a registered segmenter -----------------------------------------------------------
class BrightSeg:
    """Label 1 where the mean of RGB exceeds 0.5, else 0; counts its calls."""

    classes = ("dark", "bright")

    def __init__(self):
        self.calls = 0

    def predict(self, images):
        self.calls += 1
        return (images.mean(1) > 0.5).long()


class BrightPlugin:
    def __init__(self):
        self.seg = BrightSeg()

    @hookimpl
    def register_segmenters(self, register):
        register(
            SegmenterSpec(
                name="bright",
                build=lambda device: self.seg,
                summary="test",
                classes=BrightSeg.classes,
            )
        )


@pytest.fixture
def bright(home):
    from llbench.pluginhost.host import get_host

    plugin = BrightPlugin()
    get_host().register(plugin, name="bright-test")
    task._SEGMENTERS.clear()
    yield plugin.seg
    task._SEGMENTERS.clear()


def _items(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        img = torch.rand(1, 3, 8, 8, generator=g)
        mask = (torch.rand(1, 8, 8, generator=g) > 0.5).long()
        mask[0, 0, :2] = 255
        yield img, mask


def test_metrics_share_one_segmentation_and_resume_from_state(bright):
    from llbench.pluginhost.host import get_host

    reg = get_host().registry("metric")
    miou = reg.get("miou").build(torch.device("cpu"), {"segmenter": "bright"})
    mpa = reg.get("mpa").build(torch.device("cpu"), {"segmenter": "bright"})
    items = list(_items())
    for m in (miou, mpa):
        m.reset()
    for img, mask in items:
        miou.update(img, None, None, mask)
        mpa.update(img, None, None, mask)
    assert bright.calls == len(items)  # miou and mpa segmented each image once
    full_miou, full_mpa = miou.compute(), mpa.compute()

    cm = ConfusionMatrix(2)
    for img, mask in items:
        cm.update((img.mean(1) > 0.5).long(), mask)
    assert full_miou == pytest.approx(cm.miou()) and full_mpa == pytest.approx(cm.mpa())

    # interrupted after 2 images: the state survives a JSON round trip and resumes
    import json

    first = reg.get("miou").build(torch.device("cpu"), {"segmenter": "bright"})
    first.reset()
    for img, mask in items[:2]:
        first.update(img, None, None, mask)
    saved = json.loads(json.dumps(first.state()))
    second = reg.get("miou").build(torch.device("cpu"), {"segmenter": "bright"})
    second.reset()
    second.load_state(saved)
    for img, mask in items[2:]:
        second.update(img, None, None, mask)
    assert second.compute() == pytest.approx(full_miou)
    with pytest.raises(LLBenchError, match="segmenter"):
        second.load_state({**saved, "segmenter": "other"})


def test_unknown_segmenter_lists_the_known_ones(bright):
    from llbench.pluginhost.host import get_host

    with pytest.raises(LLBenchError, match="tiny-seg"):
        get_host().metric("miou").build(torch.device("cpu"), {"segmenter": "nope"})


def test_metric_without_masks_explains(bright):
    m = task.MeanIoU("cpu", {"segmenter": "bright"})
    with pytest.raises(DatasetError, match="masks"):
        m.update(torch.rand(1, 3, 4, 4))


# -- the scenes dataset ----------------------------------------------------------------------------
def test_scenes_are_deterministic_and_well_formed(tmp_path):
    a = ScenesDataset(tmp_path / "a", SMALL)
    b = ScenesDataset(tmp_path / "b", SMALL)
    a.prepare()
    b.prepare()
    sa, sb = a.samples("test"), b.samples("test")
    assert len(sa) == 4 and len(a.samples("train")) == 16
    for x, y in zip(sa, sb, strict=True):
        for attr in ("low", "high", "mask"):
            assert getattr(x, attr).read_bytes() == getattr(y, attr).read_bytes()
    c = ScenesDataset(tmp_path / "c", ScenesConfig(64, 80, 16, 4, seed=1))
    c.prepare()
    assert c.samples("test")[0].high.read_bytes() != sa[0].high.read_bytes()

    from llbench.io.images import read_image

    labels = set()
    for s in a.samples("train"):
        mask = read_mask(s.mask)
        labels |= set(np.unique(mask).tolist())
        assert mask.shape == (64, 80)
        assert read_image(s.low).mean() < read_image(s.high).mean()  # darkened
    assert labels <= set(range(len(CLASSES))) | {255}
    assert 255 in labels and len(labels - {0, 255}) >= 3  # borders ignored, several classes
    manifest = a.manifest_hash("test")
    a.prepare()  # already there: nothing regenerated
    assert a.manifest_hash("test") == manifest


def test_scenes_registered_with_masks(home):
    from llbench.pluginhost.host import get_host

    spec = get_host().dataset("scenes")
    assert spec.masks and spec.paired
    ds = spec.build(home / "data")
    assert ds.status().state == "absent"


# -- tiny-seg ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_scenes(tmp_path_factory):
    ds = ScenesDataset(tmp_path_factory.mktemp("scenes") / "scenes", SMALL)
    ds.prepare()
    return ds


def _miou(net, images, masks):
    cm = ConfusionMatrix(len(CLASSES))
    with torch.no_grad():
        cm.update(net.eval()(images).argmax(1), masks)
    return cm.miou()


def test_tiny_seg_training_improves_miou(small_scenes):
    from llbench.segmenters import tiny

    images, masks = tiny.load_training_data(small_scenes.samples("train"))
    test_images, test_masks = tiny.load_training_data(small_scenes.samples("test"))
    config = tiny.TrainConfig(steps=40, batch_size=8, crop=64, seed=0)
    torch.manual_seed(config.seed)
    untrained = tiny.TinySegNet(len(CLASSES), config.width)
    before = _miou(untrained, test_images, test_masks)
    net = tiny.train(images, masks, config)
    after = _miou(net, test_images, test_masks)
    assert after > before + 10, (before, after)
    # deterministic for a seed
    again = tiny.train(images, masks, config)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, again.state_dict()[k], msg=k)


def test_tiny_seg_checkpoint_and_reference_scores(home, small_scenes):
    from llbench.segmenters import build_segmenter, tiny, tiny_seg_path

    images, masks = tiny.load_training_data(small_scenes.samples("train"))
    config = tiny.TrainConfig(steps=40, crop=64)
    tiny.save(tiny.train(images, masks, config), tiny_seg_path(home), config)
    task._SEGMENTERS.clear()
    seg = build_segmenter("tiny-seg")
    assert seg.classes == CLASSES and seg.info["config"]["steps"] == 40
    labels = seg.predict(images[:2])
    assert labels.shape == (2, 64, 80) and labels.dtype == torch.int64

    scores = task.reference_scores(small_scenes.samples("test"), "tiny-seg")
    assert set(scores) == {"input", "reference"}
    # the segmenter learned on normal light: the dark inputs lose most of it
    assert scores["reference"]["miou"] > scores["input"]["miou"]
    # the same numbers as the metric computes from the normal-light images
    metric = task.MeanIoU("cpu", {})
    metric.reset()
    from llbench.io.images import read_image, to_tensor

    for s in small_scenes.samples("test"):
        metric.update(
            to_tensor(read_image(s.high)),
            None,
            None,
            torch.from_numpy(read_mask(s.mask)).unsqueeze(0),
        )
    assert metric.compute() == pytest.approx(scores["reference"]["miou"])
    task._SEGMENTERS.clear()


def test_segmenters_cli(home):
    from llbench.cli.common import CliState
    from llbench.cli.segmenters import segmenters

    runner = CliRunner()
    obj = CliState.from_options(str(home), None)
    res = runner.invoke(segmenters, ["list"], obj=obj)
    assert res.exit_code == 0, res.output
    assert "deeplabv3_resnet50_coco-cd0a2569.pth" in res.output and "not trained" in res.output
    res = runner.invoke(segmenters, ["train", "fcn-resnet50"], obj=obj)
    assert res.exit_code == 2 and "pretrained torchvision weights" in res.output
    res = runner.invoke(segmenters, ["train", "tiny-seg", "--dataset", "synthetic"], obj=obj)
    assert res.exit_code == 2
    res = runner.invoke(
        segmenters, ["train", "tiny-seg", "--dataset", "scenes", "--steps", "2"], obj=obj
    )
    assert res.exit_code == 0, res.output
    assert (home / "weights" / "tiny-seg.pt").is_file()
    task._SEGMENTERS.clear()


# -- torchvision segmenters -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["deeplabv3-resnet50", pytest.param("fcn-resnet50", marks=pytest.mark.slow)]
)
def test_torchvision_segmenter_loads_its_checkpoint_from_the_hub_cache(
    home, tmp_path, monkeypatch, name
):
    from llbench._torchvision import import_torchvision
    from llbench.errors import WeightsError
    from llbench.io import weights as W
    from llbench.pluginhost.host import get_host
    from llbench.segmenters import build_segmenter

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = get_host().segmenter(name)
    msg = spec.available()
    assert msg and W.files_for(name)[0].filename in msg and "download.pytorch.org" in msg
    with pytest.raises(WeightsError):
        build_segmenter(name)

    tv = import_torchvision()
    ctor = {
        "deeplabv3-resnet50": tv.models.segmentation.deeplabv3_resnet50,
        "fcn-resnet50": tv.models.segmentation.fcn_resnet50,
    }[name]
    net = ctor(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    path = W.files_for(name)[0].path()
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    assert spec.available() is None
    seg = spec.build(torch.device("cpu"))
    seg.resize_short = 64  # keep the test small; the preset is 520
    labels = seg.predict(torch.rand(1, 3, 40, 56))
    assert labels.shape == (1, 40, 56) and int(labels.max()) < 21
    # with the net's own preprocessing the labels match a direct forward
    x = torch.rand(1, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        net.eval()
        direct = net((x - mean) / std)["out"].argmax(1)
    assert torch.equal(seg.predict(x), direct)


# -- through the runner --------------------------------------------------------------------------
def test_runner_scores_the_input_like_reference_scores(home):
    """``input`` (no enhancement) on scenes: the runner's miou/mpa equal the dark-input row of
    :func:`reference_scores`, and the efficiency metrics land as dataset-level values."""
    from llbench.engine.runner import run
    from llbench.pluginhost.host import get_host
    from llbench.segmenters import tiny, tiny_seg_path

    ds = get_host().dataset("scenes").build(home / "data")
    ds.prepare()
    images, masks = tiny.load_training_data(ds.samples("train")[:8])
    config = tiny.TrainConfig(steps=5, crop=64)
    tiny.save(tiny.train(images, masks, config), tiny_seg_path(home), config)
    task._SEGMENTERS.clear()
    result = run(
        "input",
        "scenes",
        metrics=["miou", "mpa", "params"],
        limit=6,
        segmenter="tiny-seg",
        progress=False,
    )
    expected = task.reference_scores(ds.samples("test")[:6], "tiny-seg")["input"]
    assert result.scores["miou"] == pytest.approx(expected["miou"])
    assert result.scores["mpa"] == pytest.approx(expected["mpa"])
    assert result.scores["params"] == 0.0
    # the reference rows are stored as such (their own table), with the task scores
    from llbench.store.database import DATASET_ROW, Store
    from llbench.store.frames import results

    store = Store(home)
    refs = store.query('SELECT key, which, dataset, n_images FROM "references" ORDER BY which')
    assert [(r["which"], r["dataset"], r["n_images"]) for r in refs] == [
        ("input", "scenes", 6),
        ("reference", "scenes", 6),
    ]
    dark = store.image_scores(refs[0]["key"], DATASET_ROW)
    assert dark["miou"] == pytest.approx(expected["miou"])
    frame = results(home=home, metrics=["miou"])
    assert set(frame["method"]) == {"input", "(dark input)", "(normal light)"}
    task._SEGMENTERS.clear()


class _Flat:
    """Labels every pixel 1 in the five classes of ``scenes``."""

    classes = TINY_CLASSES

    def predict(self, images):
        return torch.ones(images.shape[0], *images.shape[-2:], dtype=torch.long)


class _FlatPlugin:
    @hookimpl
    def register_segmenters(self, register):
        register(SegmenterSpec("flat", lambda device: _Flat(), "test", TINY_CLASSES))


def test_task_scores_follow_the_segmenter_and_its_weights(home, capsys):
    """mIoU is stored with the identity of the segmenter that made it (name, version, sha256 of
    its weights): a finished run asked again with other weights or another segmenter is
    rescored (not reused), and reference rows are kept per identity."""
    from llbench.engine.runner import run
    from llbench.io.hashing import sha256_file
    from llbench.pluginhost.host import get_host
    from llbench.segmenters import tiny, tiny_seg_path
    from llbench.store.database import Store

    get_host().register(_FlatPlugin(), name="flat-test")
    task._SEGMENTERS.clear()
    ds = get_host().dataset("scenes").build(home / "data")
    ds.prepare()
    images, masks = tiny.load_training_data(ds.samples("train")[:8])

    def train_tiny(steps: int) -> None:
        config = tiny.TrainConfig(steps=steps, crop=64)
        tiny.save(tiny.train(images, masks, config), tiny_seg_path(home), config)

    def miou(segmenter: str = "tiny-seg"):
        return run("input", "scenes", metrics=["miou"], limit=4, segmenter=segmenter,
                   progress=False)  # fmt: skip

    def expected(segmenter: str = "tiny-seg") -> float:
        return task.reference_scores(ds.samples("test")[:4], segmenter)["input"]["miou"]

    train_tiny(2)
    first = miou()
    assert not first.reused and first.scores["miou"] == pytest.approx(expected())
    assert miou().reused  # same segmenter, same weights
    train_tiny(40)  # other weights in the same file
    assert expected() != pytest.approx(first.scores["miou"])
    capsys.readouterr()
    second = miou()
    assert "miou: the stored values were made with another segmenter" in capsys.readouterr().err
    assert not second.reused and second.key == first.key  # the outputs are reused, not the score
    assert second.scores["miou"] == pytest.approx(expected())
    other = miou("flat")
    assert not other.reused and other.scores["miou"] == pytest.approx(expected("flat"))
    assert other.scores["miou"] != pytest.approx(second.scores["miou"])
    assert miou("flat").reused
    assert miou().scores["miou"] == pytest.approx(second.scores["miou"])  # back: rescored
    # the report's reference rows are those of the segmenter the newest run used (tiny-seg
    # with the second weights), not the newest reference rows (flat's)
    from llbench.reports.rows import load_runs
    from llbench.store.database import DATASET_ROW

    dark = [r for r in load_runs(home) if r.method == "(dark input)"]
    assert len(dark) == 1
    assert Store(home).image_scores(dark[0].key, DATASET_ROW)["miou"] == pytest.approx(expected())
    store = Store(home)
    refs = store.references()
    assert len(refs) == 6  # dark input and normal light for three segmenter identities
    # a score stored before contexts were recorded is not trusted: scored again
    store.connect().execute("DELETE FROM split_contexts")
    assert not miou().reused
    from llbench.engine.grid import run_grid  # grids follow the same rule

    def grid(segmenter: str):
        out = run_grid(["input"], ["scenes"], metrics=["miou"], limit=4, segmenter=segmenter,
                       progress=False)  # fmt: skip
        return out.cells[0]

    cell = grid("flat")
    assert cell.status == "finished" and cell.result.scores["miou"] == pytest.approx(
        expected("flat")
    )
    assert grid("flat").status == "reused"
    # the report says which segmenter made the task column (the one the run was scored with last)
    from llbench.reports.report import build_report

    def notes():
        rep = build_report(home=home, methods=["input"], datasets=["scenes"], include_limited=True)
        return [n for n in rep.table.notes if "segmenter" in n]

    assert notes() == ["mIoU: segmenter flat."]
    miou()  # scored with tiny-seg again: its weights file and hash are named
    sha = sha256_file(tiny_seg_path(home))[:8]
    assert notes() == [f"mIoU: segmenter tiny-seg (tiny-seg.pt {sha})."]
