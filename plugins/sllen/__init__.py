"""SLLEN: Semantic-aware Low-light Image Enhancement Network
(``../shared/papers/001_8ded879269ed1117.txt``; no public code).

An LLE main network (LLEmN) and a semantic-segmentation auxiliary network (SSaN) share an
encoder. SSaN gives LLEmN two semantic features of the low-light input: the softmax map ``S``
(turned into ``F_h`` by HSEB, Eq. 3, and used as query/key of the attention block HSBAB, Eq. 4)
and the intermediate embedding feature ``F_e`` (turned into a modulation of the low-level
feature by RSAEB, Eq. 5); FFB fuses the two branches (Eq. 6) and a U-Net decoder restores the
image. Training alternates an SS batch stepping SSaN and an LLE batch stepping LLEmN (Algorithm
1). Modules: :mod:`.model` (networks), :mod:`.losses` (Eq. 7-11), :mod:`.training` (Algorithm
1), :mod:`.method` (the method), :mod:`.segmenter` (``sllen-ssan``). Each documents its
reconstruction choices; the numbers the paper's extraction lost are our choices, all in the
config:

==========================  ==============================  =====================================
setting                     default                         source
==========================  ==============================  =====================================
architecture                U-Net encoder 64-512, SS stage  [R] Fig. 2 + "U-Net" (Sec. II-A)
                            1024@H/16; HSEB 32/128/512      Sec. II-A1
attention dim ``d``         64                              [R]
``F_e`` layer               ``D_S``'s first up-stage        [R] ("the intermediate layer")
loss weights (Eq. 11)       L_s 1, L_p 1, kd 0.05,          L_s, L_p weight 1 as printed;
                            itv 0.1, grad 1                 l1..l3 lost [R]
``G`` (Eq. 10)              mean AG of the normal-light     Sec. III-B computes it from 6000
                            training images, recorded       normal-light images; value lost
perceptual                  VGG-16 relu3_3, L1              [R] ([31] only)
optimizers                  two Adam, default betas         Sec. III-A, Algorithm 1
batch, crop, lr             8, 256, 1e-4 (cosine to 1e-6    values lost [R]
                            over the last half)
iterations                  100k alternations               [R]
SS data                     voc-dark (VOC 2012 seg train    Sec. III-A ([35]); darkening [R]
                            list, darkened on the fly)
initialisation              He / U-Net N(0, 2/fan_in);      [R] U-Net [29]; zero heads as SFT
                            RSAEB heads zero
SSaN in the LLE stage       no gradient                     [R] (``semantic_gradient``)
attention memory            queries in chunks of 4096       exact; bounds memory on big images
==========================  ==============================  =====================================

Ablations (Tables I and II) are config files in ``configs/`` (:func:`ablation_config`):
``wo-kd``, ``wo-itv``, ``wo-grad``, ``sllen-1`` (no HSBAB), ``sllen-2`` (no RSAEB), ``sllen-3``
(neither), ``sllen-4`` (SSaN and LLEmN trained independently, separate encoders).

VGG-16 ImageNet weights for ``L_p`` come from the torch hub cache (``llbench weights fetch
vgg16`` / ``import``); without them training stops and says where to put the file, unless the
config chooses ``vgg.if_missing = "drop"`` (no ``L_p``) or ``"random"`` (random VGG features);
the choice is in the run's provenance, like ``G`` and the segmentation data.

``segmentation_dataset`` names the SS data (``voc-dark`` by default; ``scenes``, generated
offline, for CPU runs). The quick preset trains a quarter-width network (``width = 16``, 3.3 M
parameters instead of 53.3 M) for 240 alternations on 96 x 96 crops, with ``scenes`` as SS data
and without ``L_p`` (``vgg.if_missing = "drop"``): same code path, smaller numbers (about a CPU
minute; on ``synthetic`` it lifts PSNR/SSIM from 9.45/0.406 for the dark input to 17.2/0.642).
The ``sllen-ssan`` segmenter (:mod:`.segmenter`) serves a trained SSaN to ``miou``/``mpa``.
SLLEN does not expose ``training_phases`` (its two interleaved optimizers are not a sequence
of phases), so frameworks that wrap phases (SKF) refuse it by name.
"""

from __future__ import annotations

