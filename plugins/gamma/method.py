"""Gamma correction, the simplest global brightening curve.

Each pixel value ``x`` in ``[0, 1]`` (each RGB channel alike) becomes ``x ** (1 / gamma)``: the
power-law transformation ``s = c r^g`` of Gonzalez & Woods (Digital Image Processing, 3rd ed.,
Eq. (3.2-3)) with ``c = 1`` and exponent ``g = 1 / gamma``, so ``gamma > 1`` brightens. The default
``gamma = 2.2`` is the usual display gamma, the value LLIE papers mean by "gamma correction".

Adaptive mode (``adaptive = true``) chooses ``gamma`` per image so that the mean of the output
over all pixels and the three channels (the grey mean) equals ``target_mean``. The mean
``m(p) = mean(x ** p)`` decreases monotonically in ``p = 1 / gamma`` for values in ``[0, 1]``, so
the root is unique; it is found by Newton's method on ``u = log p`` with a bisection safeguard,
batched over images. When the target cannot be reached inside ``[min_gamma, max_gamma]`` (an
all-black image stays black for every gamma) the nearest bound is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from llbench.api import Method
from llbench.errors import ConfigError, ImageError

from . import DEFAULT_CONFIG


def _config(config: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise ConfigError(
            f"method 'gamma': unknown config key(s) {unknown}; known keys: {sorted(DEFAULT_CONFIG)}"
        )
    cfg = {**DEFAULT_CONFIG, **config}
    for key in ("gamma", "min_gamma", "max_gamma"):
        if not isinstance(cfg[key], int | float) or not cfg[key] > 0:
            raise ConfigError(f"method 'gamma': {key} must be a positive number, got {cfg[key]!r}")
    if cfg["min_gamma"] > cfg["max_gamma"]:
        raise ConfigError(
            f"method 'gamma': min_gamma ({cfg['min_gamma']}) must not exceed max_gamma "
            f"({cfg['max_gamma']})"
        )
    if not isinstance(cfg["target_mean"], int | float) or not 0 < cfg["target_mean"] < 1:
        raise ConfigError(
            f"method 'gamma': target_mean must be in (0, 1), got {cfg['target_mean']!r}"
        )
    if not isinstance(cfg["adaptive"], bool):
        raise ConfigError(
            f"method 'gamma': adaptive must be true or false, got {cfg['adaptive']!r}"
        )
    return cfg


def adaptive_gamma(
    x: torch.Tensor,
    target_mean: float,
    min_gamma: float = 0.05,
    max_gamma: float = 20.0,
    tol: float = 1e-5,
    max_iter: int = 100,
) -> torch.Tensor:
    """Per-image gamma such that ``mean(x ** (1 / gamma)) == target_mean``.

    ``x``: ``N x ...`` values in ``[0, 1]``. Returns a float tensor of shape ``(N,)`` on ``x``'s
    device, clamped to ``[min_gamma, max_gamma]``.
    """
    flat = x.reshape(x.shape[0], -1).float()
    logx = flat.clamp_min(1e-30).log()  # multiplied by x**p, which is 0 where x == 0
    n = flat.shape[0]
    lo = torch.full((n,), math.log(1.0 / max_gamma), device=flat.device)  # bounds on u = log p
    hi = torch.full((n,), math.log(1.0 / min_gamma), device=flat.device)
    u = torch.zeros(n, device=flat.device).clamp(lo, hi)
    done = torch.zeros(n, dtype=torch.bool, device=flat.device)
    for _ in range(max_iter):
        p = u.exp()
        xp = flat ** p[:, None]
        f = xp.mean(1) - target_mean
        done = done | (f.abs() <= tol) | (hi - lo <= 1e-9)
        if bool(done.all()):
            break
        lo = torch.where(f > 0, u, lo)  # output too bright: larger p (smaller gamma) needed
        hi = torch.where(f < 0, u, hi)
        slope = p * (xp * logx).mean(1)  # d mean / d u, <= 0
        newton = u - f / slope
        ok = torch.isfinite(newton) & (newton > lo) & (newton < hi) & (slope < 0)
        u = torch.where(done, u, torch.where(ok, newton, (lo + hi) / 2))
    return (-u).exp().clamp(min_gamma, max_gamma)


class GammaCorrection(Method):
    """``out = in ** (1 / gamma)`` per pixel and channel; see the module docstring."""

    def __init__(self, config: Mapping[str, Any], device: torch.device):
        cfg = _config(config)
        super().__init__(cfg, device)

    def gammas(self, low: torch.Tensor) -> torch.Tensor:
        """The gamma applied to each image of ``low`` (shape ``(N,)``)."""
        x = low.float().clamp(0, 1)
        if self.config["adaptive"]:
            return adaptive_gamma(
                x, self.config["target_mean"], self.config["min_gamma"], self.config["max_gamma"]
            )
        return torch.full((x.shape[0],), float(self.config["gamma"]), device=x.device)

    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        if low.ndim != 4 or low.shape[1] != 3:
            raise ImageError(
                f"'gamma' expects an N x 3 x H x W batch, got shape {tuple(low.shape)}"
            )
        x = low.float().clamp(0, 1)
        out = x ** (1.0 / self.gammas(x)).view(-1, 1, 1, 1)
        return out.clamp(0, 1).to(low.dtype)

    def provenance(self) -> dict[str, Any]:
        return {"mode": "adaptive" if self.config["adaptive"] else "fixed"}
