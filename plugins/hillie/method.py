"""The ``hillie`` method: any trainable llbench method (the base) trained by HiLLIE's loop.

The base is built through the plugin host (``base``, ``base_preset``, ``base_config``), so a
third party's method works as well as a built-in one, provided its ``enhance`` is
differentiable. The weights ``hillie`` saves are the base's own state dict of f(N): they load
into the base method directly (``llbench run --method zero-dce++ --weights <file>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from llbench.api import TrainableMethod, TrainContext
from llbench.config import effective_config, merge
from llbench.errors import ConfigError

from . import BUILTIN_ANNOTATORS, DEFAULT_CONFIG


class HiLLIE(TrainableMethod):
    """HiLLIE around a base method (see :mod:`llbench.plugins.hillie`)."""

    def __init__(self, config: Mapping[str, Any], device: torch.device | str):
        super().__init__(merge(DEFAULT_CONFIG, config), device)
        from llbench.pluginhost.host import get_host

        host = get_host()
        name = str(self.config["base"])
        if name == "hillie":
            raise ConfigError("hillie: the base cannot be hillie itself")
        spec = host.method(name)
        if not spec.trains:
            raise ConfigError(f"hillie: base {name!r} does not train; choose a trainable method")
        self.base_config = effective_config(
            spec.default_config,
            spec.presets,
            str(self.config["base_preset"] or "") or None,
            self.config["base_config"] or {},
        )
        self.base = spec.build(self.base_config, self.device)
        if not isinstance(self.base, TrainableMethod):
            raise ConfigError(f"hillie: base {name!r} is not a TrainableMethod")
        self.base_spec = spec
        aname = str(self.config["annotator"])
        self.annotator_spec = host.registry("annotator").get(aname)
        missing = self.annotator_spec.available()
        if missing:
            raise ConfigError(f"hillie: annotator {aname!r} is unavailable: {missing}")
        if aname in BUILTIN_ANNOTATORS:
            self.annotator_options = dict(self.config[aname])
        else:
            self.annotator_options = dict(self.config["annotator_options"] or {})
        self.annotator = self.annotator_spec.build(self.annotator_options)
        self._content: Any = None
        self._content_built = False
        self.vgg_info: dict[str, Any] = {}
        self.training_info: dict[str, Any] = {}

    # -- the base is the method ------------------------------------------------------------
    @property
    def net(self) -> torch.nn.Module:  # type: ignore[override]
        return self.base.net

    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        return self.base.enhance(low)

    def modules(self) -> list[torch.nn.Module]:
        return self.base.modules()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.base.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.base.load_state_dict(state)

    # -- training --------------------------------------------------------------------------
    def content_loss(self) -> Any:
        """l_con's VGG-16 (built once); None when the config dropped it for a missing file."""
        if self._content_built:
            return self._content
        from llbench.api.backbones import backbone_file

        from .finetune import ContentLoss

        choice = str(self.config["vgg_if_missing"])
        path = backbone_file("vgg16", str(self.config["vgg_file"]) or None, choice)
        if path is None and choice == "drop":
            self._content = None
            self.vgg_info = {"vgg16": "missing", "if_missing": "drop", "l_con": "dropped"}
        else:
            self._content = ContentLoss(path, pool4=bool(self.config["vgg_pool4"])).to(self.device)
            self.vgg_info = {
                "vgg16": str(path) if path else "missing",
                "if_missing": choice,
                "l_con": "imagenet features" if path else "random features",
            }
        self._content_built = True
        return self._content

    def fit(self, ctx: TrainContext) -> None:
        from .loop import Loop, collect_stages

        Loop(self, ctx).run()
        self.training_info = {"workdir": str(ctx.workdir), **collect_stages(ctx.workdir)}

    def provenance(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "base": self.base_spec.name,
            "base_config": self.base_config,
            "base_provenance": self.base.provenance(),
            "annotator": self.annotator_spec.name,
            "human": self.annotator_spec.human,
            "leaks_supervision": self.annotator_spec.leaks_supervision,
            "annotator_provenance": self.annotator.provenance(),
        }
        if self.vgg_info:
            info["content_loss"] = dict(self.vgg_info)
        if self.training_info:
            info["training"] = dict(self.training_info)
        return info
