"""Base classes for metrics.

Images reach metrics as float32 tensors ``N x 3 x H x W`` whose values are 8-bit levels
(``k / 255``), exactly the values saved to PNG. Three shapes of metric exist:

* :class:`Metric` scores each image; the dataset score is the mean over images.
* :class:`DatasetMetric` accumulates over the split and yields one value (mIoU, mPA).
* :class:`EfficiencyMetric` measures the method itself (parameters, FLOPs, time).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from llbench.api.methods import Method


class Metric(abc.ABC):
    """A per-image metric. Subclasses may be batched; they return one value per image."""

    def __init__(
        self, device: torch.device | str = "cpu", options: Mapping[str, Any] | None = None
    ):
        import torch  # here, so that registering metrics does not import torch

        self.device = torch.device(device)
        self.options = dict(options or {})

    @abc.abstractmethod
    def __call__(
        self,
        pred: torch.Tensor,
        ref: torch.Tensor | None = None,
        low: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return a float tensor of shape ``(N,)``."""


class DatasetMetric(abc.ABC):
    """A metric computed from the whole split (e.g. one confusion matrix for mIoU)."""

    def __init__(
        self, device: torch.device | str = "cpu", options: Mapping[str, Any] | None = None
    ):
        import torch  # here, so that registering metrics does not import torch

        self.device = torch.device(device)
        self.options = dict(options or {})

    @abc.abstractmethod
    def reset(self) -> None: ...

    @abc.abstractmethod
    def update(
        self,
        pred: torch.Tensor,
        ref: torch.Tensor | None = None,
        low: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> None: ...

    @abc.abstractmethod
    def compute(self) -> float: ...

    def state(self) -> dict[str, Any]:
        """Accumulated state that survives an interrupted run (JSON-serializable)."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state`."""
        return None


class EfficiencyMetric(abc.ABC):
    """A property of the method measured at a stated input size on a device."""

    def __init__(
        self, device: torch.device | str = "cpu", options: Mapping[str, Any] | None = None
    ):
        import torch  # here, so that registering metrics does not import torch

        self.device = torch.device(device)
        self.options = dict(options or {})

    @abc.abstractmethod
    def measure(self, method: Method, size: tuple[int, int]) -> float:
        """Measure ``method`` on a ``1 x 3 x H x W`` input with ``size = (H, W)``."""
