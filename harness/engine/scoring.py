"""``llbench score``: score a folder of images produced elsewhere.

Predictions pair with references (``ref_dir``) and low-light inputs (``input_dir``, for metrics
such as LOE) by file stem. ``strip_suffix`` names a suffix that prediction stems carry and the
others do not: with ``strip_suffix="_lime"`` the prediction ``1_lime.png`` pairs with ``1.png``
(several suffixes may be given; the first that matches is removed). A prediction without a
reference or input, an unreadable image or a size mismatch fails that image only, and the failure
is reported in the ``error`` column; references without a prediction are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch

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
    strip_suffix: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per prediction: ``image`` (the name it pairs by: its file stem less
    ``strip_suffix``), one column per metric, and ``error`` (``None`` when scored)."""
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
    suffixes = _suffixes(strip_suffix)
    names = _names(preds, suffixes, pred_dir)
    refs = _by_stem(ref_dir, "references")
    lows = _by_stem(input_dir, "low-light inputs")
    rows = []
    for p in preds:
        name = names[p]
        row: dict[str, object] = {"image": name}
        try:
            pred = to_tensor(read_image(p)).to(dev)
            ref = _load(_match(refs, name, p, ref_dir, "reference", suffixes), pred, "reference")
            low = _load(_match(lows, name, p, input_dir, "input", suffixes), pred, "input")
            for name, metric in built.items():
                with torch.inference_mode():
                    row[name] = float(metric(pred, ref, low).reshape(-1)[0])
            row["error"] = None
        except LLBenchError as exc:
            row["error"] = str(exc)
        rows.append(row)
        if on_image is not None:
            on_image(name)
    return pd.DataFrame(rows, columns=["image", *built, "error"])


def _suffixes(strip_suffix: str | Sequence[str] | None) -> list[str]:
    if strip_suffix is None:
        return []
    items = [strip_suffix] if isinstance(strip_suffix, str) else list(strip_suffix)
    out = [s for item in items for s in (x.strip() for x in item.split(",")) if s]
    return sorted(out, key=len, reverse=True)  # "_lime_v2" before "_v2"


def pair_name(path: Path, suffixes: Sequence[str]) -> str:
    """The name ``path`` pairs by: its stem less the first of ``suffixes`` it ends with."""
    stem = path.stem
    for s in suffixes:
        if stem.endswith(s) and len(stem) > len(s):
            return stem[: -len(s)]
    return stem


def _names(preds: list[Path], suffixes: list[str], folder: str | Path) -> dict[Path, str]:
    names: dict[Path, str] = {}
    seen: dict[str, Path] = {}
    for p in preds:
        name = pair_name(p, suffixes)
        if name in seen:
            raise ConfigError(
                f"two predictions in {folder} pair by the same name {name!r}: {seen[name].name} "
                f"and {p.name}; rename one, or change --strip-suffix"
            )
        seen[name] = p
        names[p] = name
    return names


def _by_stem(folder: str | Path | None, what: str) -> dict[str, Path]:
    if folder is None:
        return {}
    files = list_images(Path(folder))
    if not files:
        raise ImageError(f"no {what} in {folder}")
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise ConfigError(
                f"two {what} in {folder} share the stem {f.stem!r}: {out[f.stem].name} and {f.name}"
            )
        out[f.stem] = f
    return out


def _match(
    files: dict[str, Path],
    name: str,
    pred: Path,
    folder: str | Path | None,
    what: str,
    suffixes: list[str],
) -> Path | None:
    if folder is None:
        return None
    found = files.get(name)
    if found is None:
        hint = "" if suffixes else "; if prediction names carry a suffix, pass --strip-suffix"
        raise ImageError(
            f"the prediction {pred.name} has no {what} named {name}.* in {folder}{hint}"
        )
    return found


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
