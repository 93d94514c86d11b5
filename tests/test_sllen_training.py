"""SLLEN training: the alternating steps touch the right parameters, Algorithm 1 resumes
exactly, G and the data choices are recorded, the sllen-ssan segmenter loads what training
wrote, ablation configs, and the errors for missing segmentation data or VGG weights."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from llbench.api import TrainContext
from llbench.api.datasets import Sample
from llbench.config import load_config_file
from llbench.errors import ConfigError, DatasetError, WeightsError
from llbench.io.images import write_png
from llbench.plugins.sllen import DEFAULT_CONFIG, ablation_config, losses
from llbench.plugins.sllen import training as T
from llbench.plugins.sllen.method import SLLEN
from llbench.plugins.sllen.model import SLLENNet

TINY = {
    "width": 4,
    "attention_dim": 4,
    "num_classes": 3,
    "iterations": 4,
    "batch_size": 2,
    "patch": 16,
    "ss_batch_size": 2,
    "ss_patch": 16,
    "lr": 1e-3,
    "ss_lr": 1e-3,
    "segmentation_dataset": "fake-seg",
    "vgg": {"layers": ["relu1_2"], "if_missing": "random"},
    "checkpoint_every": 1,
}


@dataclass
class FakeSegDataset:
    """A labelled dataset with darkened images, as ``ctx.open_dataset`` returns one."""

    root: Path
    name: str = "fake-seg"
    splits: tuple[str, ...] = ("train",)

    def samples(self, split: str) -> list[Sample]:
        if split not in self.splits:
            raise DatasetError(f"no split {split}")
        return [
            Sample(
                f"{i}",
                self.root / f"low{i}.png",
                self.root / f"high{i}.png",
                self.root / f"m{i}.png",
            )
            for i in range(3)
        ]


class FakeContext(TrainContext):
    seg: FakeSegDataset | None = None

    def open_dataset(self, name: str):
        if self.seg is None or name != self.seg.name:
            raise DatasetError(f"dataset {name!r} is not here")
        return self.seg


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sllen-data")
    rng = np.random.default_rng(0)
    for i in range(3):
        high = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
        write_png(root / f"high{i}.png", high)
        write_png(root / f"low{i}.png", (high // 8).astype(np.uint8))
        mask = rng.integers(0, 3, (20, 24)).astype(np.uint8)
        mask[0] = 255
        from PIL import Image

        Image.fromarray(mask, mode="L").save(root / f"m{i}.png")
    return root


def _ctx(data: Path, workdir: Path, log=None) -> FakeContext:
    samples = [Sample(f"{i}", data / f"low{i}.png", data / f"high{i}.png") for i in range(3)]
    ctx = FakeContext(
        dataset=None, samples=samples, workdir=workdir, seed=0, device=torch.device("cpu")
    )
    if log is not None:
        ctx.log = log
    ctx.seg = FakeSegDataset(data)
    return ctx


def _method(**over) -> SLLEN:
    torch.manual_seed(0)
    cfg = copy.deepcopy(TINY)
    cfg.update(over)
    return SLLEN(cfg, "cpu")


def _snapshot(params):
    return [p.detach().clone() for p in params]


def _changed(before, params) -> list[bool]:
    return [not torch.equal(b, p.detach()) for b, p in zip(before, params, strict=True)]


# -- Algorithm 1 steps ---------------------------------------------------------------------------------
def test_parameter_groups_share_exactly_the_encoder():
    net = SLLENNet(width=4, num_classes=3, attention_dim=4)
    ss, ll = {id(p) for p in T.ssan_parameters(net)}, {id(p) for p in T.llemn_parameters(net)}
    assert ss & ll == {id(p) for p in net.encoder.parameters()}
    assert ss | ll == {id(p) for p in net.parameters()}


def test_ss_step_and_lle_step_update_only_their_networks():
    torch.manual_seed(0)
    net = SLLENNet(width=4, num_classes=3, attention_dim=4)
    opt_s = torch.optim.Adam(T.ssan_parameters(net), lr=1e-2)
    opt_l = torch.optim.Adam(T.llemn_parameters(net), lr=1e-2)
    enc, ssan, llemn = (list(m.parameters()) for m in (net.encoder, net.ssan, net.llemn))
    x, y = torch.rand(2, 3, 16, 16), torch.randint(0, 3, (2, 16, 16))

    before = [_snapshot(g) for g in (enc, ssan, llemn)]
    out = T.ss_step(net, x, y, opt_s)
    assert set(out) == {"ss/ce"}
    e, s, ll = (_changed(b, g) for b, g in zip(before, (enc, ssan, llemn), strict=True))
    assert all(e) and all(s) and not any(ll)

    objective = T.LLEObjective({"smooth_l1": 1.0, "kd": 0.05, "itv": 0.1, "grad": 1.0}, 0.05)
    before = [_snapshot(g) for g in (enc, ssan, llemn)]
    out = T.lle_step(net, x * 0.2, x, objective, opt_l)
    assert {"lle/loss", "lle/smooth_l1", "lle/kd", "lle/itv", "lle/grad"} <= set(out)
    T.lle_step(net, x * 0.2, x, objective, opt_l)  # RSAEB's trunk moves once its heads are not 0
    e, s, ll = (_changed(b, g) for b, g in zip(before, (enc, ssan, llemn), strict=True))
    assert all(e) and all(ll) and not any(s)


def test_lle_step_equals_a_hand_written_adam_step():
    torch.manual_seed(1)
    net = SLLENNet(width=4, num_classes=3, attention_dim=4)
    ref = copy.deepcopy(net)
    opt = torch.optim.Adam(T.llemn_parameters(net), lr=1e-3)
    objective = T.LLEObjective({"smooth_l1": 1.0, "kd": 0.05, "itv": 0.1, "grad": 1.0}, 0.04)
    low, high = torch.rand(1, 3, 16, 16) * 0.2, torch.rand(1, 3, 16, 16)
    T.lle_step(net, low, high, objective, opt)
    out = ref(low)
    loss = (
        torch.nn.functional.smooth_l1_loss(out.enhanced, high)
        + 0.05 * losses.distillation(out.encoder, out.decoder)
        + 0.1 * losses.illumination_tv(low, out.enhanced)
        + losses.gradient_loss(out.enhanced, 0.04)
    )
    loss.backward()
    for (name, p), q in zip(ref.named_parameters(), net.parameters(), strict=True):
        if name.startswith("ssan."):
            torch.testing.assert_close(q, p)
        elif p.grad is not None:  # first Adam step: p - lr * g / (|g| + eps)
            step = 1e-3 * p.grad / (p.grad.abs() + 1e-8)
            torch.testing.assert_close(q, p - step, atol=1e-6, rtol=1e-5)


def test_cosine_tail():
    f = T.cosine_tail(10, 0.5, 1e-3, 1e-5)
    assert [f(s) for s in range(5)] == [1.0] * 5
    assert f(10) == pytest.approx(0.01) and f(5) == 1.0
    assert 0.01 < f(7) < 1.0


# -- fit, resume, provenance ----------------------------------------------------------------------------
def test_fit_alternates_logs_both_stages_and_records_g(data, tmp_path):
    logs: list[tuple[int, dict]] = []
    m = _method()
    m.fit(_ctx(data, tmp_path / "w", log=lambda s, v: logs.append((s, dict(v)))))
    assert [s for s, _ in logs] == [1, 2, 3, 4]
    assert all("ss/ce" in v and "lle/loss" in v and "lle/perceptual" in v for _, v in logs)
    g, n = losses.dataset_average_gradient([data / f"high{i}.png" for i in range(3)])
    prov = m.provenance()
    assert (
        prov["grad_target"]["G"] == pytest.approx(g)
        and "3 normal-light" in prov["grad_target"]["source"]
    )
    assert float(m.net.grad_target) == pytest.approx(g)
    assert prov["segmentation"]["dataset"] == "fake-seg"
    assert prov["segmentation"]["image_kind"] == "the dataset's darkened"
    assert "random" in prov["perceptual"]["L_p"]
    y = m.enhance(torch.rand(1, 3, 21, 30))
    assert y.shape == (1, 3, 21, 30)


def test_resume_gives_the_uninterrupted_weights(data, tmp_path):
    full = _method()
    full.fit(_ctx(data, tmp_path / "a"))

    class Stop(Exception):
        pass

    def stop_at_3(step, values):
        if step == 3:
            raise Stop

    broken = _method()
    with pytest.raises(Stop):
        broken.fit(_ctx(data, tmp_path / "b", log=stop_at_3))
    resumed = _method()
    resumed.fit(_ctx(data, tmp_path / "b"))
    assert resumed.provenance()["training"]["resumed_from"] == 2
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)


def test_independent_schedule_trains_ssan_first(data, tmp_path):
    logs: list[tuple[int, dict]] = []
    m = _method(schedule="independent", iterations=2)
    assert m.net.ssan.encoder is not None
    m.fit(_ctx(data, tmp_path / "w", log=lambda s, v: logs.append((s, dict(v)))))
    assert [sorted(v)[0].split("/")[0] for _, v in logs] == ["ss", "ss", "lle", "lle"]


def test_segmentation_data_darkens_normal_light_crops_on_the_fly(data):
    seg = FakeSegDataset(data)
    ctx = _ctx(data, data / "unused")
    cfg = {**DEFAULT_CONFIG, **TINY, "segmentation_images": "dark"}
    seg.samples = lambda split: [
        Sample(f"{i}", data / f"high{i}.png", data / f"high{i}.png", data / f"m{i}.png")
        for i in range(3)
    ]  # noqa: E501
    ctx.seg = seg
    sd = T.open_segmentation_data(ctx, cfg, 3)
    assert sd.darken and "on the fly" in sd.info["image_kind"]
    a, ma = sd.batch(0)
    b, mb = sd.batch(0)
    torch.testing.assert_close(a, b)  # deterministic: resumable
    assert torch.equal(ma, mb) and a.shape == (2, 3, 16, 16) and ma.dtype == torch.int64
    assert float(a.mean()) < 0.3  # darkened
    normal = T.open_segmentation_data(ctx, {**cfg, "segmentation_images": "normal"}, 3)
    assert not normal.darken and float(normal.batch(0)[0].mean()) > 0.3


def test_mask_labels_beyond_the_classes_are_an_error(data):
    ctx = _ctx(data, data / "unused")
    sd = T.open_segmentation_data(ctx, {**DEFAULT_CONFIG, **TINY}, 2)
    with pytest.raises(DatasetError, match="outside SSaN's 2 classes"):
        for step in range(4):
            sd.batch(step)


# -- errors ------------------------------------------------------------------------------------------
def test_missing_segmentation_data_names_the_alternative(data, tmp_path):
    m = _method(segmentation_dataset="fake-seg")
    ctx = _ctx(data, tmp_path / "w")
    ctx.seg = None
    with pytest.raises(DatasetError, match='segmentation_dataset = "scenes"'):
        m.fit(ctx)


def test_voc_dark_absent_names_the_alternative(home, data, tmp_path):
    m = _method(segmentation_dataset="voc-dark", num_classes=21)
    samples = [Sample(f"{i}", data / f"low{i}.png", data / f"high{i}.png") for i in range(3)]
    ctx = TrainContext(
        dataset=None, samples=samples, workdir=tmp_path / "w", seed=0, device=torch.device("cpu"),
        home=home, data_root=home / "data",
    )  # fmt: skip
    with pytest.raises(DatasetError, match=r"voc-dark.*segmentation_dataset = \"scenes\""):
        m.fit(ctx)


def test_missing_vgg_weights_stop_with_where_to_put_them(data, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    m = _method(vgg={"if_missing": "stop"})
    with pytest.raises(WeightsError, match="vgg16-397923af.pth"):
        m.fit(_ctx(data, tmp_path / "w"))
    dropped = _method(vgg={"if_missing": "drop"})
    logs: list[dict] = []
    dropped.fit(_ctx(data, tmp_path / "d", log=lambda s, v: logs.append(dict(v))))
    assert "lle/perceptual" not in logs[0]
    assert "drop" in dropped.provenance()["perceptual"]["L_p"]


def test_vgg_weights_from_the_cache_are_loaded_and_hashed(data, tmp_path, monkeypatch):
    from llbench.api import VGGFeatures

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(5)
    vgg = VGGFeatures("vgg16", ["relu5_3"])
    torch.save(
        {f"features.{k}": v for k, v in vgg.features.state_dict().items()},
        folder / "vgg16-397923af.pth",
    )
    m = _method(vgg={"if_missing": "stop"}, iterations=1)
    m.fit(_ctx(data, tmp_path / "w"))
    info = m.provenance()["perceptual"]
    assert info["L_p"] == "on" and info["vgg_file"].endswith("vgg16-397923af.pth")
    assert len(info["vgg_sha256"]) == 64


def test_bad_config_values():
    for bad in (
        {"schedule": "x"},
        {"segmentation_images": "x"},
        {"vgg": {"if_missing": "x"}},
        {"patch": 20},
    ):
        with pytest.raises(ConfigError):
            _method(**bad)
    with pytest.raises(ConfigError, match="unknown"):
        _method(grad_targett=1.0)


def test_num_classes_follow_the_segmentation_dataset():
    assert (
        SLLEN({**TINY, "num_classes": 0, "segmentation_dataset": "scenes"}, "cpu").net.num_classes
        == 5
    )
    assert (
        SLLEN({**TINY, "num_classes": 0, "segmentation_dataset": "voc-dark"}, "cpu").net.num_classes
        == 21
    )


# -- ablation configs ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("wo-kd", lambda m: m.config["loss_weights"]["kd"] == 0),
        ("wo-itv", lambda m: m.config["loss_weights"]["itv"] == 0),
        ("wo-grad", lambda m: m.config["loss_weights"]["grad"] == 0),
        ("sllen-1", lambda m: m.net.llemn.hsbab is None and m.net.llemn.rsaeb is not None),
        ("sllen-2", lambda m: m.net.llemn.rsaeb is None and m.net.llemn.hsbab is not None),
        ("sllen-3", lambda m: not m.net.llemn.uses_semantics),
        ("sllen-4", lambda m: m.net.ssan.encoder is not None),
    ],
)
def test_ablation_configs(name, check):
    cfg = load_config_file(ablation_config(name))
    from llbench.config import merge

    m = SLLEN(merge(merge(DEFAULT_CONFIG, TINY), cfg), "cpu")
    assert check(m)
    with pytest.raises(ConfigError, match="sllen-1"):
        ablation_config("sllen-9")


# -- the segmenter plugin ----------------------------------------------------------------------------
def test_segmenter_loads_what_training_wrote(home, data, tmp_path, monkeypatch):
    from llbench.segmenters import build_segmenter

    monkeypatch.delenv("LLBENCH_SLLEN_WEIGHTS", raising=False)
    from llbench.pluginhost.host import get_host

    spec = get_host().segmenter("sllen-ssan")
    assert "no trained SLLEN weights" in spec.available()
    m = _method()
    ctx = _ctx(data, tmp_path / "w")
    m.fit(ctx)
    m.save_weights(home / "weights" / "sllen-fake-0123.pt")
    assert spec.available() is None
    seg = build_segmenter("sllen-ssan", "cpu")
    x = torch.rand(2, 3, 21, 30)
    labels = seg.predict(x)
    assert labels.shape == (2, 21, 30) and seg.classes == ("class_0", "class_1", "class_2")
    with torch.no_grad():
        expected = m.net.segment(x)[0]
        torch.testing.assert_close(seg.logits(x), expected)
        out = seg.segment(x)
    assert [tuple(f.shape[-2:]) for f in out.features] == [
        (2, 2),
        (3, 4),
        (6, 8),
        (11, 15),
        (21, 30),
    ]
    # a training checkpoint named by the environment variable works too
    monkeypatch.setenv("LLBENCH_SLLEN_WEIGHTS", str(ctx.checkpoint_path))
    seg2 = build_segmenter("sllen-ssan", "cpu")
    with torch.no_grad():
        torch.testing.assert_close(seg2.logits(x), expected)
    monkeypatch.setenv("LLBENCH_SLLEN_WEIGHTS", str(tmp_path / "missing.pt"))
    assert "does not exist" in spec.available()


def test_segmenter_refuses_other_weights(tmp_path):
    from llbench.plugins.sllen.segmenter import SSaNSegmenter

    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not a SLLEN state dict"):
        SSaNSegmenter.load(tmp_path / "other.pt")


def test_loading_weights_adapts_the_class_count(tmp_path):
    m5 = _method(num_classes=5)
    m5.save_weights(tmp_path / "w.pt")
    m3 = _method(num_classes=3)
    m3.load_weights(tmp_path / "w.pt")
    assert m3.net.num_classes == 5
    torch.testing.assert_close(
        m3.enhance(torch.ones(1, 3, 16, 16) * 0.1), m5.enhance(torch.ones(1, 3, 16, 16) * 0.1)
    )


def test_voc_dark_trains_ssan_on_the_voc_train_list_darkened_on_the_fly(home, tmp_path):
    from PIL import Image

    voc = home / "data" / "voc-dark" / "VOCdevkit" / "VOC2012"
    lists = voc / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    (voc / "SegmentationClass").mkdir()
    rng = np.random.default_rng(1)
    for i in ("2007_000001", "2007_000002", "2007_000003"):
        Image.fromarray(rng.integers(60, 256, (24, 32, 3), dtype=np.uint8)).save(
            voc / "JPEGImages" / f"{i}.jpg"
        )
        mask = rng.integers(0, 21, (24, 32)).astype(np.uint8)
        mask[:, 0] = 255
        Image.fromarray(mask, mode="L").save(voc / "SegmentationClass" / f"{i}.png")
    (lists / "train.txt").write_text("2007_000001\n2007_000002\n")
    (lists / "val.txt").write_text("2007_000003\n")
    ctx = TrainContext(
        dataset=None, samples=[], workdir=tmp_path / "w", seed=0, device=torch.device("cpu"),
        home=home, data_root=home / "data",
    )  # fmt: skip
    cfg = {**DEFAULT_CONFIG, **TINY, "segmentation_dataset": "voc-dark", "num_classes": 21}
    sd = T.open_segmentation_data(ctx, cfg, 21)
    assert sd.info["dataset"] == "voc-dark" and sd.info["split"] == "train"
    assert sd.info["images"] == 2 and sd.darken and "on the fly" in sd.info["image_kind"]
    images, masks = sd.batch(0)
    assert images.shape == (2, 3, 16, 16) and float(images.mean()) < 0.25
    assert set(masks.unique().tolist()) <= set(range(21)) | {255}
