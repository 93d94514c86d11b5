"""CRNet and the Multi-Consistency Mean Teacher (MCMT): S. Lee, D. Jang, D.-S. Kim, "Temporally
Averaged Regression for Semi-Supervised Low-Light Image Enhancement", 2023 (CVPR workshops,
by our reading; ``../shared/papers/003_39f418f58b950961.txt``). No official code exists; the
network is rebuilt from the prose and the works it cites (PReNet's recurrent memory, gated
convolutions, HAN's layer attention).

Two methods:

* ``crnet`` (supervision ``paired``): CRNet (:mod:`.model`) trained with the progressive
  enhancement loss ``L_PE = -SSIM + lambda_ms L_ms`` (:mod:`.losses`) on the training pairs
  (``label_fraction`` 1.0; 0.1 gives Table 2's "CRNet (10 %)").
* ``mcmt`` (supervision ``semi-supervised``): the same CRNet as the student of a mean teacher
  (EMA decay 0.99, Gaussian noise on the teacher's input), trained with
  ``L_PE(labelled) + lambda_MCR (L_C + lambda_mc L_mc)(labelled + unlabelled)``; 10 % of the
  training pairs are labelled (by seed), the rest are used as low-light images only.

Defaults are the paper's (Sec. 5.4): 4 LMRGs of 2 recurrences and 5 MRBs at width 32, all
loss weights 1, Adam lr 5e-4 halved at epochs 20/40/60/90, 100 epochs of 30 random patches per
image. Choices where the paper is silent are listed in :mod:`.training` and :mod:`.model`.

The ``quick`` preset (CPU minutes on ``synthetic``) shrinks the network through its config keys
(width 8, 2 LMRGs, 2 MRBs; recurrences 2 kept), patches (48 px), batches and steps: the same code
path at a smaller size.

Table 2's ablations, one config file each in ``plugins/mcmt/configs/`` (:func:`ablation_config`;
run ``llbench run --method METHOD --dataset lol --config FILE``):

=================  ==========  ======================  =====================================
row                method      file                    keys
=================  ==========  ======================  =====================================
RN                 crnet       ``rn.toml``             plain conv, no LAM, ``lambda_ms = 0``
MRN                crnet       ``mrn.toml``            MC, no LAM, ``lambda_ms = 0``
MRN+               crnet       ``mrn_plus.toml``       MC, no LAM, ``lambda_ms = 1``
CRNet-             crnet       ``crnet_minus.toml``    MC, LAM, ``lambda_ms = 0``
CRNet              crnet       ``crnet.toml``          the defaults
CRNet (10 %)       crnet       ``crnet_10pct.toml``    ``label_fraction = 0.1``
Ours- (10 %, SSL)  mcmt        ``mcmt_minus.toml``     ``lambda_mc = 0`` (final-only L_C)
Ours (10 %, SSL)   mcmt        ``mcmt.toml``           the defaults
=================  ==========  ======================  =====================================
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llbench.api import MethodSpec, hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from llbench.api.methods import Method

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
PAPER = (
    "S. Lee, D. Jang, D.-S. Kim, Temporally Averaged Regression for Semi-Supervised Low-Light "
    "Image Enhancement, 2023"
)

CRNET_CONFIG: dict[str, Any] = {
    # architecture (Sec. 5.4): channels, LMRGs (N), recurrences per LMRG (T), MRBs per LMRG
    "width": 32,
    "groups": 4,
    "recurrences": 2,
    "blocks": 5,
    # ablations of Table 2: MC (false: plain conv + ReLU, "RN"), layer attention (LA)
    "masked_conv": True,
    "layer_attention": True,
    # LAM attention: "han-code" softmax(max E - E) as HAN's released code, "paper" softmax(E)
    "lam_energy": "han-code",
    # progressive enhancement loss L_PE = L_E + lambda_ms L_ms (0 drops the mid-step loss)
    "lambda_ms": 1.0,
    # fraction of the training pairs used with their reference (the rest are not used by crnet)
    "label_fraction": 1.0,
    # data (Sec. 5.4: 30 random patches per image per epoch; patch size and batch not given)
    "patch_size": 100,
    "batch_size": 16,
    "patches_per_image": 30,
    "augment": False,
    # optimisation (Sec. 5.4): Adam, lr 5e-4 halved at epochs 20/40/60/90, 100 epochs
    "epochs": 100,
    "lr": 5e-4,
    "lr_milestones": [20, 40, 60, 90],
    "lr_gamma": 0.5,
    # 0 = the full schedule; > 0 caps the number of optimizer steps (quick runs)
    "max_steps": 0,
    "checkpoint_every": 500,
    "cache_mb": 1024,
}

MCMT_CONFIG: dict[str, Any] = {
    **CRNET_CONFIG,
    "label_fraction": 0.1,
    # of batch_size images per step, this many are labelled patches (the rest unlabelled)
    "labelled_per_batch": 8,
    # mean teacher (Sec. 4.2.2.1): EMA decay alpha, std of the Gaussian noise on its input
    "ema_decay": 0.99,
    "teacher_noise_std": 0.01,
    # L_SSL = L_PE + lambda_mcr (L_C + lambda_mc L_mc)  (Sec. 4.2.2.2, 4.2.3)
    "lambda_mc": 1.0,
    "lambda_mcr": 1.0,
}

_QUICK = {
    "width": 8,
    "groups": 2,
    "blocks": 2,
    "patch_size": 48,
    "batch_size": 8,
    "patches_per_image": 30,
    "epochs": 2,
    "lr": 2e-3,
    "augment": True,
    "max_steps": 150,
    "checkpoint_every": 50,
}
PRESETS = {
    "crnet": {"quick": dict(_QUICK)},
    "mcmt": {"quick": {**_QUICK, "labelled_per_batch": 4}},
}

ABLATIONS: dict[str, str] = {
    "rn.toml": "crnet",
    "mrn.toml": "crnet",
    "mrn_plus.toml": "crnet",
    "crnet_minus.toml": "crnet",
    "crnet.toml": "crnet",
    "crnet_10pct.toml": "crnet",
    "mcmt_minus.toml": "mcmt",
    "mcmt.toml": "mcmt",
}


def ablation_config(name: str) -> Path:
    """The shipped config file of a Table 2 row (``rn``, ``mrn``, ``mrn_plus``,
    ``crnet_minus``, ``crnet``, ``crnet_10pct``, ``mcmt_minus``, ``mcmt``; the method to run it
    with is ``ABLATIONS[name + ".toml"]``), for ``llbench run --config``."""
    path = CONFIG_DIR / f"{name.removesuffix('.toml')}.toml"
    if not path.is_file():
        from llbench.errors import ConfigError

        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))
        raise ConfigError(f"no MCMT ablation {name!r}; known: {known}")
    return path


def _build_crnet(config: Mapping[str, Any], device: torch.device) -> Method:
    from .training import CRNetMethod

    return CRNetMethod(config, device)


def _build_mcmt(config: Mapping[str, Any], device: torch.device) -> Method:
    from .training import MCMTMethod

    return MCMTMethod(config, device)


@hookimpl
def register_methods(register):
    register(
        MethodSpec(
            name="crnet",
            build=_build_crnet,
            summary="CRNet: 4 recurrent LMRGs of masked residual blocks with layer attention, "
            "progressive loss -SSIM + L1 mid-step (fully supervised)",
            paper=PAPER,
            supervision="paired",
            trains=True,
            default_config=CRNET_CONFIG,
            presets=PRESETS["crnet"],
        )
    )
    register(
        MethodSpec(
            name="mcmt",
            build=_build_mcmt,
            summary="MCMT: CRNet student + EMA teacher on noisy input, multi-consistency "
            "regularization on intermediate outputs; 10 % of pairs labelled",
            paper=PAPER,
            supervision="semi-supervised",
            trains=True,
            default_config=MCMT_CONFIG,
            presets=PRESETS["mcmt"],
        )
    )
