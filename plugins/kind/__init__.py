"""KinD: Kindling the Darkness, a Practical Low-light Image Enhancer
(Zhang, Zhang, Guo; ACM MM 2019; official code github.com/zhangyhuaee/KinD, TensorFlow).

Three sub-networks (:mod:`.model`): layer decomposition into reflectance ``R`` and illumination
``I``; reflectance restoration (a U-Net removing the degradation of ``R_low``, guided by
``I_low``); illumination adjustment to a user-set light ratio. Losses in :mod:`.losses`,
training and inference in :mod:`.method`.

Parameters, official design (counted by a test): decomposition 235,876 + restoration 7,760,739 +
adjustment 19,393 = 8,016,008 (8.0160 M). The PyTorch port has 8.0256 M; SKF's Table 1 prints
8.03 M.

Defaults = the official code:

====================  ==========================================================================
setting               value (source)
====================  ==========================================================================
input                 each image min-max normalised (``utils.load_images``), train and test
decomposition phase   Adam 1e-4, 2000 epochs, batch 10, 48x48 crops; loss ``recon_low +
                      recon_high + 0.01 equal_R + 0.2 i_mutual + 0.15 (i_input_low +
                      i_input_high)`` (``decomposition_net_train.py``)
adjustment phase      Adam 1e-4, 2000 epochs, batch 10, 48x48; loss ``MSE + grad MSE``; ratio
                      ``r = mean(I_low / (I_high + 1e-4))`` per crop, input ``1/r + 1e-4``
                      brightening, or (prob. 1/2) the reverse pair with ``r``
                      (``adjustment_net_train.py``)
restoration phase     Adam 1e-4, halved after epoch 800 (then /4 after 1250, /10 after 1500,
                      unreached), 1000 epochs, batch 4, 384x384; loss ``MSE + grad MSE +
                      (1 - SSIM)`` against ``R_high ** 1.2`` (``reflectance_restoration_net_
                      train.py``)
test time             light ratio 5.0, restored ``R`` damped by ``min(sqrt(2 G_3(gray(R))), 1)``
                      and the result fused with the input, ``I S + (1 - I) R_hat I_hat``
                      (``evaluate.py``). ``test_postprocess = false`` gives plain
                      ``R_hat I_hat`` (``evaluate_LOLdataset.py``, which also takes the ratio
                      from the reference image, which a benchmark cannot)
====================  ==========================================================================

Phase order follows the README (decomposition, adjustment, restoration), so the restoration net,
with the only real decoder, is the last sub-network, the one SKF trains with its losses and
whose decoder stages are the decoder sites. An "epoch" here is ``ceil(n / batch_size)`` batches
(the code: ``n // batch_size``).

Weights: the authors released TensorFlow checkpoints only (Google Drive / Baidu; the
decomposition and adjustment checkpoints are also in their repository); no PyTorch weights exist,
so ``--weights official`` is not offered. ``--weights PATH.pt`` loads a plain state dict of this
layout (TF name mapping in :mod:`.model`), e.g. one saved by an llbench run; ``--weights
PATH.npz`` loads the official TensorFlow variables exported to NumPy (the three checkpoint
folders merged; see :mod:`llbench.plugins.retinexnet.tf_weights`), tested on archives generated
in the official layout (the release itself was not converted here: no TensorFlow).
"""

from __future__ import annotations

from llbench.api import MethodSpec, hookimpl

DEFAULT_CONFIG = {
    "normalize_input": True,
    "phases": {
        "decomposition": {
            "batch_size": 10,
            "patch_size": 48,
            "epochs": 2000,
            "lr": 1e-4,
            "lr_epochs": [],
            "lr_factors": [],
        },
        "adjustment": {
            "batch_size": 10,
            "patch_size": 48,
            "epochs": 2000,
            "lr": 1e-4,
            "lr_epochs": [],
            "lr_factors": [],
        },
        "restoration": {
            "batch_size": 4,
            "patch_size": 384,
            "epochs": 1000,
            "lr": 1e-4,
            "lr_epochs": [800, 1250, 1500],
            "lr_factors": [0.5, 0.25, 0.1],
        },
    },
    "max_steps": 0,
    "loss_weights": {
        "decomposition": {
            "recon_low": 1.0,
            "recon_high": 1.0,
            "equal_r": 0.01,
            "i_mutual": 0.2,
            "i_input_low": 0.15,
            "i_input_high": 0.15,
        },
        "adjustment": {"square": 1.0, "grad": 1.0},
        "restoration": {"square": 1.0, "grad": 1.0, "ssim": 1.0},
    },
    "restoration_target_gamma": 1.2,
    "test_ratio": 5.0,
    "test_postprocess": True,
    "checkpoint_every": 200,
    "cache_mb": 512,
}

PRESETS = {
    # CPU minutes on `synthetic`: capped phases, small restoration crops, larger steps.
    "quick": {
        "max_steps": 80,
        "phases": {
            "decomposition": {"batch_size": 4, "lr": 1e-3},
            "adjustment": {"batch_size": 4, "lr": 1e-3},
            "restoration": {"batch_size": 2, "patch_size": 96, "lr": 2e-4},
        },
        "checkpoint_every": 40,
    },
}


def build(config, device):
    from .method import KinD

    return KinD(config, device)


@hookimpl
def register_methods(register):
    register(
        MethodSpec(
            name="kind",
            build=build,
            summary="KinD: decomposition, reflectance restoration and light-ratio illumination "
            "adjustment nets, three-phase training",
            paper="Zhang, Zhang, Guo, Kindling the Darkness: A Practical Low-light Image "
            "Enhancer, ACM MM 2019",
            supervision="paired",
            trains=True,
            training_protocol="lol",
            default_config=DEFAULT_CONFIG,
            presets=PRESETS,
        )
    )
