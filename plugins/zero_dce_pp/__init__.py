"""Zero-DCE++: Learning to Enhance Low-Light Image via Zero-Reference Deep Curve Estimation
(Li, Guo, Loy; IEEE TPAMI 2021).

The fast variant of Zero-DCE: DCE-Net's convolutions become depthwise separable (depthwise 3x3
plus pointwise 1x1), the network outputs one 3-channel curve map shared by all 8 iterations of
the quadratic curve, and at test time it sees the input bilinearly downsampled by
``scale_factor = 12``; the map is upsampled back (bilinear, ``align_corners=True``) and the
curve is applied at full resolution. It trains with Zero-DCE's four non-reference losses.

Defaults reproduce the official code (github.com/Li-Chongyi/Zero-DCE_extension, ``Zero-DCE++/``),
which trained the released ``snapshots_Zero_DCE++/Epoch99.pth``:

* ``lowlight_train.py``: Adam lr 1e-4, weight decay 1e-4, batch 8, 100 epochs, gradient norm
  clipped to 0.1, ``scale_factor = 1`` while training, PyTorch's default initialization
  (its ``weights_init`` call is commented out), loss ``1600 L_tvA + L_spa + 5 L_col + 10 L_exp``
  with ``E = 0.6`` and 16 x 16 exposure patches (the weights the papers print, e.g. Zero-DCE's
  ``W_col = 0.5``, ``W_tvA = 20``, go with the printed loss forms, such as an L1 exposure
  error; the released checkpoint was trained with the code's);
* ``dataloader.py``: training images resized to 512 x 512 (Lanczos);
* ``lowlight_test.py``: ``scale_factor = 12``; the image is cropped to multiples of 12 before
  the network runs. llbench returns the full image: the crop region is bit-identical to the
  official output and the remaining (< 12) rows and columns use the nearest curve values
  (see :mod:`llbench.plugins._curves.nets`).

The released checkpoint is a plain state dict with keys
``e_conv{1..7}.depth_conv.{weight,bias}`` and ``e_conv{1..7}.point_conv.{weight,bias}``.
"""

from __future__ import annotations

from llbench.api import MethodSpec, hookimpl
from llbench.plugins._curves import quick_preset, released_checkpoint

DEFAULT_CONFIG = {
    "train_size": 512,
    "train_crop": 0,
    "batch_size": 8,
    "num_epochs": 100,
    "max_steps": 0,
    "lr": 1e-4,
    "weight_decay": 1e-4,
    "grad_clip_norm": 0.1,
    "init": "default",
    "init_std": 0.02,
    "train_scale_factor": 1,
    "test_scale_factor": 12,
    "spatial_patch": 4,
    "exposure_level": 0.6,
    "exposure_patch": 16,
    "exposure_norm": "l2",
    "loss_weights": {"spa": 1.0, "exp": 10.0, "col": 5.0, "tv": 1600.0},
    "checkpoint_every": 100,
    "cache_mb": 512,
}

PRESETS = {
    "quick": quick_preset(max_steps=60, checkpoint_every=20),
}

OFFICIAL_WEIGHTS = released_checkpoint(
    "Li-Chongyi/Zero-DCE_extension",
    "99ab5265054f685c874da58033ece00579514425",
    "Zero-DCE++/snapshots_Zero_DCE++/Epoch99.pth",
)


def build(config, device):
    from .method import ZeroDCEPP

    return ZeroDCEPP(config, device)


@hookimpl
def register_methods(register):
    register(
        MethodSpec(
            name="zero-dce++",
            build=build,
            summary="Zero-DCE++: depthwise separable curve net, one shared curve map, "
            "estimated at 1/12 resolution",
            paper="Li, Guo, Loy, Learning to Enhance Low-Light Image via Zero-Reference Deep "
            "Curve Estimation, IEEE TPAMI 2021",
            supervision="zero-reference",
            trains=True,
            default_config=DEFAULT_CONFIG,
            presets=PRESETS,
            official_weights=OFFICIAL_WEIGHTS,
            training_protocol="sice",
        )
    )