from pathlib import Path

from llbench.api import MethodSpec, SegmenterSpec, hookimpl

SCHEDULES = ("alternating", "independent")
SEGMENTATION_IMAGES = ("dark", "normal")
IF_MISSING = ("stop", "drop", "random")
CONFIGS = Path(__file__).resolve().parent / "configs"

DEFAULT_CONFIG = {
    "width": 64,
    "attention_dim": 64,
    "attention_chunk": 4096,
    "blocks": {"hsbab": True, "rsaeb": True},
    "num_classes": 0,
    "schedule": "alternating",
    "semantic_gradient": False,
    "iterations": 100_000,
    "batch_size": 8,
    "patch": 256,
    "ss_batch_size": 8,
    "ss_patch": 256,
    "lr": 1e-4,
    "ss_lr": 1e-4,
    "lr_min": 1e-6,
    "cosine_from": 0.5,
    "segmentation_dataset": "voc-dark",
    "segmentation_split": "train",
    "segmentation_images": "dark",
    "loss_weights": {"smooth_l1": 1.0, "perceptual": 1.0, "kd": 0.05, "itv": 0.1, "grad": 1.0},
    "smooth_l1_beta": 1.0,
    "illumination_eps": 1e-3,
    "grad_target": "auto",
    "vgg": {"arch": "vgg16", "layers": ["relu3_3"], "file": "", "if_missing": "stop"},
    "checkpoint_every": 500,
    "cache_mb": 512,
}

PRESETS = {
    "quick": {
        "width": 16,
        "attention_dim": 16,
        "iterations": 240,
        "batch_size": 4,
        "patch": 96,
        "ss_batch_size": 4,
        "ss_patch": 96,
        "lr": 1e-3,
        "ss_lr": 1e-3,
        "lr_min": 1e-5,
        "segmentation_dataset": "scenes",
        "vgg": {"if_missing": "drop"},
        "checkpoint_every": 40,
    },
}


def ablation_config(name: str) -> Path:
    """The shipped config file of an ablation (``sllen-1`` ... ``sllen-4``, ``wo-kd``,
    ``wo-itv``, ``wo-grad``), for ``llbench run --config``."""
    path = CONFIGS / f"{name}.toml"
    if not path.is_file():
        from llbench.errors import ConfigError

        known = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.toml")))
        raise ConfigError(f"no SLLEN ablation {name!r}; known: {known}")
    return path


def build(config, device):
    from .method import SLLEN

    return SLLEN(config, device)


def build_segmenter(device, home=None):
    from .segmenter import build

    return build(device, home)


def segmenter_weight_files(home=None) -> list[Path]:
    """The SLLEN file the ``sllen-ssan`` segmenter would load (present or not)."""
    import os

    from .segmenter import ENV, find_weights

    explicit = os.environ.get(ENV)
    if explicit:
        return [Path(explicit).expanduser()]
    found = find_weights(home)
    return [found] if found is not None else []


def segmenter_available(home=None):
    from .segmenter import unavailable

    return unavailable(home)


PAPER = "SLLEN: Semantic-aware Low-light Image Enhancement Network"
# PASCAL VOC's labels (what a default-trained SSaN predicts), listed without importing torch.
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


@hookimpl
def register_methods(register):
    register(
        MethodSpec(
            name="sllen",
            build=build,
            summary="SLLEN: U-Net LLE network guided by a segmentation branch sharing its "
            "encoder (HSBAB attention on the semantic map, RSAEB modulation by an "
            "intermediate SS feature), alternating SS/LLE training",
            paper=PAPER,
            supervision="paired",
            trains=True,
            training_protocol="lol",
            default_config=DEFAULT_CONFIG,
            presets=PRESETS,
        )
    )


@hookimpl
def register_segmenters(register, home):
    register(
        SegmenterSpec(
            name="sllen-ssan",
            build=lambda device: build_segmenter(device, home),
            summary="SSaN of a trained SLLEN (LLBENCH_SLLEN_WEIGHTS, else the newest "
            "<home>/weights/sllen-*.pt); classes follow the file (VOC 21 listed)",
            classes=VOC_CLASSES,
            available=lambda: segmenter_available(home),
            weight_files=lambda: segmenter_weight_files(home),
        )
    )
