"""LightenDiffusion's two training stages as :class:`llbench.api.Phase` objects (Sec. 3.4).

Both stages read unpaired items ``(low, normal)`` (a low-light image and an unrelated
normal-light image), cropped to ``patch_size`` (reflection-padded when smaller) and flipped
horizontally with probability 0.5, the same flip for both (the authors'
``PairRandomHorizontalFilp``; no rotations). Batches, timesteps and noise depend only on the
run's seed and the step, so an interrupted run resumes exactly (:func:`llbench.api.run_phases`).

* ``stage1``: encoder, decoder and CTDN with the rebuilt stage-1 loss (:mod:`.losses`).
  Skipped when ``stage1_weights`` names a file (the authors' ``stage1_weight.pth.tar``, as
  their ``train.py`` loads it).
* ``stage2``: the UNet only, CTDN frozen (the authors set ``requires_grad = False`` on
  ``decom``): ``noise + 0.001 * scc`` where the SCC term samples the full DDIM chain with
  gradients, as ``Net.forward`` does in training. Adam (lr 2e-5, betas 0.9/0.999, eps 1e-8, no
  weight decay, no AMSGrad), batch 12, 100 epochs; an EMA of the UNet's weights with decay
  0.9999 (the authors' ``EMAHelper()`` default, which their config's ``ema_rate: 0.999`` does not
  reach) is kept in the checkpoint and used for inference only with ``inference_weights = ema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from llbench.api import Patches, Phase, TrainContext
from llbench.api.training import epochs_to_steps
from llbench.errors import ConfigError, DatasetError

from . import losses
from .diffusion import alpha_bar, antithetic_timesteps, q_sample

if TYPE_CHECKING:  # pragma: no cover
    from .method import LightenDiffusion


def unpaired_items(samples: list[Any]) -> list[tuple[Any, Any]]:
    out = []
    for s in samples:
        if s.high is None:
            raise DatasetError(
                f"sample {s.key!r} has no normal-light image: LightenDiffusion trains on "
                "unpaired low-light and normal-light images (choose an unpaired dataset, e.g. "
                "synthetic-unpaired or lol-unpaired)"
            )
        out.append((s.low, s.high))
    return out


def _generator(seed: int, stage: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + stage * 10_000_019 + step)


def _batches(ctx: TrainContext, stage: Mapping[str, Any], index: int, cache_mb: float):
    patch = int(stage["patch_size"])
    data = Patches(
        unpaired_items(ctx.samples),
        patch=patch,
        batch_size=int(stage["batch_size"]),
        seed=ctx.seed + index,
        augment=False,
        cache_mb=cache_mb,
    )

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = data.batch(step)
        flip = torch.rand(low.shape[0], generator=_generator(ctx.seed, 100 + index, step)) < 0.5
        low[flip] = low[flip].flip(-1)
        high[flip] = high[flip].flip(-1)
        return low, high

    return data, batch


def _adam(stage: Mapping[str, Any]):
    def make(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            params,
            lr=float(stage["lr"]),
            betas=(0.9, 0.999),
            eps=float(stage.get("eps", 1e-8)),
            weight_decay=float(stage["weight_decay"]),
            amsgrad=bool(stage.get("amsgrad", False)),
        )

    return make


def _check_patch(m: LightenDiffusion, name: str, patch: int) -> None:
    if patch <= 0 or patch % m.pad_multiple:
        raise ConfigError(
            f"lightendiffusion: {name}.patch_size must be a positive multiple of "
            f"{m.pad_multiple} (the latent is 1/8 of the image and the UNet halves it "
            f"{m.net.Unet.num_resolutions - 1} times), got {patch}"
        )


def stage1_phase(m: LightenDiffusion, ctx: TrainContext) -> Phase:
    s1 = m.config["stage1"]
    _check_patch(m, "stage1", int(s1["patch_size"]))
    data, batches = _batches(ctx, s1, 1, float(m.config["cache_mb"]))
    w = s1["loss_weights"]
    decom = m.net.decom

    def loss(step: int, batch: tuple[torch.Tensor, ...]):
        images = torch.cat(batch[:2])
        latent, skips = decom.encode(images)
        refl, illum = decom.decompose(latent)
        recomposed = refl * illum
        decoded = decom.decode(recomposed, skips)
        terms: dict[str, torch.Tensor] = {}
        if float(w["rec"]):
            terms["rec"] = float(w["rec"]) * losses.image_reconstruction(decoded, images)
        if float(w["retinex"]):
            terms["retinex"] = float(w["retinex"]) * losses.retinex_reconstruction(
                refl, illum, latent
            )
        if float(w["illum"]):
            terms["illum"] = float(w["illum"]) * losses.illumination_prior(illum, latent)
        if float(w["anchor"]):
            terms["anchor"] = float(w["anchor"]) * losses.latent_anchor(latent, images)
        if float(w["smooth"]):
            terms["smooth"] = float(w["smooth"]) * losses.illumination_smoothness(
                illum, refl, float(s1["smooth_lambda"])
            )
        if not terms:
            raise ConfigError("lightendiffusion: every stage1.loss_weights entry is 0")
        return decoded[: batch[0].shape[0]], terms

    return Phase(
        name="stage1",
        steps=epochs_to_steps(float(s1["epochs"]), data.steps_per_epoch, int(s1["max_steps"])),
        batches=batches,
        loss=loss,
        modules=[decom],
        make_optimizer=_adam(s1),
    )


def stage2_phase(m: LightenDiffusion, ctx: TrainContext) -> Phase:
    s2 = m.config["stage2"]
    _check_patch(m, "stage2", int(s2["patch_size"]))
    data, batches = _batches(ctx, s2, 2, float(m.config["cache_mb"]))
    net = m.net
    num_t = int(net.betas.numel())
    ema: dict[str, torch.Tensor] = {}
    mu = float(s2["ema_rate"])

    def loss(step: int, batch: tuple[torch.Tensor, ...]):
        low, high = batch[:2]
        n = low.shape[0]
        net.decom.requires_grad_(False)
        with torch.no_grad():
            latent, _ = net.decom.encode(torch.cat([low, high]))
            refl, illum = net.decom.decompose(latent)
        g = _generator(ctx.seed, 2, step)
        t = antithetic_timesteps(n, num_t, g).to(low.device)
        eps = torch.randn(latent[:n].shape, generator=g).to(low.device)
        x0 = losses.to_signed(refl[:n] * illum[n:])
        x_t = q_sample(x0, eps, alpha_bar(net.betas, t))
        cond = losses.to_signed(latent[:n])
        eps_pred = net.Unet(torch.cat([cond, x_t], dim=1), t.float())
        x_T = torch.randn(latent[:n].shape, generator=g).to(low.device)
        sampled = m.sample_latent(latent[:n], x_T)
        terms = {"noise": losses.noise_loss(eps_pred, eps)}
        if float(s2["scc_weight"]):
            terms["scc"] = float(s2["scc_weight"]) * losses.scc_loss(
                sampled, refl[:n], illum[:n], float(s2["scc_gamma"])
            )
        return sampled, terms

    def update_ema(step: int, batch: Any, output: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            for name, p in net.Unet.named_parameters():
                if name not in ema:
                    ema[name] = p.detach().clone()
                else:
                    ema[name].mul_(mu).add_(p.detach(), alpha=1.0 - mu)
        return {}

    def load_ema(state: Mapping[str, Any]) -> None:
        ema.clear()
        ema.update({k: v.to(m.device) for k, v in state.get("ema", {}).items()})

    m._ema = ema
    return Phase(
        name="stage2",
        steps=epochs_to_steps(float(s2["epochs"]), data.steps_per_epoch, int(s2["max_steps"])),
        batches=batches,
        loss=loss,
        modules=[net.Unet],
        make_optimizer=_adam(s2),
        extra_step=update_ema if mu > 0 else None,
        extra_state=lambda: {"ema": {k: v.detach().clone() for k, v in ema.items()}},
        load_extra_state=load_ema,
    )


def build_phases(m: LightenDiffusion, ctx: TrainContext) -> list[Phase]:
    phases = []
    if not str(m.config["stage1_weights"]):
        phases.append(stage1_phase(m, ctx))
    phases.append(stage2_phase(m, ctx))
    return phases


def fit(m: LightenDiffusion, ctx: TrainContext) -> None:
    stage1 = str(m.config["stage1_weights"])
    if stage1:
        m.training_info["stage1_weights"] = {"file": stage1, "layout": m.load_stage1(stage1)}
    summary = m.fit_phases(ctx, m.name, build_phases(m, ctx))
    m.net.decom.requires_grad_(True)
    m.net.eval()
    ema = getattr(m, "_ema", {})
    if str(m.config["inference_weights"]) == "ema":
        if not ema:
            raise ConfigError("inference_weights = ema, but stage 2 kept no EMA (ema_rate 0)")
        with torch.no_grad():
            for name, p in m.net.Unet.named_parameters():
                p.copy_(ema[name])
    m.training_info.update(summary)
