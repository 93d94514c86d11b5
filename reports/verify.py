"""``llbench verify KEY``: recompute a stored run and say how far the new numbers are from it.

The method is built from the run's stored effective config, its weights file is loaded (its
sha256 checked against the stored one), the seed is set as the run set it, and every image the
run finished is enhanced again, quantised to 8 bits and scored with the run's per-image metrics
that are available here. The result is the largest per-image difference of the outputs (in 8-bit
levels) and of each metric, with the image where it occurs. Nothing is written to the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llbench import paths
from llbench.errors import ConfigError, WeightsError
from llbench.store.database import Store
from llbench.store.frames import run_fields


@dataclass
class VerifyResult:
    key: str
    n_images: int = 0
    max_pixel: int = 0
    max_pixel_image: str | None = None
    images_differing: int = 0
    max_score: dict[str, tuple[float, str]] = field(default_factory=dict)
    skipped_metrics: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def ok(self, tolerance: float = 1e-6) -> bool:
        """Outputs identical, every score within ``tolerance``, no output missing."""
        return (
            self.max_pixel == 0
            and all(d <= tolerance for d, _ in self.max_score.values())
            and not self.missing
        )

    def summary(self) -> str:
        lines = [
            f"run {self.key}: recomputed {self.n_images} image(s)",
            f"outputs: largest difference {self.max_pixel} 8-bit level(s)"
            + (f" ({self.max_pixel_image})" if self.max_pixel_image else "")
            + f"; {self.images_differing} image(s) differ",
        ]
        for metric, (d, image) in sorted(self.max_score.items()):
            lines.append(f"{metric}: largest difference {d:.3g} ({image})")
        if self.skipped_metrics:
            lines.append("not recomputed (unavailable here): " + ", ".join(self.skipped_metrics))
        if self.missing:
            lines.append(
                f"{len(self.missing)} stored output(s) are missing: " + ", ".join(self.missing[:5])
            )
        return "\n".join(lines)


def verify_run(
    key: str,
    *,
    home: str | Path | None = None,
    data_root: str | Path | None = None,
    device: str = "auto",
) -> VerifyResult:
    import torch

    from llbench.device import resolve_device
    from llbench.engine.execute import checked_enhance, score_images
    from llbench.engine.training import seed_everything
    from llbench.io.hashing import sha256_file
    from llbench.io.images import quantize, read_image, to_tensor, to_uint8
    from llbench.pluginhost.host import get_host
    from llbench.reports.records import resolve_run

    home_dir = paths.home(home)
    store = Store(home_dir)
    row = resolve_run(store, key)
    f = run_fields(row, home_dir)
    host = get_host(home_dir, data_root)
    spec = host.method(row["method"])
    dspec = host.dataset(row["dataset"])
    ds = dspec.build(paths.data_root(data_root, home_dir))
    samples = {s.key: s for s in ds.samples(row["split"])}
    dev = resolve_device(device)
    seed_everything(int(f["seed"] or 0))
    meth = spec.build(f["config"], dev)
    if f["weights"]:
        wpath = Path(f["weights"])
        if not wpath.is_file():
            raise WeightsError(
                f"run {row['key']} used weights {wpath}, which is gone; place the file there "
                "again to verify the run"
            )
        digest = sha256_file(wpath)
        if f["weights_hash"] and digest != f["weights_hash"]:
            raise WeightsError(
                f"weights {wpath} changed since run {row['key']} (sha256 {digest[:12]} vs "
                f"{str(f['weights_hash'])[:12]})"
            )
        meth.load_weights(wpath)
    stored = {}
    for r in store.score_rows(row["key"]):
        stored.setdefault(r["image"], {})[r["metric"]] = r["value"]
    names = sorted({m for img, s in stored.items() if img != "*" for m in s})
    metrics = {}
    res = VerifyResult(row["key"])
    for n in names:
        mspec = host.registry("metric").get(n) if n in host.registry("metric") else None
        per_image = mspec is not None and mspec.kind in ("full-reference", "no-reference")
        if not per_image or mspec.available() is not None:
            res.skipped_metrics.append(n)
            continue
        metrics[n] = mspec.build(dev, {})
    for item in store.items(row["key"]):
        if item["status"] != "ok" or not item["output"]:
            continue
        s = samples.get(item["image"])
        out_path = home_dir / item["output"]
        if s is None or not out_path.is_file():
            res.missing.append(item["image"])
            continue
        low = to_tensor(read_image(s.low))
        ref = to_tensor(read_image(s.high)) if s.high is not None else None
        out = checked_enhance(meth, low.to(dev))
        new = to_uint8(out[0:1].cpu())
        old = read_image(out_path)
        diff = (
            int(np.abs(new.astype(int) - old.astype(int)).max()) if new.shape == old.shape else 255
        )
        res.n_images += 1
        if diff:
            res.images_differing += 1
        if res.max_pixel_image is None or diff > res.max_pixel:
            res.max_pixel, res.max_pixel_image = diff, item["image"]
        pred = quantize(out[0:1])
        with torch.inference_mode():
            scores, _ = score_images(
                metrics, pred, None if ref is None else ref.to(dev), low.to(dev)
            )
        for m, v in scores.items():
            before = stored.get(item["image"], {}).get(m)
            if before is None or math.isnan(v):
                continue
            d = abs(float(v) - float(before))
            if m not in res.max_score or d > res.max_score[m][0]:
                res.max_score[m] = (d, item["image"])
    if res.n_images == 0 and not res.missing:
        raise ConfigError(f"run {row['key']} has no finished images to verify")
    return res
