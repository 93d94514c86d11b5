"""LightenDiffusion: Unsupervised Low-Light Image Enhancement with Latent-Retinex Diffusion
Models (Jiang, Luo, Liu, Han & Liu, ECCV 2024; arXiv 2407.08939; code and weights:
github.com/JianghaiSCU/LightenDiffusion). HiLLIE's base enhancer.

Pipeline (Fig. 2): an encoder maps the low-light image (and, in training, an unpaired
normal-light image) to a 3-channel latent at 1/8 resolution (Sec. 3.1); the content-transfer
decomposition network (CTDN) splits a latent into reflectance ``R`` and illumination ``L``
(Sec. 3.2); a conditional diffusion model learns, from noise and the low-light latent, the
latent ``R_low * L_high`` (Sec. 3.3); at test time 20 DDIM steps sample the restored latent from
the low-light latent alone, and the decoder maps it back to an image. Modules:

* :mod:`.ctdn`: encoder / decoder (``ReconNet``) and CTDN (``retinex``), official names;
* :mod:`.unet`: the DDPM UNet, official names;
* :mod:`.diffusion`: schedule, forward process, DDIM;
* :mod:`.losses`: noise loss, self-constrained consistency loss, the stage-1 losses;
* :mod:`.checkpoints`: the released checkpoints' key layout;
* :mod:`.method`: :class:`~.method.LightenDiffusion` (inference, ``enhance_differentiable``
  for HiLLIE, weights); :mod:`.training`: the two stages as phases.

Defaults are the authors' ``configs/unsupervised.yml`` and code: UNet ``ch 64``, ``ch_mult
(1, 2, 3, 4)``, 2 residual blocks, attention at level 2 and in the middle; CTDN width 64; linear
betas 1e-4..0.02 over 1000 steps; 20 DDIM steps, ``eta = 0``; inputs padded by reflection to
multiples of 64. Stage 2: Adam lr 2e-5 (eps 1e-8, no weight decay), batch 12, 100 epochs, 512
patches, loss ``noise + 0.001 * SCC`` with the SCC target ``R_low * L_low ** 0.2``, EMA 0.9999.

Where the paper/code is silent (our choices):

* Stage 1 (encoder, decoder, CTDN) has no released code. Rebuilt from the paper's description
  and the author's answer in issue #12 (decoder fed ``R * L``), summed over the low- and
  normal-light images: ``L1(D(R L), I) + L1(R L, F) + 0.1 L1(L, max_c F) + L1(F, pool_8(I))
  + 0.1 smoothness(L | R)`` (RetinexNet's structure-aware smoothness, lambda_g 10). The
  illumination prior and the latent anchor are ours: without them ``L`` saturated at 1 and
  ``R_low * L_high`` equalled ``F_low`` (no enhancement). Adam lr 1e-4, batch 12, 100 epochs,
  512 patches. Set ``stage1_weights`` to the authors' ``stage1_weight.pth.tar`` to skip it as
  their ``train.py`` does. Known limit: the decoder also sees the input's encoder features, so
  a short rebuilt stage 1 lets it lean on them and brighten little.
* Patches: the authors train on whole images of their unpaired set and mention 512 crops
  (issue #1); we crop 512 (reflection-padding smaller images) so batches stack.
* Sampling noise: one CPU generator seeded by ``sample_seed`` (see :mod:`.method`), so results
  are reproducible on any device and independent of batching.

Released weights: ``stage2_weight.pth.tar`` (and ``stage1_weight.pth.tar``) are published only
on Google Drive (folder 1m3t15rWw76IDDWJ0exLOe5P0uEnjk3zl) and Baidu Yun (code ``cjzk``), with
no stable direct URL or hash, so ``--weights official`` is not offered. Download the file
yourself and pass ``--weights /path/to/stage2_weight.pth.tar``; it loads directly (key layout in
:mod:`.checkpoints`).

Importing this package does not import torch.
"""

from __future__ import annotations

from llbench.api import MethodSpec, hookimpl

DEFAULT_CONFIG = {
    "decom_channels": 64,
    "unet": {
        "ch": 64,
        "ch_mult": [1, 2, 3, 4],
        "num_res_blocks": 2,
        "attn_level": 2,
        "dropout": 0.0,
    },
    "diffusion": {
        "beta_schedule": "linear",
        "beta_start": 0.0001,
        "beta_end": 0.02,
        "num_diffusion_timesteps": 1000,
        "num_sampling_timesteps": 20,
        "eta": 0.0,
    },
    "pad_multiple": 64,
    "sample_seed": -1,
    "grad_checkpoint": False,
    "inference_weights": "raw",
    "stage1_weights": "",
    "stage1": {
        "epochs": 100,
        "max_steps": 0,
        "batch_size": 12,
        "patch_size": 512,
        "lr": 1e-4,
        "weight_decay": 0.0,
        "loss_weights": {"rec": 1.0, "retinex": 1.0, "illum": 0.1, "anchor": 1.0, "smooth": 0.1},
        "smooth_lambda": 10.0,
    },
    "stage2": {
        "epochs": 100,
        "max_steps": 0,
        "batch_size": 12,
        "patch_size": 512,
        "lr": 2e-5,
        "weight_decay": 0.0,
        "eps": 1e-8,
        "amsgrad": False,
        "scc_weight": 0.001,
        "scc_gamma": 0.2,
        "ema_rate": 0.9999,
    },
    "checkpoint_every": 500,
    "cache_mb": 512,
}

PRESETS = {
    "quick": {
        "decom_channels": 16,
        "unet": {"ch": 32, "ch_mult": [1, 2, 2], "num_res_blocks": 1},
        "stage1": {"max_steps": 60, "batch_size": 4, "patch_size": 64, "lr": 2e-3},
        "stage2": {"max_steps": 30, "batch_size": 4, "patch_size": 64, "lr": 1e-3},
        "checkpoint_every": 15,
    },
}


def build(config, device):
    from .method import LightenDiffusion

    return LightenDiffusion(config, device)


@hookimpl
def register_methods(register):
    register(
        MethodSpec(
            name="lightendiffusion",
            build=build,
            summary="LightenDiffusion: latent Retinex decomposition (CTDN) + conditional "
            "latent diffusion (20-step DDIM), self-constrained consistency loss",
            paper="Jiang et al., LightenDiffusion: Unsupervised Low-Light Image Enhancement "
            "with Latent-Retinex Diffusion Models, ECCV 2024",
            supervision="unpaired",
            trains=True,
            training_protocol="lol-unpaired",
            default_config=DEFAULT_CONFIG,
            presets=PRESETS,
            official_weights=None,
        )
    )
