"""Supervised training building blocks shared by methods and by frameworks that wrap them.

Two pieces:

* :class:`Patches`: deterministic, resumable batches of aligned random crops of paired files
  (low/normal-light pairs, image/mask pairs, or single images). Batch ``k`` depends only on the
  seed and ``k``, so an interrupted run resumes on the very batch it would have seen.
* :class:`Phase` and :func:`run_phases`: a method's training as a sequence of phases (RetinexNet:
  decomposition then relighting; KinD: three sub-networks; most methods: one), each minimising
  the method's own weighted loss terms with its own optimizer and schedule. :func:`run_phases`
  checkpoints every ``checkpoint_every`` steps (modules, optimizer, scheduler, phase, step) and
  resumes mid-phase; losses are logged as ``<phase>/<term>``.

A method exposes its phases through :meth:`TrainableMethod.training_phases`; a framework such as
SKF takes them, wraps the last phase's ``loss`` with its own terms (and adds its modules'
parameters and an ``extra_step``, e.g. a discriminator update), and calls :func:`run_phases`
itself, so the base's training stays the base's own code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from llbench.errors import ConfigError, DatasetError, MethodOutputError

if TYPE_CHECKING:  # pragma: no cover
    from llbench.api.methods import TrainContext

Batch = tuple[torch.Tensor, ...]
LossFn = Callable[[int, Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def _read_rgb(path: Path) -> torch.Tensor:
    from llbench.io.images import read_image

    arr = read_image(path)
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()


def _read_labels(path: Path) -> torch.Tensor:
    from llbench.io.images import read_mask

    return torch.from_numpy(np.ascontiguousarray(read_mask(path))).unsqueeze(0)


READERS: dict[str, Callable[[Path], torch.Tensor]] = {"image": _read_rgb, "mask": _read_labels}


class Patches:
    """Batches of aligned random ``patch x patch`` crops of items made of several files.

    ``items``: one tuple of paths per item, e.g. ``(low, high)``; ``kinds`` names the reader of
    each position (``"image"``: RGB uint8 -> float in [0, 1]; ``"mask"``: labels -> int64).
    Every file of an item must have the same size; items smaller than ``patch`` are padded by
    reflection. ``augment`` applies the same random flip and 90-degree rotation to all files of
    an item (the usual augmentation of paired LLIE training). ``patch = 0`` returns whole images
    (then ``batch_size`` must be 1 unless all images share one size). Decoded files are cached
    in memory up to ``cache_mb``.
    """

    def __init__(
        self,
        items: Sequence[Sequence[Path]],
        *,
        patch: int,
        batch_size: int,
        seed: int,
        kinds: Sequence[str] = ("image", "image"),
        augment: bool = True,
        cache_mb: float = 512.0,
    ):
        if not items:
            raise DatasetError("no training items: the training split is empty")
        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        if any(len(it) != len(kinds) for it in items):
            raise DatasetError(f"every training item must have {len(kinds)} files ({kinds})")
        unknown = set(kinds) - set(READERS)
        if unknown:
            raise ConfigError(f"unknown file kinds {sorted(unknown)}; known: {sorted(READERS)}")
        self.items = [tuple(Path(p) for p in it) for it in items]
        self.kinds = tuple(kinds)
        self.patch = int(patch)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.augment = bool(augment)
        self._cache: dict[int, tuple[torch.Tensor, ...]] = {}
        self._budget = int(cache_mb * 2**20)
        self._used = 0

    def __len__(self) -> int:
        return len(self.items)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.items) / self.batch_size)

    def order(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(len(self.items), generator=g).tolist()

    def indices(self, step: int) -> list[int]:
        """The items of batch ``step`` (epochs reshuffle; the last batch of an epoch may be
        smaller)."""
        epoch, pos = divmod(step, self.steps_per_epoch)
        return self.order(epoch)[pos * self.batch_size : (pos + 1) * self.batch_size]

    def batch(self, step: int) -> Batch:
        """Batch ``step`` (0-based): one tensor per file position, ``N x C x P x P``."""
        g = torch.Generator().manual_seed(self.seed * 7_919 + step)
        crops = [self._crop(self._get(i), g) for i in self.indices(step)]
        out = []
        for pos, kind in enumerate(self.kinds):
            stacked = torch.stack([c[pos] for c in crops])
            out.append(stacked.float().div_(255.0) if kind == "image" else stacked[:, 0].long())
        return tuple(out)

    def _get(self, i: int) -> tuple[torch.Tensor, ...]:
        hit = self._cache.get(i)
        if hit is not None:
            return hit
        tensors = tuple(READERS[k](p) for k, p in zip(self.kinds, self.items[i], strict=True))
        sizes = {tuple(t.shape[-2:]) for t in tensors}
        if len(sizes) != 1:
            raise DatasetError(
                f"training item {[str(p) for p in self.items[i]]} has files of different sizes "
                f"{sorted(sizes)}"
            )
        n = sum(t.numel() * t.element_size() for t in tensors)
        if self._used + n <= self._budget:
            self._cache[i] = tensors
            self._used += n
        return tensors

    def _crop(self, ts: tuple[torch.Tensor, ...], g: torch.Generator) -> tuple[torch.Tensor, ...]:
        p = self.patch
        h, w = ts[0].shape[-2:]
        if p > 0 and (h < p or w < p):
            pad = (0, max(0, p - w), 0, max(0, p - h))
            ts = tuple(
                torch.nn.functional.pad(t[None].float(), pad, mode="reflect")[0].to(t.dtype)
                for t in ts
            )
            h, w = ts[0].shape[-2:]
        if p > 0:
            top = int(torch.randint(0, h - p + 1, (1,), generator=g))
            left = int(torch.randint(0, w - p + 1, (1,), generator=g))
            ts = tuple(t[:, top : top + p, left : left + p] for t in ts)
        if self.augment:
            flip = bool(torch.randint(0, 2, (1,), generator=g))
            rot = int(torch.randint(0, 4 if p > 0 else 1, (1,), generator=g))
            if flip:
                ts = tuple(t.flip(-1) for t in ts)
            if rot:
                ts = tuple(torch.rot90(t, rot, dims=(-2, -1)) for t in ts)
        return tuple(t.contiguous() for t in ts)


def paired_items(samples: Iterable[Any]) -> list[tuple[Path, Path]]:
    """``(low, high)`` of each sample; an error naming the first sample without a reference."""
    out = []
    for s in samples:
        if s.high is None:
            raise DatasetError(
                f"sample {s.key!r} has no normal-light reference: this method trains on paired "
                "data (choose a paired dataset, e.g. lol)"
            )
        out.append((s.low, s.high))
    return out


@dataclass
class Phase:
    """One phase of supervised training.

    ``loss(step, batch)`` returns the phase's output (what frameworks add terms on, e.g. the
    enhanced image) and its weighted loss terms, whose sum is minimised; ``step`` counts from 0
    within the phase. ``modules``: what this phase trains (its optimizer gets their parameters
    plus ``extra_parameters``). ``extra_step(step, batch, output)``, when set, runs after each
    optimizer step (e.g. a discriminator update) and returns values to log.
    """

    name: str
    steps: int
    batches: Callable[[int], Batch]
    loss: LossFn
    modules: Sequence[nn.Module]
    make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer]
    make_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None
    grad_clip_norm: float = 0.0
    extra_parameters: list[nn.Parameter] = field(default_factory=list)
    extra_step: Callable[[int, Batch, torch.Tensor], Mapping[str, float]] | None = None
    extra_state: Callable[[], dict[str, Any]] | None = None
    load_extra_state: Callable[[Mapping[str, Any]], None] | None = None

    def parameters(self) -> list[nn.Parameter]:
        seen: set[int] = set()
        params = []
        for p in [q for m in self.modules for q in m.parameters()] + list(self.extra_parameters):
            if id(p) not in seen and p.requires_grad:
                seen.add(id(p))
                params.append(p)
        return params


def run_phases(
    ctx: TrainContext,
    owner: str,
    phases: Sequence[Phase],
    saved: Mapping[str, nn.Module],
    *,
    device: torch.device,
    checkpoint_every: int = 100,
) -> dict[str, Any]:
    """Train ``phases`` in order, resumable; return a summary for the method's provenance.

    ``owner`` names the method (a checkpoint of another method is refused); ``saved`` maps names
    to every module whose weights the checkpoint holds (all phases' networks, plus a framework's
    own modules). Steps count over all phases for the progress bar and the log.
    """
    total = sum(p.steps for p in phases)
    offsets = np.cumsum([0] + [p.steps for p in phases]).tolist()
    every = max(1, int(checkpoint_every))
    state = ctx.load_checkpoint()
    start_phase, start_step = 0, 0
    if state is not None:
        if state.get("method") != owner:
            raise ConfigError(
                f"{ctx.checkpoint_path} is a checkpoint of {state.get('method')!r}, not "
                f"{owner!r}; delete it to start over"
            )
        for name, module in saved.items():
            module.load_state_dict(state["modules"][name])
        start_phase, start_step = int(state["phase"]), int(state["step"])
    resumed = offsets[start_phase] + start_step
    started = time.perf_counter()
    for index in range(start_phase, len(phases)):
        phase = phases[index]
        optimizer = phase.make_optimizer(phase.parameters())
        scheduler = phase.make_scheduler(optimizer) if phase.make_scheduler else None
        step = 0
        if state is not None and index == start_phase and state.get("optimizer") is not None:
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            if phase.load_extra_state is not None and state.get("extra") is not None:
                phase.load_extra_state(state["extra"])
            step = start_step

        def save(index=index, step_now=0, optimizer=optimizer, scheduler=scheduler, phase=phase):
            ctx.save_checkpoint(
                {
                    "method": owner,
                    "phase": index,
                    "step": step_now,
                    "modules": {n: m.state_dict() for n, m in saved.items()},
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "extra": phase.extra_state() if phase.extra_state else None,
                }
            )

        for m in phase.modules:
            m.train()
        try:
            while step < phase.steps:
                batch = tuple(t.to(device) for t in phase.batches(step))
                output, terms = phase.loss(step, batch)
                loss = torch.stack([v.reshape(()) for v in terms.values()]).sum()
                if not torch.isfinite(loss):
                    raise MethodOutputError(
                        f"{owner}: {phase.name} loss became {loss.item()} at step {step + 1}; "
                        "lower the learning rate or check the training data"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if phase.grad_clip_norm > 0:
                    torch.nn.utils.clip_grad_norm_(phase.parameters(), phase.grad_clip_norm)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                values = {f"{phase.name}/loss": float(loss.detach())}
                values.update({f"{phase.name}/{k}": float(v.detach()) for k, v in terms.items()})
                if phase.extra_step is not None:
                    extra = phase.extra_step(step, batch, output.detach())
                    values.update({f"{phase.name}/{k}": float(v) for k, v in extra.items()})
                step += 1
                done = offsets[index] + step
                ctx.log(done, values)
                ctx.progress(done, total)
                if step % every == 0 or step == phase.steps:
                    save(step_now=step)
        finally:
            for m in phase.modules:
                m.eval()
        if index + 1 < len(phases):  # the next phase starts from step 0 with a fresh optimizer
            ctx.save_checkpoint(
                {
                    "method": owner,
                    "phase": index + 1,
                    "step": 0,
                    "modules": {n: m.state_dict() for n, m in saved.items()},
                    "optimizer": None,
                    "scheduler": None,
                    "extra": None,
                }
            )
        state = None
    return {
        "phases": {p.name: p.steps for p in phases},
        "steps": total,
        "resumed_from_step": resumed,
        "seconds": round(time.perf_counter() - started, 3),
    }


def epochs_to_steps(epochs: float, steps_per_epoch: int, max_steps: int = 0) -> int:
    """``epochs * steps_per_epoch`` capped by ``max_steps`` when it is positive (quick presets)."""
    steps = max(1, int(round(epochs * steps_per_epoch)))
    return min(steps, int(max_steps)) if max_steps and max_steps > 0 else steps
