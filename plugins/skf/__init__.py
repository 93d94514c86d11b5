"""SKF: Learning Semantic-Aware Knowledge Guidance for Low-Light Image Enhancement
(Wu, Wu, Zhang, Wang, Qin, Zhang, Pan, Hu; CVPR 2023; ``../shared/papers/004_0636802f34bd03da.txt``).

A framework around a supervised enhancement network (:mod:`.framework`): a frozen segmenter, the
semantic knowledge bank (HRNetV2-W48 on PASCAL-Context, ``hrnet-w48-pascal-context``), feeds
semantic-aware embedding modules inserted in the base's decoder (SE, :mod:`.se`, Eq. 4-5), and
two losses join the base's own: the semantic-guided colour histogram loss (SCH, :mod:`.losses`,
Eq. 6-10) and the semantic-guided adversarial loss (SA, :mod:`.adversarial`, Eq. 11-14, with the
authors' two code bugs fixed). ``L = L_base + w_sch L_SCH + w_sa L_SA`` (Eq. 15). It works on any
:class:`~llbench.api.TrainableMethod` exposing ``decoder_sites()`` and ``training_phases()``:
:func:`wrap` for Python users, :func:`skf_method_spec` to register a third party's method with
SKF (see ``docs/skf.md``).

Registered methods: ``drbn-skf``, ``retinexnet-skf``, ``kind-skf``. Settings
(github.com/langmanbusi/Semantic-Aware-Low-Light-Image-Enhancement, ``DRBN_SKF/src``):

==================  =======================================================================
setting             default (source)
==================  =======================================================================
DRBN-SKF            base ``drbn`` as the authors' code (G0 = 16, G = 8; Adam 1e-4, x0.5
                    every 200 epochs, 300 epochs, batch 4, 256 crops; ``option.py``); loss
                    3-scale ``-SSIM`` + 1 SCH (normalised by ``N K H W 3``) + 0.1 SA
                    (``trainer_seg_hist_fuse.py``); SE at 1/4, 1/2, full size of the last
                    recurrence fed by HRNet's 1/8 and 1/4 features and its logits
                    (``model/drbn.py``); D: Adam, lr = G lr / 1000 (``lr_ratio``)
RetinexNet-SKF,     no code exists: the base's own phases and settings; SE on the base's
KinD-SKF            decoder sites; SCH weight 1 normalised by ``N H W`` (SNR-SKF's and
                    LLFlow-SKF's form) and SA 0.1 (DRBN-SKF's) on the last phase only (the
                    paper applies SCH and SA to the last sub-network, Sec. 4.1)
SCH                 256 bins on [0, 1], ``alpha = 400``, per class and RGB channel, no edge
                    removal (code; ``sch.erode`` does the paper's)
segmenter input     the network's input image (paper, Eq. 1); DRBN-SKF's code feeds the
                    third recurrence's output instead
==================  =======================================================================

Parameter counts (enhancer only; segmenter and discriminator excluded, as the paper's Table 1;
SE counts from :mod:`.se`, base counts from the base plugins' docstrings):

================  ==========================  ============================  ================
method            llbench default             llbench preset ``skf-width``   SKF Table 1
================  ==========================  ============================  ================
DRBN -> +SKF      0.5577 -> 0.5991 M (code:    2.2089 -> 2.3564 M (SE          2.21 -> 2.43 M
                  SE 26,812 + 7,238 + 7,414)   96,566 + 25,276 + 25,628)
RetinexNet        see ``retinexnet`` plugin;  --                            0.62 -> 0.66 M
                  SE sized by its sites
KinD              see ``kind`` plugin         --                            8.03 -> 8.50 M
================  ==========================  ============================  ================

The segmenter is chosen by ``segmenter`` in the config; when its weights are absent the build
stops and says where to put them, unless the config names another registered segmenter
(``tiny-seg``, trained by llbench on first use; ``deeplabv3-resnet50``; a third party's). The
choice and the segmenter's checkpoint hash are recorded in ``provenance()``. Ablations of
Tables 3 and 4 ship as config files in ``configs/`` (:data:`ABLATIONS`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llbench.api import MethodSpec, hookimpl

PAPER = (
    "Wu et al., Learning Semantic-Aware Knowledge Guidance for Low-Light Image Enhancement, "
    "CVPR 2023"
)
CONFIG_DIR = Path(__file__).parent / "configs"
#: Table 3 / Table 4 ablations: config file -> what it selects.
ABLATIONS = {
    "sch_only.toml": "Table 3 'SCH': SCH loss only (no SE, no SA)",
    "sa_only.toml": "Table 3 'SA': SA loss only",
    "se_only.toml": "Table 3 'SE': SE modules only",
    "sch_se.toml": "Table 3 'SCH+SE'",
    "global_histogram.toml": "Table 4 'w/o S' histogram: one global colour histogram",
    "classic_adversarial.toml": "Table 4 'w/o S' adversarial: RGB global D, random local crops",
}

SKF_CONFIG: dict[str, Any] = {
    "segmenter": "hrnet-w48-pascal-context",
    "se": {
        "enabled": True,
        "sites": [],
        "sources": [],
        "heads": 2,
        "ffn_expansion": 2.66,
    },
    "sch": {
        "weight": 1.0,
        "bins": 256,
        "alpha": 400.0,
        "semantic": True,
        "normalization": "classes",
        "erode": 0,
        "radius": 12,
    },
    "sa": {
        "weight": 0.1,
        "global_weight": 0.9,
        "local_weight": 0.1,
        "semantic": True,
        "local_in_generator": True,
        "patch": 32,
        "lr_ratio": 0.001,
        "betas": [0.9, 0.999],
    },
    "checkpoint_every": 100,
}


def skf_defaults(base_defaults: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """SKF's default config around a base's default config (under ``base``)."""
    from llbench.config import merge

    cfg = copy.deepcopy(SKF_CONFIG)
    cfg["base"] = copy.deepcopy(dict(base_defaults))
    return merge(cfg, overrides) if overrides else cfg


def map_drbn_skf_official(state: Mapping[str, Any]) -> dict[str, Any]:
    """The SKF authors' DRBN-SKF checkpoint (``model.drbn.DRBN``: ``recur1..4.*`` with
    ``recur4.fuseblk_1..3.*``, the SE modules at 1/4, 1/2 and full size) -> llbench's keys."""
    sites = {"fuseblk_1": "s4", "fuseblk_2": "s2", "fuseblk_3": "s1"}
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("model.")
        parts = key.split(".")
        if len(parts) > 2 and parts[1] in sites:
            out[".".join(["se", sites[parts[1]], *parts[2:]])] = value
        else:
            out[f"base.{key}"] = value
    return out


