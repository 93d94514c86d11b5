"""Plugins used by the tests: well-behaved and misbehaving methods, a tiny dataset, a metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from llbench.api.datasets import Dataset, image_files, pair_by_stem
from llbench.api.hookspecs import hookimpl
from llbench.api.methods import Method, TrainableMethod, TrainContext
from llbench.api.metrics import Metric
from llbench.api.specs import DatasetSpec, MethodSpec, MetricSpec
from llbench.io.images import write_png


class Brighten(Method):
    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        return low.clamp(0, 1) ** self.config["gamma"]


class NaNOnSecond(Method):
    """Returns NaN for images whose mean is above a threshold (to fail some items only)."""

    def enhance(self, low):
        out = low.clone()
        if float(low.mean()) > self.config["threshold"]:
            out[..., 0, 0] = float("nan")
        return out


class WrongShape(Method):
    def enhance(self, low):
        return low[..., :-1, :]


class Scale(TrainableMethod):
    """Learns one gain so the mean of the output hits 0.5 (a real, tiny training loop)."""

    def __init__(self, config, device):
        super().__init__(config, device)
        self.net = torch.nn.Linear(1, 1, bias=False).to(self.device)
        torch.nn.init.ones_(self.net.weight)
        self.steps_run = 0

    def enhance(self, low):
        return (low * self.net.weight.reshape(())).clamp(0, 1)

    def fit(self, ctx: TrainContext) -> None:
        from llbench.io.images import read_image, to_tensor

        opt = torch.optim.SGD(self.net.parameters(), lr=self.config["lr"])
        start = 0
        ck = ctx.load_checkpoint()
        if ck is not None:
            self.net.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
            start = ck["step"]
        imgs = [to_tensor(read_image(s.low)) for s in ctx.samples]
        total = self.config["steps"]
        for step in range(start, total):
            x = imgs[step % len(imgs)].to(self.device)
            loss = (self.enhance_train(x).mean() - 0.5) ** 2
            opt.zero_grad()
            loss.backward()
            opt.step()
            self.steps_run += 1
            ctx.log(step, {"loss": float(loss.detach())})
            ctx.progress(step + 1, total)
            ctx.save_checkpoint(
                {"model": self.net.state_dict(), "opt": opt.state_dict(), "step": step + 1}
            )
            if self.config.get("crash_at") == step + 1:
                raise KeyboardInterrupt

    def enhance_train(self, x):
        return x * self.net.weight.reshape(())


class MeanMetric(Metric):
    def __call__(self, pred, ref=None, low=None):
        return pred.mean(dim=(1, 2, 3))


class PeakMetric(Metric):
    def __call__(self, pred, ref=None, low=None):
        return pred.amax(dim=(1, 2, 3))


class TinyPairs(Dataset):
    """Folder dataset ``<root>/{train,test}/{low,high}`` written by :func:`make_tiny_dataset`."""

    name = "tiny"
    splits = ("train", "test")

    def samples(self, split):
        d = self.root / split
        return pair_by_stem(image_files(d / "low"), image_files(d / "high"), where=str(d))


def make_tiny_dataset(root: Path, n_test: int = 4, n_train: int = 3, size=(24, 32)) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            high = rng.integers(60, 255, (*size, 3), dtype=np.uint8)
            low = (high * (0.1 + 0.05 * i)).astype(np.uint8)
            write_png(root / split / "high" / f"img{i}.png", high)
            write_png(root / split / "low" / f"img{i}.png", low)
    return root


class TestPlugin:
    @hookimpl
    def register_methods(register):
        register(
            MethodSpec(
                "brighten",
                lambda c, d: Brighten(c, d),
                "gamma 0.5 for tests",
                default_config={"gamma": 0.5},
            )
        )
        register(
            MethodSpec(
                "nan-method",
                lambda c, d: NaNOnSecond(c, d),
                "returns NaN",
                default_config={"threshold": 0.14},
            )
        )
        register(MethodSpec("wrong-shape", lambda c, d: WrongShape(c, d), "drops a row"))
        register(
            MethodSpec(
                "scale",
                lambda c, d: Scale(c, d),
                "learns a gain",
                trains=True,
                supervision="zero-reference",
                default_config={"lr": 0.5, "steps": 6, "crash_at": 0},
                presets={"quick": {"steps": 2}},
            )
        )

    @hookimpl
    def register_datasets(register):
        register(
            DatasetSpec(
                "tiny", lambda root: TinyPairs(Path(root) / "tiny"), "tiny pairs", paired=True
            )
        )

    @hookimpl
    def register_metrics(register):
        register(
            MetricSpec(
                "mean",
                lambda d, o: MeanMetric(d, o),
                "mean level",
                "no-reference",
                True,
                "mean of all pixel values in [0, 1]",
                score_range=(0, 1),
            )
        )
        register(
            MetricSpec(
                "peak",
                lambda d, o: PeakMetric(d, o),
                "max level",
                "no-reference",
                True,
                "largest pixel value in [0, 1]",
                default=False,
            )
        )


def tiny_host(home: Path, monkeypatch, plugins: str = "core-metrics"):
    """The plugin host with only ``plugins`` (and the test plugin) loaded and the ``tiny``
    dataset written under ``<home>/data``."""
    from llbench.pluginhost.host import get_host

    monkeypatch.setenv("LLBENCH_PLUGINS", plugins)
    host = get_host()
    host.register(TestPlugin, "tests")
    make_tiny_dataset(home / "data" / "tiny")
    return host


def run_tiny(host, home: Path, method: str = "brighten", **kw):
    """``llbench.run`` of ``method`` on ``tiny``, scored with ``mean`` unless told otherwise."""
    import llbench

    kw.setdefault("metrics", ["mean"])
    return llbench.run(method, "tiny", home=home, progress=False, host=host, **kw)
