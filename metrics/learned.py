"""Learned no-reference and full-reference metrics, computed by pyiqa's own networks.

Each metric here is a thin adapter over one pyiqa 0.1.16 network class, so a score matches
``pyiqa.create_metric(name)`` on the same 8-bit images (the tests check this, and check the
calibration values of ``shared/data/README.md`` when the official weights are present). What the
adapters add:

* **No hidden downloads.** ``available()`` checks the exact weight files (and packages) first;
  when something is missing, ``llbench metrics`` shows the file names, the folder and the URL,
  and a run that asks for the metric fails at once (:mod:`llbench.io.weights`). pyiqa is imported
  only when a metric is built (``import pyiqa`` takes 4-5 s).
* **Safe loading.** Every pickled checkpoint llbench opens itself is read with
  ``torch.load(weights_only=True)``. Where pyiqa's constructor insists on reading a file itself
  (the torchvision backbones of LPIPS and UNIQUE, BRISQUE's support vectors, UNIQUE's head),
  llbench first opens that file with ``weights_only=True`` and refuses it if that fails.
* **Hugging Face offline by default.** While a metric is built, ``HF_HUB_OFFLINE=1`` is set
  unless the user set ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) themselves, so a backbone
  that timm resolves through the hub comes from the cache without the hub's ~23 s of retries.
* **Batched on the chosen device**, one value per image (``(N,)``).

Definitions (pyiqa's defaults, which are the published configurations):

* ``nrqm``: Ma et al., "Learning a no-reference quality metric for single-image
  super-resolution", CVIU 2017: three random forests on DCT, GSM and SVD features of the Y
  channel (YIQ), linear fusion; higher is better, about 0-10.
* ``pi``: the perceptual index of the PIRM 2018 challenge (Blau et al., ECCV-W 2018, Sec. 2),
  ``PI = ((10 - NRQM) + NIQE) / 2``, both on the Y channel of YCbCr with 4 border pixels
  cropped (pyiqa's ``PI``); lower is better. NIQE's pristine model is read from pyiqa's
  ``niqe_modelparameters.mat`` when present, else from the ``niqe_pris_params.npz`` llbench ships
  (the same mean and covariance, see ``shared/data/README.md``).
* ``musiq``: Ke et al., "MUSIQ: Multi-scale image quality transformer", ICCV 2021, the KonIQ-10k
  checkpoint (multi-scale patches at the native size and longer sides 224 and 384); 0-100,
  higher is better.
* ``lpips``: Zhang et al., "The unreasonable effectiveness of deep features as a perceptual
  metric", CVPR 2018, v0.1 with AlexNet; 0-1, lower is better (full-reference).
* ``brisque``: Mittal et al., "No-reference image quality assessment in the spatial domain",
  TIP 2012, the official LIVE SVR on the Y channel; lower is better.
* ``unique``: Zhang et al., "Uncertainty-aware blind image quality assessment in the laboratory
  and wild", TIP 2021; higher is better (about -3 to 3).
* ``nima``: Talebi & Milanfar, "NIMA: Neural image assessment", TIP 2018, Inception-ResNet-v2
  trained on AVA, mean of the 10-bin score distribution; 1-10, higher is better.
* ``clipiqa``: Wang et al., "Exploring CLIP for assessing the look and feel of images", AAAI
  2023, CLIP RN50 with pyiqa's five antonym prompt pairs; 0-1, higher is better.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from llbench._lazy import torch  # imported on first use (light plugin loading)
from llbench.api import Metric, MetricSpec, hookimpl
from llbench.errors import WeightsError
from llbench.io import weights as W

PYIQA_VERSION = "0.1.16"


# -- imports and environment --------------------------------------------------------------------
def import_pyiqa():
    """Import pyiqa (lazily: 4-5 s), after torchvision through llbench's guarded import."""
    if "pyiqa" in sys.modules:
        return sys.modules["pyiqa"]
    from llbench._torchvision import import_torchvision

    import_torchvision()
    with hub_offline_default():
        import pyiqa
    return pyiqa


@contextlib.contextmanager
def hub_offline_default() -> Iterator[None]:
    """Set ``HF_HUB_OFFLINE=1`` for the duration, unless the user chose a value themselves.

    huggingface_hub reads the variable once, at import; if it is already imported its module
    constant is switched for the duration too and restored afterwards.
    """
    if os.environ.get("HF_HUB_OFFLINE") is not None or os.environ.get("TRANSFORMERS_OFFLINE"):
        yield
        return
    consts = sys.modules.get("huggingface_hub.constants")
    before = getattr(consts, "HF_HUB_OFFLINE", None) if consts is not None else None
    os.environ["HF_HUB_OFFLINE"] = "1"
    if consts is not None:
        consts.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        os.environ.pop("HF_HUB_OFFLINE", None)
        consts = sys.modules.get("huggingface_hub.constants")
        if consts is not None:
            consts.HF_HUB_OFFLINE = bool(before)


