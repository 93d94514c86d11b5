"""SLLEN's alternating training mechanism (paper Sec. II-B, Algorithm 1), resumable.

Two optimizers (Adam with PyTorch's default betas and eps, "ADAM optimizer is utilized with
default parameters", Sec. III-A): ``opt_S`` over SSaN's parameters (the shared encoder plus the
SS-only stage, ``D_S`` and classifier) and ``opt_L`` over LLEmN's (the shared encoder plus HSEB,
HSBAB, RSAEB, FFB and ``D_L``). One iteration of Algorithm 1:

1. SS stage: one batch of the segmentation data; cross-entropy; step ``opt_S``;
2. LLE stage: one batch of the paired enhancement data; SSaN gives ``S`` and ``F_e`` for the
   low-light input (without gradient, see :class:`~.model.SLLENNet`); LLEmN's total loss (Eq.
   11); step ``opt_L``.

The two loaders cycle independently (each reshuffles at its own epoch boundary: the SS and LLE
datasets differ in size, "asymmetric" in the paper). Both stages' losses are logged
(``ss/ce``; ``lle/loss`` and ``lle/<term>``), so a report shows both curves.

``schedule = "independent"`` is SLLEN-4 (Table II): SSaN (with its own encoder) is trained for
all its iterations first, then LLEmN with the trained SSaN providing semantics.

Learning rate [R: lost]: constant, then cosine decay to ``lr_min`` over the last
``1 - cosine_from`` of each stage's steps. Resumption: every ``checkpoint_every`` iterations the
network, both optimizers and schedulers, the position and ``G`` are saved through
``ctx.save_checkpoint``; batches depend only on the seed and the step, so a resumed run sees the
very batches an uninterrupted one would.

Segmentation data: the dataset named by ``segmentation_dataset`` (``voc-dark``, darkened PASCAL
VOC 2012, by default; ``scenes`` offline), split ``segmentation_split``, opened with
``ctx.open_dataset``. Whether the paper darkened its SS images is not stated [R: it does, since
SSaN segments the low-light input at test time]: ``segmentation_images = "dark"`` uses the
dataset's darkened images, or darkens the normal-light ones on the fly (per crop, with
:func:`llbench.datasets.lowlight_model.darken_with_params` seeded by seed, step and item) where
the split has none; ``"normal"`` uses the normal-light images. SS crops get a random horizontal
flip [R]; LLE crops the flips and 90-degree rotations of :class:`llbench.api.Patches`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from llbench.api import Patches, TrainContext, paired_items
from llbench.errors import ConfigError, DatasetError, LLBenchError, MethodOutputError

from . import losses
from .model import SLLENNet

ALTERNATIVE = (
    'set segmentation_dataset = "scenes" in a --config TOML file (generated offline, with masks)'
)


# -- parameter groups --------------------------------------------------------------------------
def _unique(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen and p.requires_grad:
            seen.add(id(p))
            out.append(p)
    return out


def ssan_parameters(net: SLLENNet) -> list[nn.Parameter]:
    """What ``opt_S`` steps: the shared encoder (when shared) and SSaN's own parts."""
    shared = list(net.encoder.parameters()) if net.shared_encoder else []
    return _unique(shared + list(net.ssan.parameters()))


def llemn_parameters(net: SLLENNet) -> list[nn.Parameter]:
    """What ``opt_L`` steps: the shared encoder and LLEmN's own parts."""
    if net.llemn is None:
        raise ConfigError("this network has no LLEmN to train")
    return _unique(list(net.encoder.parameters()) + list(net.llemn.parameters()))


def cosine_tail(steps: int, start: float, lr: float, lr_min: float):
    """LambdaLR factor: 1 until ``start * steps``, then cosine from 1 to ``lr_min / lr``."""
    floor = lr_min / lr if lr > 0 else 0.0
    begin = int(round(max(0.0, min(1.0, start)) * steps))
    span = max(1, steps - begin)

    def factor(step: int) -> float:
        if step < begin:
            return 1.0
        t = min(1.0, (step - begin) / span)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


