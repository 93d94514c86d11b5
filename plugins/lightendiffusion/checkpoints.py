"""Reading the authors' released checkpoints (their key layout) and our own.

Two files are released (Google Drive / Baidu Yun only, see the package docstring):

* ``stage2_weight.pth.tar`` (``evaluate.py --resume``), what inference needs: the training
  script's ``utils.logging.save_checkpoint`` dict with ``step``, ``epoch``, ``state_dict``,
  ``optimizer``, ``ema_helper``, ``params`` (the ``argparse.Namespace`` of the command line) and
  ``config`` (a nested ``Namespace`` holding a ``torch.device``). ``state_dict`` is the
  ``DataParallel``-wrapped ``Net``: keys ``module.Unet.<...>`` (the diffusion UNet) and
  ``module.decom.ReconNet.<...>`` / ``module.decom.retinex.<...>`` (encoder, decoder and
  CTDN). ``ema_helper`` maps the same names to the EMA shadow weights (decay 0.9999; the
  authors' evaluation does not use them).
* ``stage1_weight.pth.tar`` (``ckpt/stage1``, loaded by stage-2 training): ``{"model": CTDN
  state dict}`` with keys ``ReconNet.<...>`` and ``retinex.<...>``.

Both are read with ``torch.load(weights_only=True)``; ``argparse.Namespace`` is allow-listed for
that one call (``torch.serialization.safe_globals``) so the pickled command-line arguments
restore as plain namespaces and nothing else can execute. Our own saved weights are the plain
state dict of :class:`~.method.LatentRetinexNet` (keys ``Unet.*`` and ``decom.*``), i.e. the
stage-2 layout without the ``module.`` prefix.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from llbench.errors import WeightsError

STAGE2_KEY, STAGE1_KEY, EMA_KEY = "state_dict", "model", "ema_helper"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The object stored in ``path`` (a dict), read safely."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise WeightsError(f"cannot read weights {path}: {exc}") from exc
    if not isinstance(obj, dict):
        raise WeightsError(f"{path} does not hold a checkpoint dict (found {type(obj).__name__})")
    return obj


def _tensors(obj: Mapping[str, Any], path: Path, what: str) -> dict[str, torch.Tensor]:
    out = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not out:
        raise WeightsError(f"{path}: {what} holds no tensors")
    return out


def full_state(path: str | Path, use_ema: bool = False) -> tuple[dict[str, torch.Tensor], str]:
    """``(state dict with keys Unet.* / decom.*, layout name)`` for the whole model.

    ``use_ema`` overlays the checkpoint's ``ema_helper`` shadow weights (official layout only).
    A stage-1 file is refused: it has no diffusion UNet.
    """
    path = Path(path)
    obj = read_checkpoint(path)
    if STAGE2_KEY in obj and isinstance(obj[STAGE2_KEY], dict):
        state = _tensors(obj[STAGE2_KEY], path, "'state_dict'")
        layout = "official stage 2 (state_dict, module.Unet / module.decom)"
        if use_ema:
            if not isinstance(obj.get(EMA_KEY), dict):
                raise WeightsError(f"{path} has no 'ema_helper' weights (inference_weights=ema)")
            state.update(_tensors(obj[EMA_KEY], path, "'ema_helper'"))
            layout += " + ema_helper"
        return state, layout
    if STAGE1_KEY in obj and isinstance(obj[STAGE1_KEY], dict):
        raise WeightsError(
            f"{path} is a stage-1 checkpoint (the decomposition network only, no diffusion "
            "UNet): pass the stage-2 file (stage2_weight.pth.tar) to --weights, or set the "
            "config key stage1_weights to this file to train stage 2 from it"
        )
    if use_ema:
        raise WeightsError(f"{path} is a plain state dict without EMA weights")
    return _tensors(obj, path, "the file"), "state dict (Unet.* / decom.*)"


def decom_state(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The CTDN state dict (keys ``ReconNet.*`` / ``retinex.*``) from a stage-1 file, a stage-2
    file or our own saved weights."""
    path = Path(path)
    obj = read_checkpoint(path)
    if STAGE1_KEY in obj and isinstance(obj[STAGE1_KEY], dict):
        return _tensors(obj[STAGE1_KEY], path, "'model'"), "official stage 1 (model)"
    if STAGE2_KEY in obj and isinstance(obj[STAGE2_KEY], dict):
        obj, layout = obj[STAGE2_KEY], "official stage 2 (state_dict)"
    else:
        layout = "state dict"
    state = _tensors(obj, path, "the file")
    sub = {k.removeprefix("decom."): v for k, v in state.items() if k.startswith("decom.")}
    if sub:
        return sub, layout
    return state, layout


def load_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """``load_state_dict(strict=True)`` with an error naming the first mismatches."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or wrong:
        parts = []
        for name, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {name} (e.g. {', '.join(keys[:3])})")
        raise WeightsError(
            f"{what} does not fit this configuration: {'; '.join(parts)}. Released weights "
            "need the default widths (decom_channels 64, unet ch 64, ch_mult [1, 2, 3, 4], "
            "num_res_blocks 2)"
        )
    module.load_state_dict(dict(state), strict=True)
