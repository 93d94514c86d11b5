"""Training of CRNet (fully supervised) and of the Multi-Consistency Mean Teacher (Sec. 4.2, 5.4).

Schedule (Sec. 5.4, defaults): Adam (default betas), lr ``5e-4`` halved at epochs 20, 40, 60
and 90, 100 epochs, ``patches_per_image = 30`` random patches of each image per epoch. The
scheduler steps per optimizer step, with milestones at ``epoch x steps_per_epoch``.

Epochs. One epoch is ``patches_per_image`` passes over the training split in batches of
``batch_size``: ``steps_per_epoch = patches_per_image x ceil(n_train / batch_size)``, where
``n_train`` counts every training image, labelled or not. Fully supervised CRNet on all labels
thus sees each image exactly 30 times per epoch (the paper's setting). Every batch is drawn by
:class:`llbench.api.Patches`, one pass per ``ceil(n / batch)`` steps, so a stream over fewer
images (the labelled ones) simply makes more passes; a stream with fewer images than its share
of the batch yields all its images in every batch. Runs with 10 % labels (CRNet (10 %),
MCMT) therefore make exactly as many optimizer steps with the same batch size as the fully
supervised run, so Table 2's rows differ only in what the loss sees.

Choices where the paper is silent (all config keys): ``patch_size`` 100 (PReNet's; the number
was lost from the paper's text), ``batch_size`` 16 of which ``labelled_per_batch`` 8 are
labelled in MCMT, no augmentation (``augment``; the paper names random crops only),
``teacher_noise_std`` 0.01 (Gaussian ``eta`` on [0, 1] images, not clamped), the EMA decay
0.99 from the first step (no warm-up), no consistency ramp-up, PyTorch's default
initialisation.

Labelled subset. ``label_fraction`` (MCMT default 0.1, the paper's; CRNet default 1.0) picks
``round(label_fraction x n)`` training pairs (Python rounding: 485 LOL pairs -> 48) by a seeded
permutation of the samples sorted by key (:func:`select_labelled`). The other images are used
through their low-light file only: the unlabelled stream is a :class:`~llbench.api.Patches`
over low-light paths, so their references are never opened. The labelled keys are recorded in
:meth:`CRNetMethod.provenance`.

Checkpoints. :func:`llbench.api.run_phases` keeps the student and (MCMT) the teacher, the
optimizer and scheduler; batches and the teacher's noise depend only on the seed and the step,
so a resumed run gives the same weights as an uninterrupted one. The weights file is the
student's plain state dict (evaluation uses the student).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from llbench.api import (
    Patches,
    Phase,
    TrainableMethod,
    TrainContext,
    count_parameters,
    paired_items,
)
from llbench.api.training import epochs_to_steps
from llbench.config import merge
from llbench.errors import ConfigError, DatasetError

from . import CRNET_CONFIG, MCMT_CONFIG, losses
from .model import CRNet, build_crnet


def select_labelled(keys: Sequence[str], fraction: float, seed: int) -> list[str]:
    """The labelled keys: ``round(fraction x n)`` of ``keys`` chosen by a permutation seeded
    with ``seed`` (independent of the input order), returned sorted."""
    if not 0.0 < float(fraction) <= 1.0:
        raise ConfigError(f"label_fraction must be in (0, 1], got {fraction}")
    ordered = sorted(set(keys))
    if len(ordered) != len(keys):
        raise DatasetError("training samples have duplicate keys; cannot select labelled pairs")
    count = round(float(fraction) * len(ordered))
    if count < 1:
        raise ConfigError(
            f"label_fraction {fraction} of {len(ordered)} training pairs selects no labelled pair"
        )
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + 17)
    perm = torch.randperm(len(ordered), generator=g).tolist()
    return sorted(ordered[i] for i in perm[:count])


def teacher_noise(shape: Sequence[int], std: float, seed: int, step: int) -> torch.Tensor:
    """The teacher's input noise ``eta ~ N(0, std^2)`` of training step ``step`` (on the CPU,
    from a generator seeded by ``seed`` and ``step``, so resumed runs draw the same noise)."""
    g = torch.Generator().manual_seed(int(seed) * 7_368_787 + 104_729 * int(step) + 3)
    return torch.randn(tuple(shape), generator=g) * float(std)


class CRNetMethod(TrainableMethod):
    """CRNet trained with the progressive enhancement loss ``L_PE`` (fully supervised)."""

    name = "crnet"
    defaults: Mapping[str, Any] = CRNET_CONFIG
    net: CRNet

    def __init__(self, config: Mapping[str, Any], device: torch.device | str):
        super().__init__(merge(self.defaults, config), device)
        self._check_config()
        self.net = build_crnet(self.config).to(self.device).eval()
        self.labelled: list[str] = []
        self.n_unlabelled = 0
        self.training_info: dict[str, Any] = {}

    # -- inference ---------------------------------------------------------------------------
    @torch.no_grad()
    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        out, _ = self.net(low.to(self.device, torch.float32))
        return out.clamp(0.0, 1.0)

    def provenance(self) -> dict[str, Any]:
        info: dict[str, Any] = {"params": count_parameters(self.net)}
        if self.labelled:
            info["labelled"] = list(self.labelled)
            info["n_labelled"] = len(self.labelled)
            info["n_unlabelled"] = self.n_unlabelled
        if self.training_info:
            info["training"] = dict(self.training_info)
        return info

    # -- training ----------------------------------------------------------------------------
    def saved_modules(self) -> dict[str, torch.nn.Module]:
        """Every module the training checkpoint holds (frameworks wrapping the phases add
        theirs)."""
        return {"student": self.net}

    def split_samples(self, ctx: TrainContext) -> tuple[list[Any], list[Any]]:
        """``(labelled, unlabelled)`` training samples; only samples with a reference can be
        labelled. Records the labelled keys for :meth:`provenance`."""
        with_ref = [s for s in ctx.samples if s.high is not None]
        if not with_ref:
            paired_items(ctx.samples)  # raises, naming the first sample without a reference
        keys = set(
            select_labelled([s.key for s in with_ref], self.config["label_fraction"], ctx.seed)
        )
        labelled = sorted((s for s in with_ref if s.key in keys), key=lambda s: s.key)
        unlabelled = sorted((s for s in ctx.samples if s.key not in keys), key=lambda s: s.key)
        self.labelled = [s.key for s in labelled]
        self.n_unlabelled = len(unlabelled)
        return labelled, unlabelled

    def steps_per_epoch(self, n_train: int) -> int:
        """``patches_per_image x ceil(n_train / batch_size)`` (see the module docstring)."""
        return int(self.config["patches_per_image"]) * math.ceil(
            n_train / int(self.config["batch_size"])
        )

    def optimizer_factories(self, steps_per_epoch: int):
        cfg = self.config
        milestones = [int(round(float(m) * steps_per_epoch)) for m in cfg["lr_milestones"]]

        def make_optimizer(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
            return torch.optim.Adam(params, lr=float(cfg["lr"]))

        def make_scheduler(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
            return torch.optim.lr_scheduler.MultiStepLR(
                opt, milestones=milestones, gamma=float(cfg["lr_gamma"])
            )

        return make_optimizer, make_scheduler

    def patches(self, items: list[tuple], *, batch: int, seed: int, kinds: tuple) -> Patches:
        return Patches(
            items,
            patch=int(self.config["patch_size"]),
            batch_size=batch,
            seed=seed,
            kinds=kinds,
            augment=bool(self.config["augment"]),
            cache_mb=float(self.config["cache_mb"]),
        )

    def training_phases(self, ctx: TrainContext) -> list[Phase]:
        """One phase ``supervised``: ``L_PE`` on batches ``(low, high)`` of labelled patches;
        its output is the final enhanced patch batch."""
        labelled, _ = self.split_samples(ctx)
        cfg = self.config
        data = self.patches(
            paired_items(labelled),
            batch=int(cfg["batch_size"]),
            seed=ctx.seed,
            kinds=("image", "image"),
        )
        per_epoch = self.steps_per_epoch(len(ctx.samples))
        steps = epochs_to_steps(float(cfg["epochs"]), per_epoch, int(cfg["max_steps"]))
        make_opt, make_sched = self.optimizer_factories(per_epoch)
        lambda_ms = float(cfg["lambda_ms"])
        last: dict[str, float] = {}

        def loss(step: int, batch: tuple[torch.Tensor, ...]):
            low, high = batch
            final, mids = self.net(low)
            last["psnr"] = losses.psnr(final, high)
            return final, losses.progressive_terms(final, mids, high, lambda_ms)

        self.training_info.update({"steps_per_epoch": per_epoch, "steps": steps})
        return [
            Phase(
                name="supervised",
                steps=steps,
                batches=data.batch,
                loss=loss,
                modules=[self.net],
                make_optimizer=make_opt,
                make_scheduler=make_sched,
                extra_step=lambda step, batch, output: {"psnr_student": last["psnr"]},
            )
        ]

    def fit(self, ctx: TrainContext) -> None:
        phases = self.training_phases(ctx)  # creates the teacher that saved_modules() names
        self.training_info.update(self.fit_phases(ctx, self.name, phases, self.saved_modules()))

    # -- helpers -----------------------------------------------------------------------------
    def _check_config(self) -> None:
        cfg = self.config
        for key in ("width", "groups", "recurrences", "blocks", "batch_size", "patches_per_image"):
            if int(cfg[key]) < 1:
                raise ConfigError(f"{self.name}: {key} must be >= 1, got {cfg[key]}")
        if int(cfg["patch_size"]) < 11:
            raise ConfigError(
                f"{self.name}: patch_size must be >= 11 (the SSIM window of L_E), "
                f"got {cfg['patch_size']}"
            )
        if cfg["lam_energy"] not in ("han-code", "paper"):
            raise ConfigError(f"{self.name}: lam_energy must be 'han-code' or 'paper'")
        if not 0.0 < float(cfg["label_fraction"]) <= 1.0:
            raise ConfigError(f"{self.name}: label_fraction must be in (0, 1]")


class MCMTMethod(CRNetMethod):
    """CRNet as the student of the Multi-Consistency Mean Teacher (Sec. 4.2.2, Fig. 4)."""

    name = "mcmt"
    defaults = MCMT_CONFIG
    teacher: CRNet | None = None

    def saved_modules(self) -> dict[str, torch.nn.Module]:
        if self.teacher is None:
            raise RuntimeError("the teacher exists once training_phases() has been called")
        return {"student": self.net, "teacher": self.teacher}

    def make_teacher(self) -> CRNet:
        """A copy of the student that takes no gradient (updated only by :func:`ema_update`)."""
        teacher = copy.deepcopy(self.net)
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher.eval()

    def training_phases(self, ctx: TrainContext) -> list[Phase]:
        """One phase ``semi``: batches ``(low_l, high_l, low_u)``; terms of ``L_SSL``; the EMA
        update in ``extra_step``. The output is the student's final output on ``low_l``."""
        cfg = self.config
        labelled, unlabelled = self.split_samples(ctx)
        if not unlabelled:
            raise ConfigError(
                "mcmt: no unlabelled training images (label_fraction selects every pair); lower "
                "label_fraction or train crnet for fully supervised learning"
            )
        n_lab = int(cfg["labelled_per_batch"])
        n_unl = int(cfg["batch_size"]) - n_lab
        if n_lab < 1 or n_unl < 1:
            raise ConfigError(
                "mcmt: labelled_per_batch must be at least 1 and smaller than batch_size"
            )
        lab = self.patches(
            paired_items(labelled), batch=n_lab, seed=ctx.seed, kinds=("image", "image")
        )
        unl = self.patches(
            [(s.low,) for s in unlabelled], batch=n_unl, seed=ctx.seed + 1, kinds=("image",)
        )
        per_epoch = self.steps_per_epoch(len(ctx.samples))
        steps = epochs_to_steps(float(cfg["epochs"]), per_epoch, int(cfg["max_steps"]))
        make_opt, make_sched = self.optimizer_factories(per_epoch)
        self.teacher = self.make_teacher()
        teacher = self.teacher
        std, decay = float(cfg["teacher_noise_std"]), float(cfg["ema_decay"])
        lam_ms, lam_mc, lam_mcr = (float(cfg[k]) for k in ("lambda_ms", "lambda_mc", "lambda_mcr"))
        seed = ctx.seed
        last: dict[str, float] = {}

        def batches(step: int) -> tuple[torch.Tensor, ...]:
            return (*lab.batch(step), *unl.batch(step))

        def loss(step: int, batch: tuple[torch.Tensor, ...]):
            low_l, high_l, low_u = batch
            low = torch.cat([low_l, low_u])
            final, mids = self.net(low)
            noise = teacher_noise(low.shape, std, seed, step).to(low.device, low.dtype)
            with torch.no_grad():
                t_final, t_mids = teacher(low + noise)
            n = low_l.shape[0]
            terms = losses.progressive_terms(final[:n], [m[:n] for m in mids], high_l, lam_ms)
            terms.update(losses.mcr_terms((final, mids), (t_final, t_mids), lam_mc, lam_mcr))
            last["psnr_student"] = losses.psnr(final[:n], high_l)
            last["psnr_teacher"] = losses.psnr(t_final[:n], high_l)
            return final[:n], terms

        def extra_step(step: int, batch: tuple[torch.Tensor, ...], output: torch.Tensor):
            losses.ema_update(teacher, self.net, decay)
            return dict(last)

        self.training_info.update(
            {"steps_per_epoch": per_epoch, "steps": steps, "batch": [n_lab, n_unl]}
        )
        return [
            Phase(
                name="semi",
                steps=steps,
                batches=batches,
                loss=loss,
                modules=[self.net],
                make_optimizer=make_opt,
                make_scheduler=make_sched,
                extra_step=extra_step,
            )
        ]
