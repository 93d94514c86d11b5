"""DRBN as an llbench method: inference, the phased training of the authors' code, decoder sites."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from llbench.api import (
    DecoderSite,
    Patches,
    Phase,
    TrainableMethod,
    TrainContext,
    count_parameters,
    paired_items,
)
from llbench.api.training import epochs_to_steps
from llbench.config import merge
from llbench.errors import ConfigError

from . import DEFAULT_CONFIG
from .losses import drbn_loss_terms
from .model import DRBN

MULTIPLE = 4  # two stride-2 convolutions and their transposes: sizes must divide by 4


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> tuple[torch.Tensor, int, int]:
    """Pad ``x`` at the bottom/right to a multiple of ``multiple`` (reflection where it fits)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


class DRBNMethod(TrainableMethod):
    """Deep recursive band network, stage 1 (see the package docstring)."""

    name = "drbn"

    def __init__(self, config: Mapping[str, Any], device: torch.device | str):
        super().__init__(merge(DEFAULT_CONFIG, config), device)
        cfg = self.config
        for key in ("G0", "G", "C", "recurrences"):
            if int(cfg[key]) < 1:
                raise ConfigError(f"drbn: {key} must be a positive integer, got {cfg[key]!r}")
        self.net = DRBN(int(cfg["G0"]), int(cfg["G"]), int(cfg["C"]), int(cfg["recurrences"]))
        self.net.to(self.device).eval()
        self.training_info: dict[str, Any] = {}

    # -- inference ---------------------------------------------------------------------------
    def forward(self, low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three band estimates of ``low`` (sizes must divide by 4; see :meth:`enhance`)."""
        return self.net(low)

    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        x, h, w = pad_to_multiple(low.to(self.device, torch.float32))
        out = self.net(x)[0]
        return out[..., :h, :w].clamp(0.0, 1.0)

    # -- the public hooks frameworks use ---------------------------------------------------------
    def decoder_sites(self) -> tuple[DecoderSite, ...]:
        """The last recurrence's decoder features after the recursive additions, where the SKF
        authors' DRBN-SKF inserts its three SE modules: 1/4 (``2 G0`` channels), 1/2 and full
        resolution (``G0`` each)."""
        g0, last = int(self.config["G0"]), f"recur{int(self.config['recurrences'])}"
        return (
            DecoderSite("s4", f"{last}.site_s4", channels=2 * g0, stride=4),
            DecoderSite("s2", f"{last}.site_s2", channels=g0, stride=2),
            DecoderSite("s1", f"{last}.site_s1", channels=g0, stride=1),
        )

    def training_phases(self, ctx: TrainContext) -> list[Phase]:
        """One phase: Adam, ``-SSIM`` at three scales, step decay (``DRBL-stage1`` code)."""
        cfg = self.config
        patch = int(cfg["patch_size"])
        if patch <= 0 or patch % MULTIPLE:
            raise ConfigError(f"drbn: patch_size must be a positive multiple of 4, got {patch}")
        data = Patches(
            paired_items(ctx.samples),
            patch=patch,
            batch_size=int(cfg["batch_size"]),
            seed=ctx.seed,
            augment=bool(cfg["augment"]),
            cache_mb=float(cfg["cache_mb"]),
        )
        per_epoch = data.steps_per_epoch
        steps = epochs_to_steps(float(cfg["epochs"]), per_epoch, int(cfg["max_steps"]))
        decay = max(1, int(round(float(cfg["lr_decay_epochs"]) * per_epoch)))
        if int(cfg["lr_decay_steps"]) > 0:
            decay = int(cfg["lr_decay_steps"])
        self.training_info = {
            "steps_per_epoch": per_epoch,
            "pairs": len(data),
            "lr_decay_every": decay,
        }

        def loss(step: int, batch: tuple[torch.Tensor, ...]):
            low, high = batch[0], batch[1]
            outputs = self.net(low)
            return outputs[0], drbn_loss_terms(outputs, high)

        return [
            Phase(
                name="drbn",
                steps=steps,
                batches=data.batch,
                loss=loss,
                modules=[self.net],
                make_optimizer=lambda params: torch.optim.Adam(
                    params,
                    lr=float(cfg["lr"]),
                    betas=tuple(float(b) for b in cfg["betas"]),
                    eps=float(cfg["eps"]),
                    weight_decay=float(cfg["weight_decay"]),
                ),
                make_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(
                    opt, step_size=decay, gamma=float(cfg["gamma"])
                ),
            )
        ]

    def fit(self, ctx: TrainContext) -> None:
        summary = self.fit_phases(ctx, self.name)  # training_phases() resets training_info
        self.training_info.update(summary)

    def provenance(self) -> dict[str, Any]:
        params = count_parameters(self.net)
        info: dict[str, Any] = {
            "width": {"G0": self.config["G0"], "G": self.config["G"]},
            "parameters": params,
        }
        if self.training_info:
            info["training"] = dict(self.training_info)
        return info
