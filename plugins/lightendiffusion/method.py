"""LightenDiffusion as an llbench method: the model, inference and weights (training: :mod:`.training`).

Inference (the authors' ``Net.forward`` in evaluation mode, ``models/restoration.py``): pad the
image by reflection to multiples of ``pad_multiple`` (64), encode it to the latent ``F_low``,
run the 20-step DDIM chain conditioned on ``2 F_low - 1`` from Gaussian noise, map the result to
[0, 1], decode it with the low-light image's encoder pyramid, crop, clamp to [0, 1]. The
official code runs the encoder pyramid a second time for the decoder's skips; it is the same
computation, done once here.

Seeding. The initial noise ``x_T`` of every image is drawn on the CPU from a fresh
``torch.Generator`` seeded with ``sample_seed`` (so it is the same on CPU and GPU, for every
image of a batch, whatever the batch size or order). ``sample_seed = -1`` (the default) draws it
once, when the method is built, from torch's global generator, which the harness seeds with the
run's seed: the output is a function of (input, weights, run seed). With ``eta = 0`` (DDIM, the
default) no other randomness enters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llbench.api import TrainableMethod, TrainContext
from llbench.config import merge
from llbench.errors import ConfigError

from . import checkpoints
from .ctdn import CTDN
from .diffusion import beta_schedule, ddim_sample
from .losses import to_signed, to_unit
from .unet import DiffusionUNet


class LatentRetinexNet(nn.Module):
    """The whole model with the authors' ``Net`` attribute names: ``Unet`` and ``decom``."""

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__()
        u, d = cfg["unet"], cfg["diffusion"]
        self.Unet = DiffusionUNet(
            ch=int(u["ch"]),
            ch_mult=tuple(int(m) for m in u["ch_mult"]),
            num_res_blocks=int(u["num_res_blocks"]),
            dropout=float(u["dropout"]),
            attn_level=int(u["attn_level"]),
        )
        self.decom = CTDN(int(cfg["decom_channels"]))
        betas = beta_schedule(
            str(d["beta_schedule"]),
            float(d["beta_start"]),
            float(d["beta_end"]),
            int(d["num_diffusion_timesteps"]),
        )
        self.register_buffer("betas", betas, persistent=False)


