"""SGZ: Semantic-Guided Zero-Shot Learning for Low-Light Image/Video Enhancement
(Zheng & Gupta, WACV workshops 2022; ``../shared/papers/002_834b8f298da0a909.txt``).

Three stages (Fig. 2):

* EFE, enhancement factor extraction (Sec. 3.1): seven depthwise separable 3x3 convolution
  blocks of width 32 with ReLU, symmetric skip connections, ``tanh`` output of 3 channels, the
  enhancement factor ``A`` (``x_r``); the same network as Zero-DCE++'s, with the same layer names;
* RIE, recurrent image enhancement (Sec. 3.2, Eq. 1): ``x_t = x_{t-1} + A * (x_{t-1}^2 - x_{t-1})``
  (Order 2), applied ``iterations`` times;
* USS, unsupervised semantic segmentation (Sec. 3.3): a frozen FPN over ResNet-50 (ImageNet
  weights, Gaussian N(0, 0.01) top-down pathway) whose label-free focal loss keeps the enhanced
  image segmentable (:mod:`.uss`).

Losses (Sec. 3.4, Eq. 2-7), in :mod:`llbench.plugins._curves.losses`: spatial consistency with
the four adjacent and, weighted ``alpha = 0.5``, the four diagonal neighbours of each 4x4 region
(Eq. 2); Charbonnier RGB loss, ``eps = 1e-6`` (Eq. 3); brightness, ``E = 0.6`` (Eq. 4); total
variation with an inter-channel term (Eq. 5); focal semantic loss, ``beta = 1, gamma = 2``
(Eq. 6); total with ``lambda_sem = 0.1`` and the other weights 1 (Eq. 7).

The paper and the authors' code (github.com/ShenZheng2000/Semantic-Guided-Low-Light-Image-
Enhancement: ``train.py``, ``Myloss.py``, ``modeling/model.py``, ``modeling/fpn.py``,
``option.py``, ``test.py``) differ. Defaults follow the code, which produced the released
``weight/Epoch99.pth`` (``losses = "code"``); the preset ``paper`` selects the printed forms:

=====================  =============================================  ==========================
setting                official code (default)                        paper (preset ``paper``)
=====================  =============================================  ==========================
loss terms             ``L_spa8`` (signed differences), Zero-DCE      Eq. 2 (absolute
                       color loss, squared exposure error, TV of the  differences), Eq. 3
                       curve map ``A``, focal semantic loss           Charbonnier, Eq. 4 L1
                                                                      brightness, Eq. 5 TV of
                                                                      the image
weights                spa 1, col 5, exp 10, tv 1600, sem 0.1         all 1, sem 0.1
recurrences            8 (``enhance``)                                not stated (8 kept)
test-time scale        ``scale_factor = 12`` (``test.py``), crop to   no up/downsampling
                       multiples of 12                                (Sec. 3.1)
EFE initialization     PyTorch default (``weights_init`` unused)      N(0, 0.02) (Sec. 4.1)
=====================  =============================================  ==========================

Shared: Adam, lr 1e-4, weight decay 1e-4 (code), batch 6, 100 epochs, gradient norm clipped to
0.1, training images resized to 512 x 512, ``scale_factor = 1`` while training (Sec. 4.1,
``option.py``).

ResNet-50 ImageNet weights for the USS are read from the torch hub cache. When they are absent,
training stops with a message saying where to put them, unless the config chooses explicitly:
``uss.if_missing = "drop"`` trains without ``L_sem`` (the paper's "w/o L_sem" ablation,
Table 2) and ``"random"`` keeps ``L_sem`` with a randomly initialized backbone. The choice, and
the backbone file's sha256, are recorded in ``provenance()``.
"""

from __future__ import annotations

from llbench.api import MethodSpec, hookimpl
from llbench.plugins._curves import quick_preset, released_checkpoint

DEFAULT_CONFIG = {
    "iterations": 8,
    "train_size": 512,
    "train_crop": 0,
    "batch_size": 6,
    "num_epochs": 100,
    "max_steps": 0,
    "lr": 1e-4,
    "weight_decay": 1e-4,
    "grad_clip_norm": 0.1,
    "init": "default",
    "init_std": 0.02,
    "train_scale_factor": 1,
    "test_scale_factor": 12,
    "losses": "code",
    "spatial_patch": 4,
    "spatial_diagonal_weight": 0.5,
    "exposure_level": 0.6,
    "exposure_patch": 16,
    "charbonnier_eps": 1e-6,
    "focal_beta": 1.0,
    "focal_gamma": 2.0,
    "loss_weights": {
        "code": {"spa": 1.0, "col": 5.0, "exp": 10.0, "tv": 1600.0, "sem": 0.1},
        "paper": {"spa": 1.0, "rgb": 1.0, "bri": 1.0, "tv": 1.0, "sem": 0.1},
    },
    "uss": {
        "num_classes": 21,
        "backbone_file": "",
        "if_missing": "stop",
        "batchnorm": "batch",
        "top_down_std": 0.01,
    },
    "checkpoint_every": 100,
    "cache_mb": 512,
}

PRESETS = {
    "quick": quick_preset(max_steps=40, checkpoint_every=10),
    "paper": {"losses": "paper", "init": "normal", "test_scale_factor": 1},
}

OFFICIAL_WEIGHTS = released_checkpoint(
    "ShenZheng2000/Semantic-Guided-Low-Light-Image-Enhancement",
    "6e1c840885a06f6937754e31cd31df6693e51099",
    "weight/Epoch99.pth",
)


def build(config, device):
    from .method import SGZ

    return SGZ(config, device)


@hookimpl
def register_methods(register):
    register(
        MethodSpec(
            name="sgz",
            build=build,
            summary="SGZ: depthwise separable enhancement-factor net, recurrent quadratic "
            "enhancement, frozen FPN semantic loss",
            paper="Zheng & Gupta, Semantic-Guided Zero-Shot Learning for Low-Light "
            "Image/Video Enhancement, WACVW 2022",
            supervision="zero-reference",
            trains=True,
            default_config=DEFAULT_CONFIG,
            presets=PRESETS,
            official_weights=OFFICIAL_WEIGHTS,
            training_protocol="sice",
        )
    )
