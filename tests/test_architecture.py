"""The structure plugins and later features build on: the plugin API package, the kinds table,
hooks that receive the home explicitly, plugin commands, training phases, decoder sites, VGG
backbones and reference rows in the store."""

from __future__ import annotations

import subprocess
import sys
import warnings

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from llbench.api import (
    DecoderSite,
    MethodSpec,
    Patches,
    Phase,
    TrainableMethod,
    TrainContext,
    VGGFeatures,
    backbone_file,
    hookimpl,
    paired_items,
    run_phases,
    transform_site,
)
from llbench.api import hookspecs as hookspec_module
from llbench.errors import ConfigError, WeightsError
from llbench.pluginhost import KINDS, PluginHost, get_host
from llbench.store import DATASET_ROW, REFERENCES, Store


# -- the plugin API package ------------------------------------------------------------------------
def test_plugin_api_imports_without_torch():
    code = (
        "import sys, llbench.api as a; from llbench.api import MethodSpec, hookimpl; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_old_module_paths_still_load_with_a_deprecation_warning():
    for old in ("hookspecs", "specs", "methods", "datasets_api", "metrics_api"):
        sys.modules.pop(f"llbench.{old}", None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = __import__(f"llbench.{old}", fromlist=["x"])
        assert any(issubclass(w.category, DeprecationWarning) for w in caught), old
        assert module.__name__ == f"llbench.{old}"
    from llbench.api import Method
    from llbench.methods import Method as OldMethod
    from llbench.specs import MethodSpec as OldSpec

    assert OldMethod is Method and OldSpec is MethodSpec


# -- one table of kinds --------------------------------------------------------------------------
def test_every_kind_has_a_hook_a_registry_and_a_cli_choice():
    from llbench.cli.listing import list_cmd

    choices = next(p for p in list_cmd.params if p.name == "kind").type.choices
    host = PluginHost()
    for name, kind in KINDS.items():
        assert hasattr(hookspec_module, kind.hook), kind.hook
        assert host.registries[name].spec_type is kind.spec
        assert kind.plural in choices
    assert {"executor", "annotator"} <= set(KINDS)


class _HomeAwarePlugin:
    seen: dict = {}

    @hookimpl
    def register_methods(self, register, home, data_root):
        self.seen["home"], self.seen["data_root"] = home, data_root

    @hookimpl
    def register_commands(self, cli):
        @cli.command("hello-plugin")
        @click.argument("name")
        def hello(name):
            click.echo(f"hello {name} from a plugin")


def test_hooks_receive_the_cli_home_and_plugins_add_commands(home, tmp_path):
    from llbench.cli.main import cli

    plugin = _HomeAwarePlugin()
    other = tmp_path / "elsewhere"
    get_host().register(plugin, name="home-aware")
    try:
        args = ["--home", str(other), "--data-root", str(other / "d"), "hello-plugin", "you"]
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 0, r.output
        assert "hello you from a plugin" in r.output
        get_host().registry("method")
        assert plugin.seen["home"] == other.resolve()
        assert plugin.seen["data_root"] == (other / "d").resolve()
    finally:
        get_host().unregister("home-aware")


def test_list_names_new_kinds(home):
    from llbench.cli.main import cli

    r = CliRunner().invoke(cli, ["list", "annotators", "--json"])
    assert r.exit_code == 0, r.output


# -- training phases -----------------------------------------------------------------------------
def _pairs(tmp_path, n=3):
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        a = (rng.random((36, 44, 3)) * 255).astype("uint8")
        Image.fromarray(a).save(tmp_path / f"l{i}.png")
        Image.fromarray(255 - a).save(tmp_path / f"h{i}.png")
        items.append((tmp_path / f"l{i}.png", tmp_path / f"h{i}.png"))
    return items


def test_patches_are_aligned_deterministic_and_augmented(tmp_path):
    items = _pairs(tmp_path)
    a = Patches(items, patch=32, batch_size=2, seed=3)
    b = Patches(items, patch=32, batch_size=2, seed=3)
    for step in range(4):
        low, high = a.batch(step)
        assert low.shape == (len(a.indices(step)), 3, 32, 32)
        assert torch.equal(low, b.batch(step)[0])
        # the same crop, flip and rotation on both files: high = 255 - low exactly
        assert torch.allclose(high, 1 - low, atol=1e-6)
    assert not torch.equal(
        a.batch(0)[0], Patches(items, patch=32, batch_size=2, seed=4).batch(0)[0]
    )
    assert sorted(a.indices(0) + a.indices(1)) == [0, 1, 2]  # an epoch visits each item once


def _phased(tmp_path, fail_at=None):
    torch.manual_seed(0)
    items = _pairs(tmp_path)
    data = Patches(items, patch=16, batch_size=2, seed=0)
    a, b = torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Conv2d(3, 3, 1)
    calls = {"n": 0}

    def loss_a(step, batch):
        out = a(batch[0])
        return out, {"l1": (out - batch[1]).abs().mean()}

    def loss_b(step, batch):
        calls["n"] += 1
        if fail_at is not None and calls["n"] == fail_at:
            raise KeyboardInterrupt
        out = b(a(batch[0]))
        return out, {"l2": ((out - batch[1]) ** 2).mean()}

    def adam(params):
        return torch.optim.Adam(params, 1e-2)

    phases = [
        Phase("first", 4, data.batch, loss_a, [a], adam),
        Phase("second", 5, data.batch, loss_b, [b], adam),
    ]
    return phases, {"a": a, "b": b}


def test_run_phases_resumes_mid_phase_to_the_same_weights(tmp_path):
    def ctx(workdir, logs):
        return TrainContext(
            dataset=None,
            samples=[],
            workdir=workdir,
            seed=0,
            device=torch.device("cpu"),
            log=lambda step, values: logs.append((step, values)),
        )

    phases, mods = _phased(tmp_path)
    logs: list = []
    run_phases(ctx(tmp_path / "w1", logs), "m", phases, mods, device=torch.device("cpu"))
    assert [s for s, _ in logs] == list(range(1, 10))
    assert set(logs[0][1]) == {"first/loss", "first/l1"}
    assert set(logs[-1][1]) == {"second/loss", "second/l2"}
    reference = {k: v.clone() for k, v in mods["b"].state_dict().items()}

    phases, mods = _phased(tmp_path, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_phases(
            ctx(tmp_path / "w2", []), "m", phases, mods, device=torch.device("cpu"),
            checkpoint_every=2,
        )  # fmt: skip
    phases, mods = _phased(tmp_path)
    logs = []
    summary = run_phases(
        ctx(tmp_path / "w2", logs), "m", phases, mods, device=torch.device("cpu"),
        checkpoint_every=2,
    )  # fmt: skip
    assert summary["resumed_from_step"] == 6  # phase 2, step 2 was the last checkpoint
    assert logs[0][0] == 7
    for k, v in mods["b"].state_dict().items():
        assert torch.allclose(v, reference[k], atol=1e-6), k
    with pytest.raises(ConfigError, match="checkpoint of 'm'"):
        run_phases(ctx(tmp_path / "w2", []), "other", phases, mods, device=torch.device("cpu"))


# -- decoder sites -------------------------------------------------------------------------------
class _ThirdParty(TrainableMethod):
    def __init__(self, config, device):
        super().__init__(config, device)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 3, 3, padding=1)
        )

    def enhance(self, low):
        return self.net(low)

    def training_phases(self, ctx):
        data = Patches(paired_items(ctx.samples), patch=8, batch_size=1, seed=ctx.seed)

        def loss(step, batch):
            out = self.net(batch[0])
            return out, {"l1": (out - batch[1]).abs().mean()}

        adam = lambda ps: torch.optim.Adam(ps, 1e-3)  # noqa: E731
        return [Phase("main", 2, data.batch, loss, [self.net], adam)]

    def fit(self, ctx):
        run_phases(ctx, "third-party", self.training_phases(ctx), {"net": self.net},
                   device=self.device)  # fmt: skip

    def decoder_sites(self):
        return (DecoderSite("mid", "0", channels=8, stride=1),)


def test_a_third_party_method_trains_through_its_phases(tmp_path):
    from llbench.api import Sample

    samples = [Sample(f"s{i}", low, high) for i, (low, high) in enumerate(_pairs(tmp_path))]
    m = _ThirdParty({}, "cpu")
    before = m.net[0].weight.detach().clone()
    logs: list = []
    ctx = TrainContext(
        dataset=None, samples=samples, workdir=tmp_path / "w", seed=0,
        device=torch.device("cpu"), log=lambda step, values: logs.append(step),
    )  # fmt: skip
    m.fit(ctx)
    assert logs == [1, 2] and not torch.equal(m.net[0].weight, before)


def test_transform_site_replaces_a_feature_and_is_removable():
    m = _ThirdParty({}, "cpu")
    x = torch.rand(1, 3, 8, 8)
    plain = m.enhance(x)
    handle = transform_site(m, "mid", lambda f: torch.zeros_like(f))
    assert torch.allclose(m.enhance(x), m.net[1](torch.zeros(1, 8, 8, 8)))
    handle.remove()
    assert torch.equal(m.enhance(x), plain)
    with pytest.raises(ConfigError, match="its sites: mid"):
        transform_site(m, "nope", lambda f: f)
    handle = transform_site(m, "mid", lambda f: f[:, :4])
    with pytest.raises(ConfigError, match="changed its shape"):
        m.enhance(x)
    handle.remove()


# -- backbones -----------------------------------------------------------------------------------
def test_vgg_features_load_a_torchvision_layout_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsError, match="vgg16-397923af.pth"):
        backbone_file("vgg16")
    assert backbone_file("vgg16", if_missing="drop") is None
    full = VGGFeatures("vgg16", ["relu5_3"])
    state = {f"features.{k}": torch.randn_like(v) for k, v in full.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)
    path = tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    assert backbone_file("vgg16") == path
    vgg = VGGFeatures("vgg16", ["relu1_1", "relu5_1"], weights=path)
    assert torch.equal(vgg.features[0].weight, state["features.0.weight"])
    out = vgg(torch.rand(1, 3, 32, 32))
    assert out["relu1_1"].shape == (1, 64, 32, 32) and out["relu5_1"].shape == (1, 512, 2, 2)
    assert not any(p.requires_grad for p in vgg.parameters())
    with pytest.raises(ConfigError, match="no layer"):
        VGGFeatures("vgg16", ["relu9_9"])


# -- reference rows ------------------------------------------------------------------------------
def test_reference_rows_are_their_own_records_and_old_ones_migrate(home):
    from llbench.store.frames import results

    store = Store(home)
    store.record_reference(
        "ref-in", "input", {"miou": 0.2}, dataset="scenes", split="test", n_images=3
    )
    # a database written before reference rows had a table of their own
    store.start_run("old", method=REFERENCES["reference"], dataset="scenes", split="test")
    store.record_scores("old", DATASET_ROW, {"miou": 0.9})
    store.finish_run("old", "finished")
    migrated = Store(home)
    assert migrated.get_run("old") is None and migrated.get_reference("old")["which"] == "reference"
    frame = results(home=home)
    values = dict(zip(frame["method"], frame["value"], strict=True))
    assert values == {"(dark input)": pytest.approx(0.2), "(normal light)": pytest.approx(0.9)}
    with pytest.raises(ValueError, match="unknown reference"):
        store.record_reference("x", "bogus", {})


def test_method_spec_build_is_unchanged_for_plugins():
    spec = MethodSpec(name="third-party", build=lambda c, d: _ThirdParty(c, d), summary="s")
    assert isinstance(spec.build({}, torch.device("cpu")), TrainableMethod)