def _load_state_dict(path: Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)``; optionally the ``key`` entry; ``module.`` removed."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise WeightsError(
            f"cannot read {path} with weights_only=True: {exc}. Replace it with "
            f"the official file (`llbench weights import`)."
        ) from exc
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise WeightsError(f"{path} has no {key!r} entry; is it the official file?")
        obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _check_safe(path: Path) -> None:
    """Refuse a pickle that pyiqa/torchvision would open with ``weights_only=False`` unless it
    also opens with ``weights_only=True`` (tensors and containers only)."""
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - legacy (non-zip) files cannot be memory-mapped
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise WeightsError(
                f"refusing {path}: it does not load with weights_only=True "
                f"({type(exc).__name__}: {exc})"
            ) from exc


def _load_strict(
    net: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    path: Path,
    required_prefixes: tuple[str, ...] = (),
) -> None:
    """Load ``state``; with ``required_prefixes`` a partial (strict=False) load that must still
    cover every parameter under those prefixes (LPIPS's file holds only its linear heads)."""
    try:
        if required_prefixes:
            net.load_state_dict(state, strict=False)
            # (a module registered under two names, like LPIPS's lin0 and lins.0, is one tensor)
            loaded = {id(t) for k, t in net.state_dict(keep_vars=True).items() if k in state}
            missing = [
                k
                for k, t in net.state_dict(keep_vars=True).items()
                if k.startswith(required_prefixes) and id(t) not in loaded
            ]
            if missing:
                raise RuntimeError(f"missing keys {missing[:5]}")
        else:
            net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"{path} does not fit pyiqa {PYIQA_VERSION}'s {type(net).__name__}: {exc}"
        ) from exc


# -- NIQE parameters for PI -----------------------------------------------------------------------
def _shipped_niqe_npz() -> Path | None:
    """The NIQE pristine parameters llbench ships as package data, if any."""
    here = Path(__file__).resolve().parent
    for cand in (
        here / "niqe_pris_params.npz",
        here / "data" / "niqe_pris_params.npz",
        here.parent / "data" / "niqe_pris_params.npz",
    ):
        if cand.is_file():
            return cand
    return None


def _niqe_mat_path() -> Path | None:
    """pyiqa's ``niqe_modelparameters.mat``; else one written once from the shipped npz."""
    mat = W.FILES["niqe_modelparameters.mat"].path()
    if mat.is_file():
        return mat
    npz = _shipped_niqe_npz()
    if npz is None:
        return None
    from llbench import paths

    out = paths.cache_dir() / "pyiqa-derived" / "niqe_pris_params.mat"
    if not out.is_file():
        import numpy as np
        import scipy.io

        with np.load(npz) as z:
            params = {
                "mu_prisparam": np.asarray(z["mu_pris_param"], dtype=np.float64).reshape(1, -1),
                "cov_prisparam": np.asarray(z["cov_pris_param"], dtype=np.float64),
            }
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        scipy.io.savemat(tmp, params)
        os.replace(tmp, out)
    return out


def _pi_available() -> str | None:
    msg = W.unavailable_message("pi")
    if msg:
        return msg
    if W.FILES["niqe_modelparameters.mat"].present() or _shipped_niqe_npz() is not None:
        return None
    f = W.FILES["niqe_modelparameters.mat"]
    return (
        f"missing weight file(s): {f.filename} -> {f.path()} (from {f.url}). Place it with "
        f"`llbench weights import {f.filename}`"
    )


# -- builders: each returns a callable images -> (N,) ---------------------------------------------
Scorer = Callable[["torch.Tensor", "torch.Tensor | None"], "torch.Tensor"]


def _build_nrqm(device: torch.device) -> torch.nn.Module:
    p = W.require("nrqm")
    import_pyiqa()
    from pyiqa.archs.nrqm_arch import NRQM

    return NRQM(pretrained_model_path=str(p["NRQM_model.mat"]))


