"""``llbench score``: score a folder of images produced elsewhere.

Predictions pair with references (``ref_dir``) and low-light inputs (``input_dir``, for metrics
such as LOE) by file stem. Unmatched files are an error listing them; an unreadable image or a
size mismatch fails that image only, and the failure is reported in the ``error`` column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch

from llbench.api.datasets import pair_by_stem
from llbench.api.metrics import Metric
from llbench.device import resolve_device
from llbench.errors import ConfigError, ImageError, LLBenchError
from llbench.io.images import list_images, read_image, to_tensor
from llbench.pluginhost.host import PluginHost, get_host


def score(
    pred_dir: str | Path,
    metrics: Sequence[str],
    *,
    ref_dir: str | Path | None = None,
    input_dir: str | Path | None = None,
    device: str = "auto",
    host: PluginHost | None = None,
    on_image: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """One row per image: ``image`` (file stem), one column per metric, and ``error``."""
    host = host or get_host()
    if not metrics:
        raise ConfigError("name at least one metric, e.g. --metrics psnr,ssim,niqe")
    specs = [host.metric(m) for m in metrics]
    for spec in specs:
        if "reference" in spec.needs and ref_dir is None:
            raise ConfigError(f"metric {spec.name!r} needs reference images: pass --ref GT_DIR")
        if "input" in spec.needs and input_dir is None:
            raise ConfigError(f"metric {spec.name!r} needs the low-light inputs: pass --input DIR")
        if spec.kind in ("task", "efficiency"):
            raise ConfigError(f"metric {spec.name!r} ({spec.kind}) cannot score a folder of images")
        missing = spec.available()
        if missing:
            raise ConfigError(f"metric {spec.name!r} is unavailable here: {missing}")
    dev = resolve_device(device)
    built = {s.name: s.build(dev, {}) for s in specs}
    for name, m in built.items():
        if not isinstance(m, Metric):
            raise ConfigError(f"metric {name!r} does not score single images")

    preds = list_images(Path(pred_dir))
    if not preds:
        raise ImageError(f"no images in {pred_dir}")
    refs = _pair(preds, ref_dir, "references")
    lows = _pair(preds, input_dir, "inputs")
    rows = []
    for p in preds:
        row: dict[str, object] = {"image": p.stem}
        try:
            pred = to_tensor(read_image(p)).to(dev)
            ref = _load(refs.get(p.stem), pred, "reference")
            low = _load(lows.get(p.stem), pred, "input")
            for name, metric in built.items():
                with torch.inference_mode():
                    row[name] = float(metric(pred, ref, low).reshape(-1)[0])
            row["error"] = None
        except LLBenchError as exc:
            row["error"] = str(exc)
        rows.append(row)
        if on_image is not None:
            on_image(p.stem)
    return pd.DataFrame(rows, columns=["image", *built, "error"])


def _pair(preds: list[Path], folder: str | Path | None, what: str) -> dict[str, Path]:
    if folder is None:
        return {}
    others = list_images(Path(folder))
    samples = pair_by_stem(preds, others, where=f"predictions vs {what} ({folder})")
    return {s.key: s.high for s in samples}


def _load(path: Path | None, pred: torch.Tensor, what: str) -> torch.Tensor | None:
    if path is None:
        return None
    t = to_tensor(read_image(path)).to(pred.device)
    if t.shape != pred.shape:
        raise ImageError(
            f"size mismatch: {what} {path} is {t.shape[3]}x{t.shape[2]}, "
            f"prediction is {pred.shape[3]}x{pred.shape[2]}"
        )
    return t