def build_skf(base_name: str, config: Mapping[str, Any], device, name: str):
    """Build the base through the plugin host, the segmenter by name, and wrap them."""
    import torch

    from llbench.pluginhost.host import get_host

    from .framework import SKF

    host = get_host()
    base = host.method(base_name).build(dict(config["base"]), torch.device(device))
    segmenter = build_segmenter(str(config["segmenter"]), device, name)
    skf_cfg = {k: v for k, v in config.items() if k != "base"}
    method = SKF(base, segmenter, skf_cfg, device, name=name)
    if base_name == "drbn":
        method.official_map = map_drbn_skf_official
    return method


def build_segmenter(seg_name: str, device, who: str = "skf"):
    """A registered segmenter; a clear stop with what to place where when it is unavailable."""
    import torch

    from llbench.errors import WeightsError
    from llbench.pluginhost.host import get_host

    spec = get_host().segmenter(seg_name)
    missing = spec.available()
    if missing:
        raise WeightsError(
            f"{who}: the semantic knowledge bank {seg_name!r} is unavailable here: {missing}. "
            "To train with another registered segmenter instead, name it in a --config TOML "
            'file, e.g. segmenter = "tiny-seg" (trained by llbench on first use) or '
            'segmenter = "deeplabv3-resnet50"; the choice is recorded in the run\'s provenance.'
        )
    seg = spec.build(torch.device(device))
    if not getattr(seg, "name", ""):
        seg.name = seg_name
    return seg