class LightenDiffusion(TrainableMethod):
    """Jiang et al., LightenDiffusion (ECCV 2024). See the package docstring."""

    name = "lightendiffusion"
    net: LatentRetinexNet

    def __init__(self, config: Mapping[str, Any], device: torch.device | str):
        from . import DEFAULT_CONFIG

        super().__init__(merge(DEFAULT_CONFIG, config), device)
        cfg = self.config
        try:
            self.net = LatentRetinexNet(cfg)
        except ValueError as exc:
            raise ConfigError(f"lightendiffusion: {exc}") from exc
        self.net.to(self.device).eval()
        self.num_steps = int(cfg["diffusion"]["num_sampling_timesteps"])
        self.eta = float(cfg["diffusion"]["eta"])
        self.pad_multiple = int(cfg["pad_multiple"])
        need = 8 * self.net.Unet.multiple
        if self.pad_multiple < 1 or self.pad_multiple % need:
            raise ConfigError(
                f"lightendiffusion: pad_multiple must be a multiple of {need} (8 for the encoder "
                f"times {self.net.Unet.multiple} for the UNet), got {self.pad_multiple}"
            )
        seed = int(cfg["sample_seed"])
        self.sample_seed = seed if seed >= 0 else int(torch.randint(0, 2**31 - 1, (1,)).item())
        self.weights_info: dict[str, Any] = {}
        self.training_info: dict[str, Any] = {}

    # -- the model -----------------------------------------------------------------------------
    @property
    def unet(self) -> DiffusionUNet:
        return self.net.Unet

    @property
    def decom(self) -> CTDN:
        return self.net.decom

    def initial_noise(self, n: int, h: int, w: int, seed: int | None = None) -> torch.Tensor:
        """``x_T`` for ``n`` latents of size ``h x w``: the same draw for each image (CPU
        generator seeded with ``seed``, default ``sample_seed``), moved to the device."""
        g = torch.Generator().manual_seed(self.sample_seed if seed is None else int(seed))
        one = torch.randn(1, 3, h, w, generator=g)
        return one.expand(n, -1, -1, -1).contiguous().to(self.device)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        h, w = x.shape[-2:]
        m = self.pad_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return x, h, w

    def sample_latent(
        self, cond_latent: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The DDIM chain: the restored latent in [0, 1] from the low-light latent ``F_low``."""
        n, _, h, w = cond_latent.shape
        x_T = self.initial_noise(n, h, w) if noise is None else noise
        gen = torch.Generator().manual_seed(self.sample_seed + 1)

        def fresh(_: int) -> torch.Tensor:  # only used when eta > 0
            return torch.randn(x_T.shape, generator=gen).to(x_T.device)

        out = ddim_sample(
            self.net.Unet,
            to_signed(cond_latent),
            x_T,
            self.net.betas,
            self.num_steps,
            eta=self.eta,
            noise=fresh,
            checkpoint=bool(self.config["grad_checkpoint"]),
        )
        return to_unit(out)

    def _run(self, low: torch.Tensor, noise_seed: int | None = None) -> torch.Tensor:
        if low.ndim != 4 or low.shape[1] != 3:
            raise ConfigError(
                f"lightendiffusion expects N x 3 x H x W images, got {tuple(low.shape)}"
            )
        x, h, w = self._pad(low.to(self.device, torch.float32))
        latent, skips = self.net.decom.encode(x)
        noise = None
        if noise_seed is not None:
            noise = self.initial_noise(latent.shape[0], *latent.shape[-2:], seed=noise_seed)
        restored = self.sample_latent(latent, noise)
        out = self.net.decom.decode(restored, skips)
        return out[..., :h, :w].clamp(0.0, 1.0)

    # -- inference -----------------------------------------------------------------------------
    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        with torch.no_grad():
            return self._run(low)

    def enhance_differentiable(
        self, low: torch.Tensor, noise_seed: int | None = None
    ) -> torch.Tensor:
        """:meth:`enhance` with autograd on: gradients flow through the decoder, all DDIM steps
        and the UNet (HiLLIE fine-tunes the UNet this way, the decomposition network frozen).

        The caller chooses what trains (``requires_grad``) and the modules' mode. Set the config
        key ``grad_checkpoint`` to recompute each sampling step in the backward pass (less
        memory, same gradients). ``noise_seed`` overrides ``sample_seed`` for ``x_T`` (e.g. the
        same seed for a frozen copy and the model being tuned).
        """
        with torch.enable_grad():
            return self._run(low, noise_seed)

    def provenance(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "sample_seed": self.sample_seed,
            "sampling_steps": self.num_steps,
            "eta": self.eta,
        }
        if self.weights_info:
            info["weights"] = dict(self.weights_info)
        if self.training_info:
            info["training"] = dict(self.training_info)
        return info

    # -- weights -------------------------------------------------------------------------------
    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        checkpoints.load_into(self.net, state, "the weights")

    def load_weights(self, path: str | Path) -> None:
        """Our saved weights or the authors' ``stage2_weight.pth.tar`` (see :mod:`.checkpoints`);
        ``inference_weights = "ema"`` takes the EMA shadow weights of an official file."""
        use_ema = str(self.config["inference_weights"]) == "ema"
        state, layout = checkpoints.full_state(path, use_ema=use_ema)
        checkpoints.load_into(self.net, state, str(path))
        self.weights_info = {"file": str(path), "layout": layout}

    def load_stage1(self, path: str | Path) -> str:
        """Load the encoder, decoder and CTDN from a stage-1 (or stage-2) file."""
        state, layout = checkpoints.decom_state(path)
        checkpoints.load_into(self.net.decom, state, str(path))
        return layout

    # -- training (see .training) ---------------------------------------------------------------
    def training_phases(self, ctx: TrainContext) -> list:
        from .training import build_phases

        return build_phases(self, ctx)

    def fit(self, ctx: TrainContext) -> None:
        from .training import fit

        fit(self, ctx)
