"""DRBN: From Fidelity to Perceptual Quality: A Semi-Supervised Approach for Low-Light Image
Enhancement (Yang, Wang, Fang, Wang, Liu; CVPR 2020), stage 1: the deep recursive band network.

What is implemented (the network SKF builds on; :mod:`.model`, :mod:`.losses`, :mod:`.method`):
the recursive band network of Sec. 3.1 (Fig. 2), four recurrences of a three-scale U-network of
residual dense blocks, trained on paired data with the fidelity loss of the authors' code. The
second, perceptual stage (band recomposition learned with an adversarial and a perceptual loss on
unpaired data, Sec. 3.2) is not part of this method.

Defaults follow the authors' public code (github.com/flyywh/CVPR-2020-Semi-Low-Light at
9f383de, ``DRBL-stage1/src``): ``model/drbn.py`` (``G0 = 16``, ``G = 8``, ``C = 4`` layers per
RDB, 4 recurrences), ``trainer.py`` (loss ``-SSIM`` at full, 1/2 and 1/4 size against the
normal-light image subsampled by striding; :mod:`.losses`) and ``option.py`` (Adam, lr 1e-4,
betas (0.9, 0.999), eps 1e-8, no weight decay, step decay x0.5 every 200 epochs, 300 epochs,
batch 4, 256 x 256 patches with random flips and transposition). The code's batch skipping
(``skip_threshold = 1e6`` times the last epoch's loss) never triggers at that threshold and is
left out. Training is step-based (epochs converted with the training split's size) and resumable
through :func:`llbench.api.run_phases`.

Parameters (measured, ``llbench`` and the official code build the same tensors):

=========================  ==========  ==================================================
network                    parameters  source
=========================  ==========  ==================================================
default (G0 = 16, G = 8)   0.5577 M    official code; its released ``model_s1.pt`` holds
                           (557,668)   exactly these tensors (4 x 139,417)
preset ``skf-width``       2.2089 M    SKF (Wu et al., CVPR 2023) Table 1 prints 2.21 M
(G0 = 32, G = 16)          (2,208,932) for DRBN; this width is the one that reproduces it
=========================  ==========  ==================================================

Official weights: ``DRBL-stage1/src/pretrain/model_s1.pt`` (a plain PyTorch state dict, keys
``recur1.SFENet1.weight`` ...; saved from CUDA tensors, llbench loads it on any device) loads with
``--weights official`` (sha256 below, computed from the repository's blob) or ``--weights PATH``.
The authors trained it on their own data (``Our_low`` / ``Our_normal``, the LOL-v2 precursor).

Inference pads the input (reflection) to a multiple of 4 and crops the output; the output is
clamped to [0, 1].

Decoder hook: :meth:`~.method.DRBNMethod.decoder_sites` declares the last recurrence's decoder
features at 1/4 (``2 G0`` channels), 1/2 and full resolution (``G0``), where SKF's DRBN-SKF inserts
its SE modules.
"""

from __future__ import annotations

from llbench.api import MethodSpec, WeightsRef, hookimpl

DEFAULT_CONFIG = {
    "G0": 16,
    "G": 8,
    "C": 4,
    "recurrences": 4,
    "patch_size": 256,
    "batch_size": 4,
    "augment": True,
    "epochs": 300,
    "max_steps": 0,
    "lr": 1e-4,
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "weight_decay": 0.0,
    "lr_decay_epochs": 200,
    "lr_decay_steps": 0,
    "gamma": 0.5,
    "checkpoint_every": 100,
    "cache_mb": 512,
}

#: ``quick``: CPU minutes on ``synthetic`` (small patches, more steps per image, larger step
#: size); ``skf-width``: SKF Table 1's DRBN width (G0 = 32, G = 16, 2.2089 M parameters).
PRESETS = {
    "quick": {
        "patch_size": 64,
        "batch_size": 4,
        "max_steps": 150,
        "lr": 1e-3,
        "lr_decay_steps": 100,
        "checkpoint_every": 50,
    },
    "skf-width": {"G0": 32, "G": 16},
}

OFFICIAL_WEIGHTS = WeightsRef(
    url="https://raw.githubusercontent.com/flyywh/CVPR-2020-Semi-Low-Light/"
    "9f383decbd2717ab37bb9e4c133b3a0bf98ba638/DRBL-stage1/src/pretrain/model_s1.pt",
    sha256="6a61baf2d17a92468ada5e9d45049aee6f58dc52067174dca311f6042e1765a6",
    filename="model_s1.pt",
    source="https://github.com/flyywh/CVPR-2020-Semi-Low-Light (DRBL-stage1/src/pretrain)",
)


def build(config, device):
    from .method import DRBNMethod

    return DRBNMethod(config, device)


@hookimpl
def register_methods(register):
    register(
        MethodSpec(
            name="drbn",
            build=build,
            summary="DRBN stage 1: recursive band network of residual dense blocks, "
            "3-scale SSIM loss (paired)",
            paper="Yang et al., From Fidelity to Perceptual Quality: A Semi-Supervised Approach "
            "for Low-Light Image Enhancement, CVPR 2020",
            supervision="paired",
            trains=True,
            training_protocol="lol",
            default_config=DEFAULT_CONFIG,
            presets=PRESETS,
            official_weights=OFFICIAL_WEIGHTS,
        )
    )
