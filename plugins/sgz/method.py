"""SGZ's method class: EFE + RIE for inference, plus the USS and Eq. 2-7 losses for training."""

from __future__ import annotations

from typing import Any

import torch

from llbench.api import TrainContext
from llbench.errors import ConfigError, WeightsError
from llbench.io.hashing import sha256_file
from llbench.plugins._curves import losses
from llbench.plugins._curves.method import CurveMethod
from llbench.plugins._curves.nets import CurveNet

from . import DEFAULT_CONFIG
from .uss import RESNET50_FILES, RESNET50_URL, USS, find_resnet50_weights, hub_checkpoint_dir

IF_MISSING = ("stop", "random", "drop")


class SGZ(CurveMethod):
    """Semantic-guided zero-shot enhancement (see the package docstring)."""

    name = "sgz"
    defaults = DEFAULT_CONFIG

    def __init__(self, config, device):
        super().__init__(config, device)
        form = self.config["losses"]
        if form not in ("code", "paper"):
            raise ConfigError(f"sgz: losses must be 'code' or 'paper', got {form!r}")
        self.weights = dict(self.config["loss_weights"][form])
        uss = self.config["uss"]
        if uss["if_missing"] not in IF_MISSING:
            raise ConfigError(
                f"sgz: uss.if_missing must be one of {', '.join(IF_MISSING)}, got {uss['if_missing']!r}"
            )
        self.uss: USS | None = None
        self.semantic: dict[str, Any] = {}

    def build_net(self) -> CurveNet:
        return CurveNet("dsc", iterations=int(self.config["iterations"]), per_iteration_maps=False)

    # -- provenance --------------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        info = super().provenance()
        info["losses"] = self.config["losses"]
        if self.semantic:
            info["semantic"] = dict(self.semantic)
        else:  # not trained here: say what training would find
            found = find_resnet50_weights(self.config["uss"]["backbone_file"] or None)
            info["semantic"] = {
                "backbone_available": str(found) if found else None,
                "if_missing": self.config["uss"]["if_missing"],
            }
        return info

    # -- training ----------------------------------------------------------------------------
    def prepare_training(self, ctx: TrainContext) -> None:
        """Build the frozen USS (or record why L_sem is not used)."""
        uss_cfg = self.config["uss"]
        if not self.weights.get("sem", 0):
            self.semantic = {"sem_loss": "off (loss weight 0)"}
            return
        path = find_resnet50_weights(uss_cfg["backbone_file"] or None)
        state = None
        if path is not None:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - any unreadable file
                raise WeightsError(f"cannot read ResNet-50 weights {path}: {exc}") from exc
            digest = sha256_file(path)
            prefix = path.stem.rsplit("-", 1)[-1] if path.name in RESNET50_FILES else ""
            if not digest.startswith(prefix):
                raise WeightsError(
                    f"{path} is damaged: its sha256 {digest[:16]}... does not start with "
                    f"{prefix}, the digest torchvision puts in the file name. Delete it and "
                    f"download https://download.pytorch.org/models/{path.name} again."
                )
            self.semantic = {
                "sem_loss": "on",
                "backbone": "imagenet",
                "backbone_file": str(path),
                "backbone_sha256": digest,
            }
        else:
            choice = uss_cfg["if_missing"]
            if choice == "stop":
                raise WeightsError(self._missing_message())
            if choice == "drop":
                self.semantic = {
                    "sem_loss": "off (w/o L_sem ablation, paper Table 2): ResNet-50 ImageNet "
                    "weights not found",
                    "backbone": None,
                }
                self.weights["sem"] = 0.0
                return
            self.semantic = {
                "sem_loss": "on",
                "backbone": "random (ResNet-50 ImageNet weights not found)",
            }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            self.uss = USS(
                int(uss_cfg["num_classes"]),
                top_down_std=float(uss_cfg["top_down_std"]),
                backbone_state=state,
                batchnorm=str(uss_cfg["batchnorm"]),
            ).to(self.device)
        self.semantic["batchnorm"] = uss_cfg["batchnorm"]

    def _missing_message(self) -> str:
        folder = hub_checkpoint_dir()
        return (
            "sgz: the semantic loss L_sem (paper Sec. 3.3) needs torchvision's ImageNet "
            f"ResNet-50 weights and none were found in {folder} (looked for "
            f"{', '.join(RESNET50_FILES)}). Download {RESNET50_URL} into that folder, or name "
            "the file with uss.backbone_file in a --config file. To train without them, choose "
            'explicitly in a --config TOML file: uss.if_missing = "drop" trains without L_sem '
            "(the paper's 'w/o L_sem' ablation, Table 2); uss.if_missing = \"random\" keeps "
            "L_sem with a randomly initialized ResNet-50. The choice is recorded in the run's "
            "provenance."
        )

    def loss_terms(
        self, low: torch.Tensor, enhanced: torch.Tensor, maps: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """SGZ Eq. 7: the weighted sum of Eq. 2-6 (``losses = "paper"``) or the official
        ``train.py`` objective (``losses = "code"``)."""
        cfg, w = self.config, self.weights
        paper = cfg["losses"] == "paper"
        terms: dict[str, torch.Tensor] = {}
        if w.get("spa", 0):
            terms["spa"] = w["spa"] * losses.spatial_consistency(
                low,
                enhanced,
                patch=int(cfg["spatial_patch"]),
                diagonal_weight=float(cfg["spatial_diagonal_weight"]),
                form="paper" if paper else "code",
            )
        if paper:
            if w.get("rgb", 0):
                terms["rgb"] = w["rgb"] * losses.charbonnier_rgb(
                    enhanced, eps=float(cfg["charbonnier_eps"])
                )
            if w.get("bri", 0):
                terms["bri"] = w["bri"] * losses.exposure_control(
                    enhanced, norm="l1", **self.exposure_kwargs()
                )
            if w.get("tv", 0):
                terms["tv"] = w["tv"] * losses.total_variation_rgb(enhanced)
        else:
            if w.get("col", 0):
                terms["col"] = w["col"] * losses.color_constancy(enhanced)
            if w.get("exp", 0):
                terms["exp"] = w["exp"] * losses.exposure_control(
                    enhanced, norm="l2", **self.exposure_kwargs()
                )
            if w.get("tv", 0):
                terms["tv"] = w["tv"] * losses.illumination_smoothness(maps)
        if w.get("sem", 0) and self.uss is not None:
            logits = self.uss(enhanced)
            terms["sem"] = w["sem"] * losses.focal_semantic(
                logits, beta=float(cfg["focal_beta"]), gamma=float(cfg["focal_gamma"])
            )
        if not terms:
            raise ConfigError("sgz: every loss weight is 0; nothing to train")
        return terms
