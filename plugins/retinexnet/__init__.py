"""Retinex-Net: Deep Retinex Decomposition for Low-Light Enhancement
(Wei, Wang, Yang, Liu; BMVC 2018; official code github.com/weichen582/RetinexNet, TensorFlow).

Decom-Net splits an image into reflectance ``R`` and illumination ``I`` (learned from
low/normal-light pairs that share ``R``); Enhance-Net ("RelightNet" in the code), a small
encoder-decoder with multi-scale fusion, adjusts ``I``; the output is ``R_low * I_delta``
(:mod:`.model`, :mod:`.losses`, :mod:`.method`).

Parameters, official TensorFlow design (counted by a test): Decom-Net 207,748 + Enhance-Net
236,865 = 444,613 (0.4446 M). The popular PyTorch port concatenates the decoder skips and has
0.5552 M; SKF's Table 1 prints 0.62 M, which no design we built reproduces.

Defaults = the official code, which trained the released model:

==========================  ====================================================================
setting                     value (source)
==========================  ====================================================================
widths                      64 channels, 3x3 kernels (9x9 first layer), 5 activated layers
                            (``model.py``: ``DecomNet(layer_num=5)``, ``channel=64``)
decomposition loss          ``recon_low + recon_high + 0.001 (mutual_low + mutual_high)
                            + 0.1 (smooth_low + smooth_high) + 0.01 equal_R``, ``lambda_g = 10``
                            (``model.py`` ``loss_Decom``; paper Sec. 4.1)
relighting loss             ``relight + 3 smooth_delta`` (``model.py`` ``loss_Relight``)
phases                      ``decom`` then ``relight`` (Decom-Net frozen), 100 epochs each
                            (``main.py`` ``--epoch 100``, ``lowlight_train``)
optimizer                   Adam, lr 1e-3, x0.1 from epoch 20 (``main.py`` ``lr[20:]``)
batches                     16 crops of 48x48, 8 flip/rotation modes (``main.py``, ``utils.py``)
denoising                   ``none``: the official code has none. ``bm3d`` applies the paper's
                            BM3D on the reflectance (Sec. 3.3), blended by the illumination
                            (see :func:`.method.bm3d_reflectance`); needs the optional ``bm3d``
                            package (free for non-commercial use only)
==========================  ====================================================================

Where the paper is silent or the code differs: the paper trains with SGD ("stochastic gradient
descent ... batch size 16, patch size 48x48"), the code with Adam (kept); the paper's Enhance-Net
input is ``R`` and ``I`` concatenated (code order: ``R`` first, kept). An "epoch" here is
``ceil(n / batch_size)`` batches of :class:`llbench.api.Patches` (the code: ``n // batch_size``).

Weights: the authors released TensorFlow checkpoints only (``model/Decom``, ``model/Relight`` in
their repository); no PyTorch weights exist, so ``--weights official`` is not offered.
``--weights PATH.pt`` loads a plain state dict of this layout (``decom.shallow_feature_extraction``,
``decom.activated_layers.{0..4}``, ``decom.recon_layer``, ``relight.conv0..3``,
``relight.deconv{1,2,3}.conv``, ``relight.feature_fusion``, ``relight.output``), e.g. one saved
by an llbench run; ``--weights PATH.npz`` loads the official TensorFlow variables exported to
NumPy (both folders merged; three lines of TensorFlow in :mod:`.tf_weights`), mapping the TF
names and permuting the kernels (tested on archives generated in that layout; the release itself
was not converted here, as TensorFlow is not installed).
"""

from __future__ import annotations

from llbench.api import MethodSpec, hookimpl

DEFAULT_CONFIG = {
    "channels": 64,
    "kernel_size": 3,
    "decom_layers": 5,
    "batch_size": 16,
    "patch_size": 48,
    "epochs": 100,
    "max_steps": 0,
    "lr": {"decom": 1e-3, "relight": 1e-3},
    "lr_decay_epochs": 20,
    "lr_decay_factor": 0.1,
    "smooth_lambda_g": 10.0,
    "loss_weights": {
        "decom": {
            "recon_low": 1.0,
            "recon_high": 1.0,
            "mutual_low": 0.001,
            "mutual_high": 0.001,
            "smooth_low": 0.1,
            "smooth_high": 0.1,
            "equal_r": 0.01,
        },
        "relight": {"relight": 1.0, "smooth_delta": 3.0},
    },
    "denoise": "none",
    "bm3d_sigma": 25.0 / 255.0,
    "checkpoint_every": 200,
    "cache_mb": 512,
}

PRESETS = {
    # CPU minutes on `synthetic`: smaller batches and capped phases, same code path. With
    # batches of 4, Decom-Net at lr 1e-3 collapses (R, I -> 0 within ~30 steps), so its lr is
    # lowered to 1e-4.
    "quick": {
        "batch_size": 4,
        "max_steps": 150,
        "lr": {"decom": 1e-4, "relight": 1e-3},
        "checkpoint_every": 50,
    },
}


def build(config, device):
    from .method import RetinexNet

    return RetinexNet(config, device)


@hookimpl
def register_methods(register):
    register(
        MethodSpec(
            name="retinexnet",
            build=build,
            summary="Retinex-Net: Decom-Net (R, I) + Enhance-Net relighting I, two-phase training",
            paper="Wei et al., Deep Retinex Decomposition for Low-Light Enhancement, BMVC 2018",
            supervision="paired",
            trains=True,
            training_protocol="lol",
            default_config=DEFAULT_CONFIG,
            presets=PRESETS,
        )
    )