def wrap(base, segmenter, config: Mapping[str, Any] | None = None, device=None, name: str = "skf"):
    """SKF around an already built ``base`` method (any :class:`~llbench.api.TrainableMethod`
    with decoder sites and training phases) and a segmenter object or registered name."""
    from llbench.config import merge

    from .framework import SKF

    device = device if device is not None else base.device
    cfg = merge(SKF_CONFIG, dict(config or {}))
    if isinstance(segmenter, str):
        segmenter = build_segmenter(segmenter, device, name)
    return SKF(base, segmenter, cfg, device, name=name)


def skf_method_spec(
    name: str,
    base: str,
    base_defaults: Mapping[str, Any],
    base_presets: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    summary: str = "",
    paper: str = PAPER,
    overrides: Mapping[str, Any] | None = None,
    quick_segmenter: str = "tiny-seg",
    training_protocol: str | None = "lol",
) -> MethodSpec:
    """A :class:`MethodSpec` for ``<base>`` with SKF: register it from any plugin's
    ``register_methods`` hook. ``base`` is the registered name of the base method; presets of
    the base become presets of the SKF method (``quick`` also switches to ``quick_segmenter``)."""
    presets: dict[str, dict[str, Any]] = {}
    for key, value in (base_presets or {}).items():
        presets[key] = {"base": copy.deepcopy(dict(value))}
        if key == "quick":
            presets[key].update({"segmenter": quick_segmenter, "checkpoint_every": 50})
    return MethodSpec(
        name=name,
        build=lambda config, device: build_skf(base, config, device, name),
        summary=summary or f"{base} with SKF (SE modules, SCH and SA losses, frozen segmenter)",
        paper=paper,
        supervision="paired",
        trains=True,
        training_protocol=training_protocol,
        default_config=skf_defaults(base_defaults, **dict(overrides or {})),
        presets=presets,
    )


def _base_settings(module: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A built-in base plugin's ``DEFAULT_CONFIG`` and ``PRESETS`` (None while it has none)."""
    import importlib

    try:
        mod = importlib.import_module(f"llbench.plugins.{module}")
    except ImportError:
        return None
    defaults = getattr(mod, "DEFAULT_CONFIG", None)
    if not isinstance(defaults, Mapping):
        return None
    return dict(defaults), dict(getattr(mod, "PRESETS", {}) or {})


@hookimpl
def register_methods(register):
    from llbench.plugins.drbn import DEFAULT_CONFIG as DRBN_DEFAULTS
    from llbench.plugins.drbn import PRESETS as DRBN_PRESETS

    register(
        skf_method_spec(
            "drbn-skf",
            "drbn",
            DRBN_DEFAULTS,
            DRBN_PRESETS,
            summary="DRBN + SKF: SE at 3 decoder scales of the last recurrence, 3-scale SSIM + "
            "SCH + 0.1 SA (authors' DRBN-SKF code, bugs fixed)",
        )
    )
    for base, label, overrides in (
        ("retinexnet", "RetinexNet", {}),
        # three SE modules (Fig. 2) on the restoration net's three finest decoder stages: with
        # HRNet's sources this gives 8.016 + 0.484 = 8.50 M, Table 1's KinD-SKF figure
        ("kind", "KinD", {"se": {"sites": ["dec7", "dec8", "dec9"]}}),
    ):
        settings = _base_settings(base)
        if settings is None:
            continue
        register(
            skf_method_spec(
                f"{base}-skf",
                base,
                settings[0],
                settings[1],
                summary=f"{label} + SKF: SE on its decoder sites, SCH + SA on its last phase",
                overrides={"sch": {"normalization": "pixels"}, **overrides},
            )
        )