# -- segmentation data -------------------------------------------------------------------------
def dataset_classes(name: str) -> tuple[str, ...] | None:
    """Label names of a registered dataset with masks (its ``classes``), or None if unknown."""
    from llbench.pluginhost.host import get_host

    try:
        spec = get_host().dataset(name)
    except LLBenchError:
        return None
    if name == "voc-dark":
        from llbench.segmenters import VOC_CLASSES

        return VOC_CLASSES
    try:
        ds = spec.build(Path("/nonexistent-llbench-root"))
    except Exception:  # noqa: BLE001 - a dataset whose constructor touches files
        return None
    classes = tuple(getattr(ds, "classes", ()) or ())
    return classes or None


@dataclass
class SegmentationData:
    """Deterministic SS batches: aligned image/mask crops, flipped, optionally darkened."""

    patches: Patches
    darken: bool
    seed: int
    num_classes: int
    info: dict[str, Any] = field(default_factory=dict)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, masks = self.patches.batch(step)
        g = torch.Generator().manual_seed(self.seed * 15_485_863 + step)
        flips = torch.randint(0, 2, (images.shape[0],), generator=g).bool()
        images[flips] = images[flips].flip(-1)
        masks[flips] = masks[flips].flip(-1)
        if self.darken:
            from llbench.datasets.lowlight_model import darken_with_params

            out = []
            for i, img in enumerate(images):
                arr = (img.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
                rng = np.random.default_rng([self.seed, step, i])
                dark, _ = darken_with_params(arr, rng)
                out.append(torch.from_numpy(dark).permute(2, 0, 1).float() / 255.0)
            images = torch.stack(out)
        bad = masks[(masks != losses.IGNORE_INDEX) & ((masks < 0) | (masks >= self.num_classes))]
        if bad.numel():
            raise DatasetError(
                f"segmentation mask label {int(bad[0])} is outside SSaN's {self.num_classes} "
                f"classes (0-{self.num_classes - 1}, 255 = ignore)"
            )
        return images, masks


def open_segmentation_data(
    ctx: TrainContext, cfg: Mapping[str, Any], num_classes: int
) -> SegmentationData:
    """The SS training data named by the config (see the module docstring)."""
    name, split = str(cfg["segmentation_dataset"]), str(cfg["segmentation_split"])
    mode = str(cfg["segmentation_images"])
    try:
        ds = ctx.open_dataset(name)
        samples = _segmentation_samples(ds, split)
    except LLBenchError as exc:
        raise DatasetError(
            f"sllen: the segmentation data of the SS stage ({name!r}, split {split!r}) is not "
            f"available: {str(exc).rstrip('.')}. Place it, or {ALTERNATIVE}."
        ) from exc
    if not samples:
        raise DatasetError(f"sllen: {name} {split} has no images; {ALTERNATIVE}")
    if any(s.mask is None for s in samples):
        raise DatasetError(
            f"sllen: {name} {split} has no segmentation masks; the SS stage needs them "
            f"({ALTERNATIVE})"
        )
    has_dark = all(s.high is not None and s.low != s.high for s in samples)
    if mode == "dark" and has_dark:
        items, darken, how = [(s.low, s.mask) for s in samples], False, "the dataset's darkened"
    elif mode == "dark":
        items, darken = [(s.high or s.low, s.mask) for s in samples], True
        how = "normal-light, darkened on the fly (llbench.datasets.lowlight_model)"
    else:
        if any(s.high is None for s in samples):
            raise DatasetError(f"sllen: {name} {split} has no normal-light images")
        items, darken, how = [(s.high, s.mask) for s in samples], False, "normal-light"
    patches = Patches(
        items,
        patch=int(cfg["ss_patch"]),
        batch_size=int(cfg["ss_batch_size"]),
        seed=ctx.seed + 1,
        kinds=("image", "mask"),
        augment=False,
        cache_mb=float(cfg["cache_mb"]),
    )
    info = {
        "dataset": name,
        "split": split,
        "images": len(items),
        "classes": num_classes,
        "image_kind": how,
    }
    return SegmentationData(patches, darken, ctx.seed, num_classes, info)


def _segmentation_samples(ds: Any, split: str) -> list[Any]:
    """``split`` of ``ds``; for ``voc-dark``, whose published splits are VOC val only, the VOC
    2012 segmentation ``train`` list read from the same VOC folder (disjoint from val; no dark
    files exist for it, so it is darkened on the fly)."""
    if split in ds.splits:
        return ds.samples(split)
    voc = getattr(ds, "voc", None)
    if ds.name == "voc-dark" and voc is not None and split in ("train", "trainval"):
        from llbench.api.datasets import Sample

        listing = voc / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not listing.is_file():
            raise DatasetError(f"missing {listing} (PASCAL VOC 2012). {ds.where_to_get()}")
        ids = [ln.split()[0] for ln in listing.read_text().splitlines() if ln.strip()]
        out = []
        for i in ids:
            img, mask = voc / "JPEGImages" / f"{i}.jpg", voc / "SegmentationClass" / f"{i}.png"
            if not img.is_file() or not mask.is_file():
                missing = img if not img.is_file() else mask
                raise DatasetError(f"VOC 2012 is incomplete: missing {missing}")
            out.append(Sample(i, img, img, mask))
        return out
    raise DatasetError(f"dataset {ds.name!r} has no split {split!r}; its splits: {ds.splits}")


# -- the two stages ------------------------------------------------------------------------------
def ss_step(
    net: SLLENNet,
    images: torch.Tensor,
    masks: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
) -> dict[str, float]:
    """One SS-stage step (Algorithm 1): cross-entropy of SSaN on a segmentation batch."""
    optimizer.zero_grad(set_to_none=True)
    logits, _ = net.segment(images)
    loss = losses.segmentation_loss(logits, masks)
    if not torch.isfinite(loss):
        raise MethodOutputError(f"sllen: the SS loss became {loss.item()}; lower ss_lr")
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return {"ss/ce": float(loss.detach())}


@dataclass
class LLEObjective:
    """The LLE stage's total loss (Eq. 11) with its weights, ``G`` and the perceptual network."""

    weights: Mapping[str, float]
    grad_target: float
    perceptual: losses.PerceptualLoss | None = None
    beta: float = 1.0
    eps: float = 1e-3

    def terms(
        self, net: SLLENNet, low: torch.Tensor, high: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        out = net(low)
        y, w = out.enhanced, self.weights
        terms: dict[str, torch.Tensor] = {}
        if w.get("smooth_l1", 0):
            terms["smooth_l1"] = w["smooth_l1"] * losses.smooth_l1(y, high, self.beta)
        if w.get("perceptual", 0) and self.perceptual is not None:
            terms["perceptual"] = w["perceptual"] * self.perceptual(y, high)
        if w.get("kd", 0):
            terms["kd"] = w["kd"] * losses.distillation(out.encoder, out.decoder)
        if w.get("itv", 0):
            terms["itv"] = w["itv"] * losses.illumination_tv(low, y, self.eps)
        if w.get("grad", 0):
            terms["grad"] = w["grad"] * losses.gradient_loss(y, self.grad_target)
        if not terms:
            raise ConfigError("sllen: every LLE loss weight is 0; nothing to train")
        return terms


def lle_step(
    net: SLLENNet,
    low: torch.Tensor,
    high: torch.Tensor,
    objective: LLEObjective,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
) -> dict[str, float]:
    """One LLE-stage step (Algorithm 1): LLEmN's total loss on an enhancement batch."""
    optimizer.zero_grad(set_to_none=True)
    terms = objective.terms(net, low, high)
    loss = torch.stack(list(terms.values())).sum()
    if not torch.isfinite(loss):
        raise MethodOutputError(f"sllen: the LLE loss became {loss.item()}; lower lr")
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    values = {"lle/loss": float(loss.detach())}
    values.update({f"lle/{k}": float(v.detach()) for k, v in terms.items()})
    return values


# -- the loop ------------------------------------------------------------------------------------
def train(
    net: SLLENNet,
    ctx: TrainContext,
    cfg: Mapping[str, Any],
    objective: LLEObjective,
    seg: SegmentationData,
    device: torch.device,
) -> dict[str, Any]:
    """Algorithm 1 (or SLLEN-4's independent schedule), resumable; returns a summary."""
    iterations = int(cfg["iterations"])
    if iterations < 1:
        raise ConfigError("sllen: iterations must be >= 1")
    independent = cfg["schedule"] == "independent"
    enh = Patches(
        paired_items(ctx.samples),
        patch=int(cfg["patch"]),
        batch_size=int(cfg["batch_size"]),
        seed=ctx.seed,
        augment=True,
        cache_mb=float(cfg["cache_mb"]),
    )
    opt_s = torch.optim.Adam(ssan_parameters(net), lr=float(cfg["ss_lr"]))
    opt_l = torch.optim.Adam(llemn_parameters(net), lr=float(cfg["lr"]))
    start, lr_min = float(cfg["cosine_from"]), float(cfg["lr_min"])
    sch_s = torch.optim.lr_scheduler.LambdaLR(
        opt_s, cosine_tail(iterations, start, float(cfg["ss_lr"]), lr_min)
    )
    sch_l = torch.optim.lr_scheduler.LambdaLR(
        opt_l, cosine_tail(iterations, start, float(cfg["lr"]), lr_min)
    )
    total = 2 * iterations if independent else iterations
    done = 0
    state = ctx.load_checkpoint()
    if state is not None:
        if state.get("method") != "sllen":
            raise ConfigError(
                f"{ctx.checkpoint_path} is a checkpoint of {state.get('method')!r}, not 'sllen'; "
                "delete it to start over"
            )
        net.load_state_dict(state["net"])
        opt_s.load_state_dict(state["opt_s"])
        opt_l.load_state_dict(state["opt_l"])
        sch_s.load_state_dict(state["sched_s"])
        sch_l.load_state_dict(state["sched_l"])
        done = int(state["done"])
        objective.grad_target = float(state["grad_target"])
    resumed = done
    every = max(1, int(cfg["checkpoint_every"]))

    def save() -> None:
        ctx.save_checkpoint(
            {
                "method": "sllen",
                "done": done,
                "total": total,
                "grad_target": objective.grad_target,
                "net": net.state_dict(),
                "opt_s": opt_s.state_dict(),
                "opt_l": opt_l.state_dict(),
                "sched_s": sch_s.state_dict(),
                "sched_l": sch_l.state_dict(),
            }
        )

    def ss(step: int) -> dict[str, float]:
        images, masks = seg.batch(step)
        return ss_step(net, images.to(device), masks.to(device), opt_s, sch_s)

    def lle(step: int) -> dict[str, float]:
        low, high = enh.batch(step)
        return lle_step(net, low.to(device), high.to(device), objective, opt_l, sch_l)

    started = time.perf_counter()
    net.train()
    try:
        while done < total:
            if not independent:
                values = {**ss(done), **lle(done)}
            elif done < iterations:
                values = ss(done)
            else:
                values = lle(done - iterations)
            done += 1
            ctx.log(done, values)
            ctx.progress(done, total)
            if done % every == 0 or done == total:
                save()
    finally:
        net.eval()
    return {
        "schedule": cfg["schedule"],
        "iterations": iterations,
        "resumed_from": resumed,
        "enhancement_pairs": len(enh),
        "lle_steps_per_epoch": enh.steps_per_epoch,
        "ss_steps_per_epoch": seg.patches.steps_per_epoch,
        "seconds": round(time.perf_counter() - started, 3),
    }