def _pi_module(nrqm_path: Path, niqe_path: Path) -> torch.nn.Module:
    """pyiqa's ``PI`` from explicit file paths (the class is made here: torch loads on use)."""

    class PI(torch.nn.Module):
        """pyiqa's ``PI``, built from explicit file paths: ``((10 - NRQM) + NIQE) / 2``."""

        def __init__(self, nrqm_path: Path, niqe_path: Path):
            super().__init__()
            from pyiqa.archs.niqe_arch import NIQE
            from pyiqa.archs.nrqm_arch import NRQM

            self.nrqm = NRQM(
                crop_border=4, color_space="ycbcr", pretrained_model_path=str(nrqm_path)
            )
            self.niqe = NIQE(
                crop_border=4, color_space="ycbcr", pretrained_model_path=str(niqe_path)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            nrqm = self.nrqm(x).reshape(-1).to(torch.float64)
            niqe = self.niqe(x).reshape(-1).to(torch.float64)
            return 0.5 * ((10.0 - nrqm) + niqe)

    return PI(nrqm_path, niqe_path)


def _build_pi(device: torch.device) -> torch.nn.Module:
    missing = _pi_available()
    if missing:
        raise WeightsError(f"pi: {missing}")
    p = W.require("pi")
    import_pyiqa()
    return _pi_module(p["NRQM_model.mat"], _niqe_mat_path())


def _build_musiq(device: torch.device) -> torch.nn.Module:
    p = W.require("musiq")
    import_pyiqa()
    from pyiqa.archs.musiq_arch import MUSIQ

    path = p["musiq_koniq_ckpt-e95806b9.pth"]
    net = MUSIQ(pretrained=False, num_class=1)  # pyiqa's 'musiq': KonIQ head, one output
    _load_strict(net, _load_state_dict(path), path)
    return net


def _build_lpips(device: torch.device) -> torch.nn.Module:
    p = W.require("lpips")
    backbone = p["alexnet-owt-7be5be79.pth"]
    _check_safe(backbone)  # torchvision reads it from the hub cache during construction
    import_pyiqa()
    from pyiqa.archs.lpips_arch import LPIPS

    with hub_offline_default():
        net = LPIPS(pretrained=False, net="alex", version="0.1")
    heads = p["LPIPS_v0.1_alex-df73285e.pth"]
    _load_strict(net, _load_state_dict(heads), heads, required_prefixes=("lin",))
    return net


def _build_brisque(device: torch.device) -> torch.nn.Module:
    p = W.require("brisque")
    path = p["brisque_svm_weights.pth"]
    _check_safe(path)
    import_pyiqa()
    from pyiqa.archs.brisque_arch import BRISQUE

    return BRISQUE(test_y_channel=True, pretrained_model_path=str(path))


def _build_unique(device: torch.device) -> torch.nn.Module:
    p = W.require("unique")
    for path in p.values():
        _check_safe(path)
    import_pyiqa()
    from pyiqa.archs.unique_arch import UNIQUE

    # UNIQUE's constructor reads resnet34 from torchvision's cache and UNIQUE.pt from pyiqa's
    # folder, which is where W.require() found them.
    with hub_offline_default():
        return UNIQUE()


def _build_nima(device: torch.device) -> torch.nn.Module:
    p = W.require("nima")
    import_pyiqa()
    from pyiqa.archs.nima_arch import NIMA

    path = p["NIMA_InceptionV2_ava-b0c77c00.pth"]
    state = _load_state_dict(path, key="params")
    with hub_offline_default():
        # timm builds the backbone from the hub cache (checked present above); the NIMA
        # checkpoint then replaces every weight, the backbone's included (strict load).
        net = NIMA(
            base_model_name="inception_resnet_v2",
            train_dataset="ava",
            num_classes=10,
            pretrained=False,
        )
    _load_strict(net, state, path)
    return net


def _build_clipiqa(device: torch.device) -> torch.nn.Module:
    p = W.require("clipiqa")
    path = p["RN50.pt"]
    W.check_hash(W.FILES["RN50.pt"], path)  # as CLIP's own loader does for its cache
    import_pyiqa()
    from pyiqa.archs.clipiqa_arch import CLIPIQA

    # The verified file is passed by path, so CLIP never tries to download it again.
    return CLIPIQA(model_type="clipiqa", backbone=str(path), pretrained=True)


class PyiqaMetric(Metric):
    """A per-image metric computed by a pyiqa network (see the module docstring)."""

    def __init__(
        self,
        name: str,
        builder: Callable[[torch.device], torch.nn.Module],
        full_reference: bool,
        device: torch.device | str = "cpu",
        options: Mapping[str, Any] | None = None,
    ):
        super().__init__(device, options)
        self.name = name
        self.full_reference = full_reference
        self.batch_size = int(self.options.get("metric_batch_size", 8))
        self.net = builder(self.device)
        self.net = self.net.to(self.device).eval()

    def __call__(
        self, pred: torch.Tensor, ref: torch.Tensor | None = None, low: torch.Tensor | None = None
    ) -> torch.Tensor:
        if pred.dim() == 3:
            pred = pred.unsqueeze(0)
        if self.full_reference:
            if ref is None:
                raise ValueError(f"{self.name} is full-reference: it needs the reference image")
            if ref.dim() == 3:
                ref = ref.unsqueeze(0)
            if ref.shape != pred.shape:
                raise ValueError(
                    f"{self.name}: image {tuple(pred.shape)} and reference "
                    f"{tuple(ref.shape)} differ in size"
                )
        out = []
        with torch.inference_mode():
            for i in range(0, pred.shape[0], self.batch_size):
                x = pred[i : i + self.batch_size].to(self.device, torch.float32).clamp(0.0, 1.0)
                if self.full_reference:
                    r = ref[i : i + self.batch_size].to(self.device, torch.float32).clamp(0.0, 1.0)
                    y = self.net(x, r)
                else:
                    y = self.net(x)
                out.append(y.reshape(-1).to("cpu", torch.float64))
        return torch.cat(out)


# -- registration ---------------------------------------------------------------------------------
_SPECS: list[dict[str, Any]] = [
    dict(
        name="pi",
        builder=_build_pi,
        fr=False,
        higher=False,
        rng=None,
        default=True,
        available=_pi_available,
        summary="Perceptual index (PIRM 2018) = ((10 - NRQM) + NIQE) / 2, via pyiqa.",
        definition="pyiqa PI: NRQM and NIQE on Y of YCbCr, 4-pixel border cropped; "
        "PI = ((10 - NRQM) + NIQE) / 2 (Blau et al., ECCV-W 2018)",
    ),
    dict(
        name="nrqm",
        builder=_build_nrqm,
        fr=False,
        higher=True,
        rng=(0.0, 10.0),
        default=False,
        summary="NRQM (Ma et al., CVIU 2017), via pyiqa.",
        definition="pyiqa NRQM: random forests on DCT/GSM/SVD features of Y (YIQ), no crop",
    ),
    dict(
        name="musiq",
        builder=_build_musiq,
        fr=False,
        higher=True,
        rng=(0.0, 100.0),
        default=True,
        summary="MUSIQ trained on KonIQ-10k (Ke et al., ICCV 2021), via pyiqa.",
        definition="pyiqa musiq (KonIQ-10k checkpoint), multi-scale 224/384 + native, 0-100",
    ),
    dict(
        name="lpips",
        builder=_build_lpips,
        fr=True,
        higher=False,
        rng=(0.0, 1.0),
        default=True,
        summary="LPIPS v0.1 AlexNet (Zhang et al., CVPR 2018), via pyiqa.",
        definition="pyiqa lpips: v0.1, AlexNet features, learned linear heads, inputs in [-1, 1]",
    ),
    dict(
        name="brisque",
        builder=_build_brisque,
        fr=False,
        higher=False,
        rng=(0.0, 150.0),
        default=True,
        summary="BRISQUE (Mittal et al., TIP 2012), official LIVE SVR, via pyiqa.",
        definition="pyiqa brisque: Y channel, 7x7 Gaussian (sigma 7/6), LIVE SVR (gamma 0.05)",
    ),
    dict(
        name="unique",
        builder=_build_unique,
        fr=False,
        higher=True,
        rng=(-3.0, 3.0),
        default=False,
        summary="UNIQUE (Zhang et al., TIP 2021), via pyiqa.",
        definition="pyiqa unique: ResNet-34 + bilinear pooling, mean of the predicted score",
    ),
    dict(
        name="nima",
        builder=_build_nima,
        fr=False,
        higher=True,
        rng=(1.0, 10.0),
        default=False,
        summary="NIMA, Inception-ResNet-v2 on AVA (Talebi & Milanfar, TIP 2018), via pyiqa.",
        definition="pyiqa nima: 299x299 resize + centre crop, mean of the 10-bin distribution",
    ),
    dict(
        name="clipiqa",
        builder=_build_clipiqa,
        fr=False,
        higher=True,
        rng=(0.0, 1.0),
        default=False,
        summary="CLIP-IQA with CLIP RN50 (Wang et al., AAAI 2023), via pyiqa.",
        definition="pyiqa clipiqa: CLIP RN50, 5 antonym prompt pairs, mean P(positive)",
    ),
]


def metric_names() -> list[str]:
    return [s["name"] for s in _SPECS]


def make_spec(d: Mapping[str, Any]) -> MetricSpec:
    name, builder, fr = d["name"], d["builder"], d["fr"]
    available = d.get("available") or (lambda n=name: W.unavailable_message(n))

    def build(device: torch.device, options: Mapping[str, Any]) -> PyiqaMetric:
        return PyiqaMetric(name, builder, fr, device, options)

    return MetricSpec(
        name=name,
        build=build,
        summary=d["summary"],
        kind="full-reference" if fr else "no-reference",
        higher_better=d["higher"],
        definition=d["definition"],
        score_range=d["rng"],
        needs=frozenset({"weights", "reference"} if fr else {"weights"}),
        available=available,
        default=d["default"],
        version=f"pyiqa-{PYIQA_VERSION}",
    )


@hookimpl
def register_metrics(register):
    for d in _SPECS:
        register(make_spec(d))
