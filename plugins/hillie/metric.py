"""``hillie-ranker``: a trained HiLLIE ranker g(n) as a no-reference metric (lower is better).

The ranker's scores are relative (Sec. 3.2.2: "not absolute quality scores"), so a value is only
comparable with other values of the same ranker file. The file is ``<home>/weights/
hillie-ranker.pt`` (written by ``llbench hillie export-ranker --run KEY [--stage N]``, with a
``.json`` beside it naming the training and stage), or the path in ``LLBENCH_HILLIE_RANKER``.
Images are scored at full resolution, as the paper's ranker sees them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from llbench.api import Metric

from .ranker_file import ENV, FILE, ranker_missing, ranker_path  # noqa: F401


class RankerMetric(Metric):
    """Scores ``N x 3 x H x W`` images with the exported ranker; returns ``(N,)``."""

    def __init__(
        self, device: torch.device | str = "cpu", options: Mapping[str, Any] | None = None
    ):
        super().__init__(device, options)
        from llbench.errors import WeightsError

        from .ranker import load_ranker

        path = Path(self.options.get("hillie_ranker") or ranker_path())
        if not path.is_file():
            raise WeightsError(ranker_missing() or f"no HiLLIE ranker at {path}")
        self.path = path
        self.net = load_ranker(path, self.device)

    @torch.no_grad()
    def __call__(self, pred, ref=None, low=None) -> torch.Tensor:
        return self.net(pred.to(self.device, torch.float32)).float()
