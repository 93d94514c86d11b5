"""Base classes for enhancement methods.

A method turns a batch of low-light images, a float tensor ``N x 3 x H x W`` in ``[0, 1]``, into
enhanced images of the same shape. Methods that learn subclass :class:`TrainableMethod` and
implement :meth:`TrainableMethod.fit`, which must be resumable from ``ctx.checkpoint``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from llbench.errors import WeightsError

if TYPE_CHECKING:  # pragma: no cover
    from llbench.api.datasets import Dataset, Sample
    from llbench.api.features import DecoderSite
    from llbench.api.training import Phase


class Method(abc.ABC):
    """An enhancement method built from its config on a device."""

    def __init__(self, config: Mapping[str, Any], device: torch.device):
        self.config = dict(config)
        self.device = torch.device(device)

    @abc.abstractmethod
    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        """Enhance ``low`` (N x 3 x H x W, float in [0, 1]); return the same shape in [0, 1]."""

    def modules(self) -> list[torch.nn.Module]:
        """The torch modules whose forward is the method (for parameter and FLOP counts)."""
        return []

    def provenance(self) -> dict[str, Any]:
        """Facts about how this instance was built that belong in the run's provenance
        (e.g. which backbone weights were found, or an ablation chosen for lack of them)."""
        return {}


class TrainableMethod(Method):
    """A method with learnable weights.

    Subclasses set ``self.net`` (an ``nn.Module``) or override the state-dict methods.
    Checkpoints are plain state dicts, so released checkpoints of a paper load directly.
    """

    net: torch.nn.Module

    @abc.abstractmethod
    def fit(self, ctx: TrainContext) -> None:
        """Train on ``ctx``'s data; resume from ``ctx.load_checkpoint()`` when it returns one."""

    def modules(self) -> list[torch.nn.Module]:
        return [self.net]

    def training_phases(self, ctx: TrainContext) -> list[Phase]:
        """The method's training as phases (:mod:`llbench.api.training`), for frameworks that
        wrap it with extra terms or modules (SKF). A method that trains otherwise raises
        :class:`NotImplementedError` (the default), and such frameworks refuse it by name."""
        raise NotImplementedError(
            f"{type(self).__name__} does not expose its training phases "
            "(TrainableMethod.training_phases)"
        )

    def fit_phases(
        self,
        ctx: TrainContext,
        owner: str,
        phases: Sequence[Phase] | None = None,
        saved: Mapping[str, torch.nn.Module] | None = None,
    ) -> dict[str, Any]:
        """Train ``phases`` (default: :meth:`training_phases`) with
        :func:`llbench.api.training.run_phases` on this method's device: resumable, the
        checkpoint of ``owner`` holding ``saved`` (default ``{"net": self.net}``), written every
        ``config["checkpoint_every"]`` steps (default 100). Returns the summary for the
        method's provenance; a phased method's ``fit`` is usually this one call."""
        from llbench.api.training import run_phases

        return run_phases(
            ctx,
            owner,
            self.training_phases(ctx) if phases is None else phases,
            {"net": self.net} if saved is None else saved,
            device=self.device,
            checkpoint_every=int(self.config.get("checkpoint_every", 100)),
        )

    def decoder_sites(self) -> tuple[DecoderSite, ...]:
        """The decoder feature maps of ``self.net`` that frameworks may refine (coarse to fine).

        The default is none. See :mod:`llbench.api.features` for the contract and
        :func:`~llbench.api.features.transform_site` for how a framework such as SKF uses it.
        """
        return ()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.net.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        try:
            self.net.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsError(f"weights do not fit {type(self).__name__}: {exc}") from exc

    def load_weights(self, path: str | Path) -> None:
        """Load a plain state dict saved with ``torch.save`` (``weights_only=True``)."""
        self.load_state_dict(load_state_dict_file(path))

    def save_weights(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)


def count_parameters(
    modules: torch.nn.Module | Iterable[torch.nn.Module], trainable_only: bool = False
) -> int:
    """Number of parameter elements in ``modules`` (one module or several), each tensor once
    (shared tensors are not counted twice); ``trainable_only`` skips frozen ones."""
    if isinstance(modules, torch.nn.Module):
        modules = [modules]
    seen: set[int] = set()
    total = 0
    for m in modules:
        for p in m.parameters():
            if id(p) in seen or (trainable_only and not p.requires_grad):
                continue
            seen.add(id(p))
            total += p.numel()
    return total


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict safely; unwrap the common ``{"state_dict": ...}``/``module.`` forms."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise WeightsError(f"cannot read weights {path}: {exc}") from exc
    for key in ("state_dict", "model", "params", "net"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise WeightsError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    return {k.removeprefix("module."): v for k, v in obj.items()}


@dataclass
class TrainContext:
    """What the harness hands a method's :meth:`TrainableMethod.fit`.

    ``samples`` are the training split's samples (``high`` is None for unpaired data).
    ``log(step, values)`` records losses for the loss curve; ``progress(done, total)`` drives the
    progress bar. ``home`` and ``data_root`` are the run's folders (``workdir`` lies under
    ``home``); :meth:`open_dataset` opens another dataset there. ``save_checkpoint``/``load_checkpoint`` keep one resumable checkpoint (any
    tensors, numbers, lists and dicts; loaded with ``weights_only=True``).
    """

    dataset: Dataset
    samples: list[Sample]
    workdir: Path
    seed: int
    device: torch.device
    log: Callable[[int, Mapping[str, float]], None] = lambda step, values: None
    progress: Callable[[int, int], None] = lambda done, total: None
    extra: dict[str, Any] = field(default_factory=dict)
    home: Path | None = None
    data_root: Path | None = None

    def open_dataset(self, name: str) -> Dataset:
        """Another registered dataset, prepared, under the run's data root (e.g. the
        segmentation data SLLEN alternates with; ``samples(split)`` lists its items)."""
        from llbench import paths
        from llbench.pluginhost.host import get_host

        root = self.data_root or paths.data_root(None, self.home)
        ds = get_host(self.home, self.data_root).dataset(name).build(root)
        ds.prepare()
        return ds

    @property
    def checkpoint_path(self) -> Path:
        return self.workdir / "checkpoint.pt"

    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(dict(state), tmp)
        tmp.replace(self.checkpoint_path)

    def load_checkpoint(self) -> dict[str, Any] | None:
        if not self.checkpoint_path.is_file():
            return None
        return torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
