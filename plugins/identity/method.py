"""Identity enhancement: returns a copy of the input batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from llbench.api import Method
from llbench.errors import ConfigError, ImageError


class Identity(Method):
    """``enhance(low) == low`` (a copy, on the same device and with the same dtype)."""

    def __init__(self, config: Mapping[str, Any], device: torch.device):
        super().__init__(config, device)
        if self.config:
            raise ConfigError(
                f"method 'input' takes no config keys; remove {sorted(self.config)} from the config"
            )

    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        if low.ndim != 4 or low.shape[1] != 3:
            raise ImageError(
                f"'input' expects an N x 3 x H x W batch, got shape {tuple(low.shape)}"
            )
        return low.clone()
