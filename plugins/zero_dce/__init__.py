"""Zero-DCE: Zero-Reference Deep Curve Estimation for Low-Light Image Enhancement
(Guo, Li, Guo, Loy, Hou, Kwong, Cong; CVPR 2020).

DCE-Net (seven 3x3 convolutions of width 32, symmetric skip connections, ``tanh``) estimates
24 maps: one pixel-wise 3-channel curve parameter map per iteration of the quadratic
light-enhancement curve ``LE(x) = x + a x (1 - x)`` (Eq. 1-3), applied 8 times. It trains with
four non-reference losses (Sec. 3.3): spatial consistency (4x4 regions, 4 neighbours),
exposure control (16x16 regions, ``E = 0.6``), color constancy and illumination smoothness of
the maps.

Defaults reproduce the official code (github.com/Li-Chongyi/Zero-DCE, ``Zero-DCE_code/``),
which trained the released ``snapshots/Epoch99.pth``; where the paper says otherwise:

============================  ==========================================  =====================
setting                       official code (default)                     paper
============================  ==========================================  =====================
loss weights                  ``200 L_tvA + L_spa + 5 L_col + 10 L_exp``  ``W_col = 0.5``,
                              (``lowlight_train.py``)                     ``W_tvA = 20``
exposure loss                 squared error ``(Y_k - E)^2``               ``|Y_k - E|``
color loss                    ``sqrt(sum D_pq^2)``, ``D = (J_p - J_q)^2``  ``sum (J_p - J_q)^2``
spatial loss                  signed region differences                   absolute differences
training size                 resize to 256 x 256 (``dataloader.py``)     512 x 512
epochs                        200 (argparse default)                      not stated
============================  ==========================================  =====================

Shared by both: Adam, lr 1e-4, weight decay 1e-4, batch 8, gradient norm clipped to 0.1,
convolution weights ~ N(0, 0.02). Inference runs the network at full resolution, no clamping
(the curve keeps [0, 1]), output saved with ``torchvision.utils.save_image`` (clamp, x255,
round), which llbench's 8-bit quantization matches.

The released checkpoint is a plain state dict with keys ``e_conv{1..7}.{weight,bias}``; it loads
with ``--weights PATH`` or ``--weights official``.
"""

from __future__ import annotations

from llbench.api import MethodSpec, hookimpl
from llbench.plugins._curves import quick_preset, released_checkpoint

DEFAULT_CONFIG = {
    "train_size": 256,
    "train_crop": 0,
    "batch_size": 8,
    "num_epochs": 200,
    "max_steps": 0,
    "lr": 1e-4,
    "weight_decay": 1e-4,
    "grad_clip_norm": 0.1,
    "init": "normal",
    "init_std": 0.02,
    "spatial_patch": 4,
    "exposure_level": 0.6,
    "exposure_patch": 16,
    "exposure_norm": "l2",
    "loss_weights": {"spa": 1.0, "exp": 10.0, "col": 5.0, "tv": 200.0},
    "checkpoint_every": 100,
    "cache_mb": 512,
}

PRESETS = {
    "quick": quick_preset(max_steps=60, checkpoint_every=20),
}

OFFICIAL_WEIGHTS = released_checkpoint(
    "Li-Chongyi/Zero-DCE",
    "43f9da935d55758d93b54a47ce5872c96b342668",
    "Zero-DCE_code/snapshots/Epoch99.pth",
)


def build(config, device):
    from .method import ZeroDCE

    return ZeroDCE(config, device)


@hookimpl
def register_methods(register):
    register(
        MethodSpec(
            name="zero-dce",
            build=build,
            summary="Zero-DCE: 8 iterated quadratic curves estimated by DCE-Net, zero-reference losses",
            paper="Guo et al., Zero-Reference Deep Curve Estimation for Low-Light Image "
            "Enhancement, CVPR 2020",
            supervision="zero-reference",
            trains=True,
            default_config=DEFAULT_CONFIG,
            presets=PRESETS,
            official_weights=OFFICIAL_WEIGHTS,
            training_protocol="sice",
        )
    )
