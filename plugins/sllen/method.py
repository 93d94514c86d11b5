"""SLLEN's method class: inference with the whole network, training by Algorithm 1."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from llbench.api import TrainableMethod, TrainContext, backbone_file, paired_items
from llbench.config import merge
from llbench.errors import ConfigError, WeightsError

from . import DEFAULT_CONFIG, IF_MISSING, SCHEDULES, SEGMENTATION_IMAGES, losses
from .model import SLLENNet
from .training import LLEObjective, dataset_classes, open_segmentation_data, train


def resolve_num_classes(cfg: Mapping[str, Any]) -> int:
    """``num_classes`` when set (> 0), else the class count of ``segmentation_dataset``."""
    n = int(cfg["num_classes"])
    if n > 0:
        return n
    classes = dataset_classes(str(cfg["segmentation_dataset"]))
    if not classes:
        raise ConfigError(
            f"sllen: the classes of segmentation dataset {cfg['segmentation_dataset']!r} are "
            "unknown (it has no `classes`); set num_classes in the config"
        )
    return len(classes)


class SLLEN(TrainableMethod):
    """Semantic-aware low-light image enhancement network (see the package docstring)."""

    net: SLLENNet

    def __init__(self, config: Mapping[str, Any], device: torch.device | str):
        super().__init__(merge(DEFAULT_CONFIG, config), device)
        cfg = self.config
        _check(cfg)
        self.num_classes = resolve_num_classes(cfg)
        self.net = self._build(self.num_classes)
        self.training_info: dict[str, Any] = {}

    def _build(self, num_classes: int) -> SLLENNet:
        cfg = self.config
        net = SLLENNet(
            width=int(cfg["width"]),
            num_classes=num_classes,
            attention_dim=int(cfg["attention_dim"]),
            attention_chunk=int(cfg["attention_chunk"]),
            hsbab=bool(cfg["blocks"]["hsbab"]),
            rsaeb=bool(cfg["blocks"]["rsaeb"]),
            shared_encoder=cfg["schedule"] == "alternating",
        )
        net.semantic_gradient = bool(cfg["semantic_gradient"])
        return net.to(self.device).eval()

    # -- inference -------------------------------------------------------------------------------
    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        with torch.no_grad():
            return self.net(low.to(self.device, torch.float32)).enhanced.clamp(0.0, 1.0)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load SLLEN weights; SSaN's class count follows the file (a model trained on
        ``scenes`` has 5 classes, on VOC 21) whatever ``segmentation_dataset`` says."""
        head = state.get("ssan.head.weight")
        if head is not None and int(head.shape[0]) != self.net.num_classes:
            self.num_classes = int(head.shape[0])
            self.net = self._build(self.num_classes)
        super().load_state_dict(state)

    def provenance(self) -> dict[str, Any]:
        cfg = self.config
        info: dict[str, Any] = {
            "architecture": {
                "width": int(cfg["width"]),
                "ssan_classes": self.net.num_classes,
                "hsbab": bool(cfg["blocks"]["hsbab"]),
                "rsaeb": bool(cfg["blocks"]["rsaeb"]),
                "shared_encoder": self.net.shared_encoder,
                "attention_dim": int(cfg["attention_dim"]),
            },
            "loss_weights": dict(cfg["loss_weights"]),
        }
        g = float(self.net.grad_target)
        if self.training_info:
            info.update(self.training_info)
        else:
            info["grad_target"] = {
                "G": None if math.isnan(g) else g,
                "source": "the loaded weights" if not math.isnan(g) else "not trained here",
            }
            info["perceptual"] = {"vgg.if_missing": cfg["vgg"]["if_missing"]}
        return info

    # -- training --------------------------------------------------------------------------------
    def fit(self, ctx: TrainContext) -> None:
        cfg = self.config
        pairs = paired_items(ctx.samples)
        target, g_info = self._grad_target([high for _, high in pairs])
        perceptual, p_info = self._perceptual(ctx.seed)
        seg = open_segmentation_data(ctx, cfg, self.net.num_classes)
        objective = LLEObjective(
            weights=dict(cfg["loss_weights"]),
            grad_target=target,
            perceptual=perceptual,
            beta=float(cfg["smooth_l1_beta"]),
            eps=float(cfg["illumination_eps"]),
        )
        summary = train(self.net, ctx, cfg, objective, seg, self.device)
        if objective.grad_target != target:  # resumed: the checkpoint's G wins
            g_info = {**g_info, "G": objective.grad_target, "source": "the resumed checkpoint"}
        with torch.no_grad():
            self.net.grad_target.fill_(objective.grad_target)
        self.training_info = {
            "grad_target": g_info,
            "perceptual": p_info,
            "segmentation": seg.info,
            "training": summary,
        }

    def _grad_target(self, highs: list) -> tuple[float, dict[str, Any]]:
        value = self.config["grad_target"]
        if isinstance(value, str):
            if value != "auto":
                raise ConfigError(f"sllen: grad_target must be 'auto' or a number, not {value!r}")
            g, n = losses.dataset_average_gradient(highs)
            return g, {
                "G": g,
                "source": f"mean average gradient of the {n} normal-light training images",
            }
        return float(value), {"G": float(value), "source": "config grad_target"}

    def _perceptual(self, seed: int) -> tuple[losses.PerceptualLoss | None, dict[str, Any]]:
        cfg, vgg = self.config, self.config["vgg"]
        if not cfg["loss_weights"].get("perceptual", 0):
            return None, {"L_p": "off (loss weight 0)"}
        try:
            path = backbone_file(vgg["arch"], vgg["file"] or None, vgg["if_missing"])
        except WeightsError as exc:
            raise WeightsError(
                f"sllen: the perceptual loss L_p (Eq. 11) needs VGG. {exc} For sllen the key is "
                'vgg.if_missing: a --config TOML file with [vgg] if_missing = "drop".'
            ) from exc
        info: dict[str, Any] = {"arch": vgg["arch"], "layers": list(vgg["layers"])}
        if path is None and vgg["if_missing"] == "drop":
            info["L_p"] = "off: VGG weights not found and vgg.if_missing = 'drop'"
            return None, info
        if path is None:
            info["L_p"] = "on, random VGG features: weights not found, vgg.if_missing = 'random'"
        else:
            from llbench.io.hashing import sha256_file

            info.update({"L_p": "on", "vgg_file": str(path), "vgg_sha256": sha256_file(path)})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = losses.PerceptualLoss(vgg["arch"], vgg["layers"], weights=path)
        return net.to(self.device), info


def _check(cfg: Mapping[str, Any]) -> None:
    if cfg["schedule"] not in SCHEDULES:
        raise ConfigError(f"sllen: schedule must be one of {SCHEDULES}, not {cfg['schedule']!r}")
    if cfg["segmentation_images"] not in SEGMENTATION_IMAGES:
        raise ConfigError(
            f"sllen: segmentation_images must be one of {SEGMENTATION_IMAGES}, "
            f"not {cfg['segmentation_images']!r}"
        )
    if cfg["vgg"]["if_missing"] not in IF_MISSING:
        raise ConfigError(
            f"sllen: vgg.if_missing must be one of {IF_MISSING}, not {cfg['vgg']['if_missing']!r}"
        )
    if int(cfg["width"]) < 2:
        raise ConfigError("sllen: width must be >= 2")
    for key in ("patch", "ss_patch"):
        if int(cfg[key]) % 16:
            raise ConfigError(f"sllen: {key} must be a multiple of 16, got {cfg[key]}")
