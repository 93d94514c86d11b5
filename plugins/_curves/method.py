"""The method class shared by Zero-DCE, Zero-DCE++ and SGZ: inference and the training loop.

Training follows the official scripts (``lowlight_train.py`` / ``train.py``): Adam with weight
decay, a fixed learning rate, gradient-norm clipping, shuffled batches of resized low-light
images, the weighted sum of the method's non-reference losses. The loop is step-based so that
it resumes exactly: every ``checkpoint_every`` steps (and at the end) it saves the network,
the optimizer and the step through ``ctx.save_checkpoint``; batches depend only on the seed and
the step, so a resumed run produces the same weights as an uninterrupted one.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from typing import Any

import torch

from llbench.api import TrainableMethod, TrainContext
from llbench.config import merge
from llbench.errors import ConfigError, MethodOutputError

from . import losses
from .data import TrainImages
from .nets import CurveNet, init_weights


class CurveMethod(TrainableMethod):
    """Base class: a :class:`CurveNet` trained with zero-reference losses.

    Subclasses set ``name`` and ``defaults`` and implement :meth:`build_net` and
    :meth:`loss_terms`; SGZ also overrides :meth:`prepare_training`.
    """

    name: str = ""
    defaults: Mapping[str, Any] = {}
    net: CurveNet

    def __init__(self, config: Mapping[str, Any], device: torch.device | str):
        # The harness passes the effective config; direct Python callers may pass a partial one,
        # completed (and checked for unknown keys) by the one merge of llbench.config.
        super().__init__(merge(self.defaults, config), device)
        self.net = self.build_net()
        init_weights(
            self.net,
            str(self.config.get("init", "default")),
            float(self.config.get("init_std", 0.02)),
        )
        self.net.to(self.device).eval()
        self.test_scale_factor = self._scale("test_scale_factor")
        self.train_scale_factor = self._scale("train_scale_factor")
        self.net.scale_factor = self.test_scale_factor
        self.training_info: dict[str, Any] = {}

    # -- to implement ------------------------------------------------------------------------
    @abc.abstractmethod
    def build_net(self) -> CurveNet:
        """The curve-estimation network of the paper, with the official layer names."""

    def loss_terms(
        self, low: torch.Tensor, enhanced: torch.Tensor, maps: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Weighted loss terms (name -> scalar) whose sum is minimized.

        The default is Zero-DCE's objective (Eq. 8) as its official training scripts weight
        it: ``W_tv * L_tvA + L_spa + W_col * L_col + W_exp * L_exp`` with ``loss_weights``
        ``tv`` (200 for Zero-DCE, 1600 for Zero-DCE++), ``spa`` (1), ``col`` (5), ``exp`` (10).
        A weight of 0 drops a term.
        """
        w = self.config["loss_weights"]
        terms: dict[str, torch.Tensor] = {}
        if w.get("spa", 0):
            terms["spa"] = w["spa"] * losses.spatial_consistency(
                low, enhanced, patch=int(self.config.get("spatial_patch", 4))
            )
        if w.get("exp", 0):
            terms["exp"] = w["exp"] * losses.exposure_control(
                enhanced, norm=str(self.config.get("exposure_norm", "l2")), **self.exposure_kwargs()
            )
        if w.get("col", 0):
            terms["col"] = w["col"] * losses.color_constancy(enhanced)
        if w.get("tv", 0):
            terms["tv"] = w["tv"] * losses.illumination_smoothness(maps)
        if not terms:
            raise ConfigError(f"{self.name}: every loss weight is 0; nothing to train")
        return terms

    def prepare_training(self, ctx: TrainContext) -> None:
        """Build what training alone needs (SGZ: the segmentation network)."""

    # -- inference ---------------------------------------------------------------------------
    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        self.net.scale_factor = self.test_scale_factor
        out, _ = self.net(low.to(self.device, torch.float32))
        return out.clamp(0.0, 1.0)

    def provenance(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "curve_iterations": self.net.iterations,
            "test_scale_factor": self.test_scale_factor,
        }
        if self.training_info:
            info["training"] = dict(self.training_info)
        return info

    # -- training ----------------------------------------------------------------------------
    def fit(self, ctx: TrainContext) -> None:
        cfg = self.config
        data = TrainImages(
            [s.low for s in ctx.samples],
            size=int(cfg.get("train_size", 0)),
            crop=int(cfg.get("train_crop", 0)),
            batch_size=int(cfg["batch_size"]),
            seed=ctx.seed,
            cache_mb=float(cfg.get("cache_mb", 512)),
        )
        total = int(cfg["num_epochs"]) * data.steps_per_epoch
        if int(cfg.get("max_steps", 0)) > 0:
            total = min(total, int(cfg["max_steps"]))
        every = max(1, int(cfg.get("checkpoint_every", 100)))
        clip = float(cfg.get("grad_clip_norm", 0.0))
        optimizer = torch.optim.Adam(
            self.net.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"])
        )
        step = 0
        state = ctx.load_checkpoint()
        if state is not None:
            if state.get("method") != self.name:
                raise ConfigError(
                    f"{ctx.checkpoint_path} is a checkpoint of {state.get('method')!r}, "
                    f"not {self.name!r}; delete it to start over"
                )
            self.load_state_dict(state["net"])
            optimizer.load_state_dict(state["optimizer"])
            step = int(state["step"])
        resumed_from = step
        self.prepare_training(ctx)

        def save() -> None:
            ctx.save_checkpoint(
                {
                    "method": self.name,
                    "step": step,
                    "total_steps": total,
                    "net": self.net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                }
            )

        started = time.perf_counter()
        self.net.train()
        self.net.scale_factor = self.train_scale_factor
        try:
            while step < total:
                low = data.batch(step).to(self.device)
                enhanced, maps = self.net(low)
                terms = self.loss_terms(low, enhanced, maps)
                loss = torch.stack(list(terms.values())).sum()
                if not torch.isfinite(loss):
                    raise MethodOutputError(
                        f"{self.name}: training loss became {loss.item()} at step {step + 1}; "
                        "lower lr or check the training images"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.net.parameters(), clip)
                optimizer.step()
                step += 1
                values = {"loss": float(loss.detach())}
                values.update({k: float(v.detach()) for k, v in terms.items()})
                ctx.log(step, values)
                ctx.progress(step, total)
                if step % every == 0 or step == total:
                    save()
        finally:
            self.net.eval()
            self.net.scale_factor = self.test_scale_factor
        self.training_info.update(
            {
                "steps": total,
                "resumed_from_step": resumed_from,
                "steps_per_epoch": data.steps_per_epoch,
                "images": len(data.files),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )

    # -- helpers -----------------------------------------------------------------------------
    def _scale(self, key: str) -> int:
        value = int(self.config.get(key, 1))
        if value < 1:
            raise ConfigError(f"{self.name}: {key} must be an integer >= 1, got {value}")
        return value

    def exposure_kwargs(self) -> dict[str, Any]:
        return {
            "level": float(self.config.get("exposure_level", 0.6)),
            "patch": int(self.config.get("exposure_patch", 16)),
        }
