"""Retinex-Net as a trainable llbench method: inference, the two training phases, decoder sites.

Training (official ``main.py`` + ``model.py``): phase ``decom`` trains Decom-Net alone on the
decomposition loss of low/normal pairs; phase ``relight`` then trains Enhance-Net alone (the
official graph optimises ``var_list = RelightNet`` only, so Decom-Net is frozen) on the
relighting loss. Each phase: Adam, lr 1e-3 for 20 epochs then 1e-4, 100 epochs, batches of 16
random 48x48 crops with the 8 flip/rotation modes. Both phases run through
:func:`llbench.api.run_phases` (resumable mid-phase; losses logged as ``decom/<term>`` and
``relight/<term>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llbench.api import TrainableMethod, TrainContext
from llbench.api.features import DecoderSite
from llbench.api.training import Patches, Phase, epochs_to_steps, paired_items
from llbench.config import merge
from llbench.errors import ConfigError

from . import losses, tf_weights
from .model import RetinexNetModel

NAME = "retinexnet"


def bm3d_reflectance(
    reflectance: torch.Tensor, illumination: torch.Tensor, sigma: float
) -> torch.Tensor:
    """Illumination-aware BM3D denoising of the reflectance (Sec. 3.3, "Denoising on
    Reflectance"): each image's ``R`` is denoised by ``bm3d.bm3d_rgb`` with noise level
    ``sigma`` (on [0, 1]), and the result is blended with the noisy ``R`` by the illumination,
    ``I * R + (1 - I) * BM3D(R)``, so dark regions, where decomposition amplified the noise
    most, are denoised most. The paper names BM3D and asks for an illumination-relevant
    operation without giving the formula; the blend is our reading of it.
    """
    try:
        import bm3d
    except ImportError as exc:
        raise ConfigError(
            "retinexnet: denoise = 'bm3d' needs the optional 'bm3d' package, which is not "
            "installed (pip install bm3d; its licence allows non-commercial use only). "
            "Install it or set denoise = 'none'."
        ) from exc
    out = []
    for r, i in zip(reflectance, illumination, strict=True):
        arr = r.detach().permute(1, 2, 0).cpu().double().numpy()
        den = np.clip(np.asarray(bm3d.bm3d_rgb(arr, float(sigma)), dtype=np.float64), 0.0, 1.0)
        den_t = torch.from_numpy(den).permute(2, 0, 1).to(r.device, r.dtype)
        out.append(i * r + (1.0 - i) * den_t)
    return torch.stack(out)


class RetinexNet(TrainableMethod):
    """Retinex-Net (Wei et al., BMVC 2018). ``self.net`` holds ``decom`` and ``relight``."""

    net: RetinexNetModel

    def __init__(self, config: Mapping[str, Any], device: torch.device | str):
        from . import DEFAULT_CONFIG

        super().__init__(merge(DEFAULT_CONFIG, config), device)
        cfg = self.config
        if cfg["denoise"] not in ("none", "bm3d"):
            raise ConfigError(
                f"retinexnet: denoise must be 'none' or 'bm3d', not {cfg['denoise']!r}"
            )
        self.net = RetinexNetModel(
            int(cfg["channels"]), int(cfg["kernel_size"]), int(cfg["decom_layers"])
        )
        self.net.to(self.device).eval()
        self.training_info: dict[str, Any] = {}

    # -- inference ---------------------------------------------------------------------------
    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        low = low.to(self.device, torch.float32)
        r_low, i_low = self.net.decom(low)
        i_delta = self.net.relight(i_low, r_low)
        if self.config["denoise"] == "bm3d":
            r_low = bm3d_reflectance(r_low, i_low, float(self.config["bm3d_sigma"]))
        return (r_low * i_delta).clamp(0.0, 1.0)

    def load_weights(self, path: str | Path) -> None:
        """A state dict of this layout (``.pt``), or the authors' TensorFlow variables exported to
        ``.npz`` (both checkpoint folders, ``model/Decom`` and ``model/Relight``, merged; see
        :mod:`.tf_weights`)."""
        if Path(path).suffix.lower() == ".npz":
            table = tf_weights.retinexnet_table(int(self.config["decom_layers"]))
            self.load_state_dict(tf_weights.convert(tf_weights.read_npz(path), table, str(path)))
        else:
            super().load_weights(path)

    def decoder_sites(self) -> tuple[DecoderSite, ...]:
        """Enhance-Net's three decoder stages (the last sub-network, where SKF attaches; Wu et
        al., CVPR 2023, Sec. 4.1), coarse to fine: 1/4, 1/2 and full resolution, 64 channels
        each (after the skip sum)."""
        c = int(self.config["channels"])
        return (
            DecoderSite("deconv1", "relight.deconv1", channels=c, stride=4),
            DecoderSite("deconv2", "relight.deconv2", channels=c, stride=2),
            DecoderSite("deconv3", "relight.deconv3", channels=c, stride=1),
        )

    def provenance(self) -> dict[str, Any]:
        info: dict[str, Any] = {"denoise": self.config["denoise"]}
        if self.training_info:
            info["training"] = dict(self.training_info)
        return info

    # -- training ----------------------------------------------------------------------------
    def training_phases(self, ctx: TrainContext) -> list[Phase]:
        """``decom`` (Decom-Net, decomposition loss) then ``relight`` (Enhance-Net with Decom-Net
        frozen, relighting loss). The ``relight`` phase's output is the enhanced image
        ``clamp(R_low * I_delta, 0, 1)``."""
        cfg = self.config
        patches = Patches(
            paired_items(ctx.samples),
            patch=int(cfg["patch_size"]),
            batch_size=int(cfg["batch_size"]),
            seed=ctx.seed,
            cache_mb=float(cfg["cache_mb"]),
        )
        spe = patches.steps_per_epoch
        steps = epochs_to_steps(float(cfg["epochs"]), spe, int(cfg["max_steps"]))
        decay_at = epochs_to_steps(float(cfg["lr_decay_epochs"]), spe)
        lam_g = float(cfg["smooth_lambda_g"])
        w_decom = dict(cfg["loss_weights"]["decom"])
        w_relight = dict(cfg["loss_weights"]["relight"])
        net = self.net

        def optimizer_for(phase: str):
            return lambda params: torch.optim.Adam(params, lr=float(cfg["lr"][phase]))

        def scheduler(opt):
            factor = float(cfg["lr_decay_factor"])
            return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 if s < decay_at else factor)

        def decom_loss(step, batch):
            low, high = batch
            r_low, i_low = net.decom(low)
            r_high, i_high = net.decom(high)
            terms = losses.decom_terms(low, high, r_low, i_low, r_high, i_high, w_decom, lam_g)
            return r_low * i_low, terms

        def relight_loss(step, batch):
            low, high = batch
            with torch.no_grad():
                r_low, i_low = net.decom(low)
            i_delta = net.relight(i_low, r_low)
            terms = losses.relight_terms(high, r_low, i_delta, w_relight, lam_g)
            return (r_low * i_delta).clamp(0.0, 1.0), terms

        return [
            Phase(
                "decom",
                steps,
                patches.batch,
                decom_loss,
                [net.decom],
                optimizer_for("decom"),
                scheduler,
            ),
            Phase(
                "relight",
                steps,
                lambda s: patches.batch(steps + s),  # fresh crops after the decom phase's
                relight_loss,
                [net.relight],
                optimizer_for("relight"),
                scheduler,
            ),
        ]

    def fit(self, ctx: TrainContext) -> None:
        self.training_info = self.fit_phases(ctx, NAME)
