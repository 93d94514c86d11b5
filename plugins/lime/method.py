"""LIME: Low-light IMage Enhancement via illumination map estimation.

X. Guo, Y. Li, H. Ling, "LIME: Low-Light Image Enhancement via Illumination Map Estimation",
IEEE TIP 26(2):982-993, 2017. The paper's text is not among ``shared/papers``; the equations below
are written out in full from the paper (its Retinex model, initial estimate, refinement problem,
sped-up solver, weighting strategies, gamma step and denoising recomposition), so they are cited
by name rather than by number. Settings from the paper and the authors' released demo are in
``llbench.plugins.lime.DEFAULT_CONFIG``.

Model. A low-light image is ``L = R o T`` (``o`` elementwise): the wanted image ``R`` times an
illumination map ``T`` shared by the three channels.

1. Initial illumination: ``T_hat(x) = max_{c in {R,G,B}} L^c(x)``.
2. Refinement problem: ``min_T ||T_hat - T||_F^2 + alpha ||W o grad T||_1`` with
   ``grad = (grad_h, grad_v)``, forward differences between 4-neighbours inside the image (no
   difference across the border, i.e. Neumann boundary).
3. Sped-up solver: ``||W o grad T||_1`` is approximated by
   ``sum_x sum_d W_d(x) (grad_d T(x))^2 / (|grad_d T_hat(x)| + eps)``, which makes the problem
   quadratic; setting its gradient to zero gives the sparse linear system

       (I + alpha sum_{d in {h,v}} D_d^T Diag(w~_d) D_d) t = t_hat,
       w~_d(x) = W_d(x) / (|grad_d T_hat(x)| + eps),

   with ``t``, ``t_hat`` the vectorized maps and ``D_d`` the forward-difference operators
   (``alpha`` is written out here rather than folded into ``w~``). The matrix is ``I`` plus a
   weighted graph Laplacian on the pixel grid: symmetric positive definite, with unit row sums and
   non-positive off-diagonals, so ``T`` stays within ``[min T_hat, max T_hat]`` (discrete maximum
   principle) and a uniform ``T_hat`` is returned unchanged.
4. Weighting strategies for ``W_d`` (config ``strategy``):
   (1) ``W_d(x) = 1``;
   (2) ``W_d(x) = 1 / (|grad_d T_hat(x)| + eps)``;
   (3) ``W_d(x) = sum_{y in Omega(x)} G_sigma(x, y) /
   (|sum_{y in Omega(x)} G_sigma(x, y) grad_d T_hat(y)| + eps)``, with ``G_sigma`` a Gaussian of
   standard deviation ``sigma`` over the square window ``Omega(x)`` of ``2 ceil(2.5 sigma) + 1``
   pixels a side (11 for ``sigma = 2``), normalized to sum 1 over the full window (as MATLAB's
   ``fspecial``; the normalization sets the scale of ``eps`` against the smoothed gradient) and
   restricted to the image, so the numerator is 1 away from the border. Strategy (3) is the
   default, as in the authors' demo ("lambda = 0.15 is fine for sped-up solver + strategy III").
5. Enhancement: ``T <- T^gamma`` (``gamma = 0.8`` in the paper; the demo script uses 0.7), then
   ``R = L / max(T, eps)`` per channel, clipped to [0, 1]. A black image stays black.
6. Optional denoising (config ``denoise``, off by default): BM3D on the luma ``Y`` of ``R``
   (``sigma_BM3D = 10`` in 8-bit units in the authors' demo), RGB rebuilt with the original chroma
   giving ``R_d``, and the recomposition ``R_f = R o T + R_d o (1 - T)``, which denoises dark
   regions (small ``T``, where noise was amplified most) and keeps bright ones. It uses the
   ``bm3d`` package only when installed: that package is free for non-commercial use only (so it
   cannot be a dependency of MIT-licensed llbench) and takes about 3 s per 600x400 image.

Solver (config ``solver``, :mod:`llbench.plugins.lime.solvers`): the default (``"auto"``) is
``"multifrontal"``, an exact nested-dissection Cholesky factorization run as batched dense
kernels in torch on the method's device (about 0.24 s for a 600x400 image on two CPU cores);
``"direct"`` factorizes the same system exactly with SuperLU (about 0.6 s), ``"direct-mmd"`` with
SuperLU's minimum-degree ordering (0.8 s, llbench's LIME before issue 20); ``"cg"`` runs
Jacobi-preconditioned conjugate gradients in torch (thousands of iterations, because the weights
span about six orders of magnitude, up to ``alpha / eps^2`` in flat regions), which ``"auto"``
uses on CUDA for images too large for the multifrontal factors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.ndimage import correlate1d

from llbench.api import Method
from llbench.errors import ConfigError, ImageError
from llbench.plugins.he.luma import rgb_to_ycbcr, ycbcr_to_rgb

from . import DEFAULT_CONFIG, solvers


def initial_illumination(low: torch.Tensor) -> torch.Tensor:
    """``T_hat = max over RGB`` of ``low`` (``N x 3 x H x W``) -> ``N x H x W`` (step 1)."""
    return low.amax(1)


def gaussian_window(sigma: float) -> np.ndarray:
    """The 1-D Gaussian ``G_sigma`` of strategy (3), ``2 ceil(2.5 sigma) + 1`` taps, sum 1."""
    radius = max(1, math.ceil(2.5 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _window_sum(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``sum_{y in Omega(x)} G(x, y) a(y)`` with ``a`` taken as 0 outside its grid."""
    if a.size == 0:
        return a.copy()
    out = correlate1d(a, g, axis=0, mode="constant", cval=0.0)
    return correlate1d(out, g, axis=1, mode="constant", cval=0.0)


def gradients(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences: ``(H x (W-1), (H-1) x W)`` horizontal and vertical."""
    return np.diff(t, axis=1), np.diff(t, axis=0)


def strategy_weights(
    t_hat: np.ndarray, strategy: int, sigma: float = 2.0, eps: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """``W_h, W_v`` of weighting strategy (1), (2) or (3) (module docstring, step 4)."""
    gh, gv = gradients(t_hat)
    if strategy == 1:
        return np.ones_like(gh), np.ones_like(gv)
    if strategy == 2:
        return 1.0 / (np.abs(gh) + eps), 1.0 / (np.abs(gv) + eps)
    if strategy == 3:
        g = gaussian_window(sigma)
        return tuple(  # type: ignore[return-value]
            _window_sum(np.ones_like(d), g) / (np.abs(_window_sum(d, g)) + eps) for d in (gh, gv)
        )
    raise ConfigError(f"method 'lime': strategy must be 1, 2 or 3, got {strategy!r}")


def solver_weights(
    t_hat: np.ndarray, strategy: int = 3, sigma: float = 2.0, eps: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """``w~_d = W_d / (|grad_d T_hat| + eps)`` of the sped-up solver (step 3)."""
    wh, wv = strategy_weights(t_hat, strategy, sigma, eps)
    gh, gv = gradients(t_hat)
    return wh / (np.abs(gh) + eps), wv / (np.abs(gv) + eps)


def system_matrix(w_h: np.ndarray, w_v: np.ndarray, alpha: float) -> sp.csc_matrix:
    """``I + alpha sum_d D_d^T Diag(w~_d) D_d`` for an ``H x W`` grid, row-major pixel order.

    ``w_h`` is ``H x (W-1)`` (edge between ``(r, c)`` and ``(r, c+1)``), ``w_v`` is
    ``(H-1) x W`` (edge between ``(r, c)`` and ``(r+1, c)``).
    """
    h, w = w_h.shape[0], w_v.shape[1]
    n = h * w
    eh, ev = alpha * w_h, alpha * w_v
    diag = np.ones((h, w))
    diag[:, :-1] += eh
    diag[:, 1:] += eh
    diag[:-1, :] += ev
    diag[1:, :] += ev
    diagonals, offsets = [diag.ravel()], [0]
    if w > 1:  # horizontal neighbours: offset 1, no edge from the last column to the next row
        off = np.zeros((h, w))
        off[:, :-1] = -eh
        off = off.ravel()[: n - 1]
        diagonals += [off, off]
        offsets += [1, -1]
    if h > 1:
        off = -ev.ravel()
        diagonals += [off, off]
        offsets += [w, -w]
    return sp.diags(diagonals, offsets, shape=(n, n), format="csc")


def refine_illumination(
    t_hat: np.ndarray,
    alpha: float = 0.15,
    strategy: int = 3,
    sigma: float = 2.0,
    eps: float = 1e-3,
    solver: str = "direct",
) -> np.ndarray:
    """Solve the sped-up system for ``T`` (``H x W`` float64), steps 2-4, with the exact
    ``"direct"`` (nested dissection) or ``"direct-mmd"`` solver (see :mod:`.solvers`)."""
    t_hat = np.asarray(t_hat, dtype=np.float64)
    h, w = t_hat.shape
    if h * w <= 1 or alpha == 0:
        return t_hat.copy()
    a = system_matrix(*solver_weights(t_hat, strategy, sigma, eps), alpha)
    ordering = "mmd" if solver == "direct-mmd" else "nd"
    return solvers.solve_direct(a, t_hat.ravel(), h, w, ordering).reshape(h, w)


def refine_illumination_multifrontal(
    t_hat: np.ndarray, cfg: Mapping[str, Any], device: torch.device
) -> torch.Tensor:
    """Solve the sped-up system for one ``H x W`` map with the exact multifrontal solver on
    ``device`` (:mod:`.multifrontal`; on the CPU for devices other than CUDA, which lack float64
    or batched Cholesky); the weights are computed as for the other solvers, in float64 on the
    CPU. Returns ``H x W`` float64 on the device that solved."""
    from . import multifrontal

    t_hat = np.asarray(t_hat, dtype=np.float64)
    if t_hat.size <= 1 or cfg["alpha"] == 0:
        return torch.from_numpy(t_hat.copy())
    wh, wv = solver_weights(t_hat, cfg["strategy"], cfg["sigma"], cfg["eps"])
    work = device if device.type == "cuda" else torch.device("cpu")
    eh, ev, b = (
        torch.from_numpy(a).to(work) for a in (cfg["alpha"] * wh, cfg["alpha"] * wv, t_hat)
    )
    return multifrontal.solve(eh, ev, b)


def refine_illumination_cg(
    t_hat: torch.Tensor, cfg: Mapping[str, Any], dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Solve the sped-up system for a batch ``N x H x W`` with conjugate gradients on
    ``t_hat``'s device (:func:`.solvers.solve_cg`); the weights are computed as for the direct
    solvers, in float64 on the CPU."""
    dtype = dtype or (torch.float64 if t_hat.device.type == "cpu" else torch.float32)
    t_np = t_hat.detach().cpu().double().numpy()
    if t_np.shape[1] * t_np.shape[2] <= 1 or cfg["alpha"] == 0:
        return t_hat.to(dtype)
    weights = [solver_weights(t, cfg["strategy"], cfg["sigma"], cfg["eps"]) for t in t_np]
    eh = torch.from_numpy(np.stack([wh for wh, _ in weights]) * cfg["alpha"])
    ev = torch.from_numpy(np.stack([wv for _, wv in weights]) * cfg["alpha"])
    dev = t_hat.device
    return solvers.solve_cg(
        eh.to(dev, dtype),
        ev.to(dev, dtype),
        t_hat.to(dtype),
        tol=cfg["cg_tol"],
        max_iter=cfg["cg_max_iter"],
    )


@dataclass
class LIMEResult:
    """The stages of LIME for one batch (all on the input's device, float32)."""

    t_hat: torch.Tensor  # N x H x W, initial illumination
    t: torch.Tensor  # N x H x W, refined illumination (solution of the linear system)
    t_gamma: torch.Tensor  # N x H x W, max(T, eps) ** gamma
    enhanced: torch.Tensor  # N x 3 x H x W in [0, 1]


def _config(config: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise ConfigError(
            f"method 'lime': unknown config key(s) {unknown}; known keys: {sorted(DEFAULT_CONFIG)}"
        )
    cfg = {**DEFAULT_CONFIG, **config}
    for key, low in (
        ("alpha", 0.0),
        ("sigma", None),
        ("gamma", None),
        ("eps", None),
        ("bm3d_sigma", None),
    ):
        v = cfg[key]
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        ok = ok and (v >= low if low is not None else v > 0)
        if not ok:
            need = "a number >= 0" if low is not None else "a positive number"
            raise ConfigError(f"method 'lime': {key} must be {need}, got {v!r}")
    if cfg["strategy"] not in (1, 2, 3) or isinstance(cfg["strategy"], bool):
        raise ConfigError(f"method 'lime': strategy must be 1, 2 or 3, got {cfg['strategy']!r}")
    solvers.resolve_solver(cfg["solver"], "cpu")  # raises for unknown names
    if not (isinstance(cfg["cg_tol"], int | float) and 0 < cfg["cg_tol"] < 1):
        raise ConfigError(f"method 'lime': cg_tol must be in (0, 1), got {cfg['cg_tol']!r}")
    if not (isinstance(cfg["cg_max_iter"], int) and cfg["cg_max_iter"] >= 1):
        raise ConfigError(
            f"method 'lime': cg_max_iter must be a positive integer, got {cfg['cg_max_iter']!r}"
        )
    if not isinstance(cfg["denoise"], bool):
        raise ConfigError(f"method 'lime': denoise must be true or false, got {cfg['denoise']!r}")
    return cfg


def _bm3d() -> ModuleType:
    try:
        import bm3d
    except ImportError as exc:
        raise ConfigError(
            "method 'lime': denoise = true needs the BM3D package, which llbench does not install "
            "(free for non-commercial use only): run `pip install bm3d`, or set denoise = false"
        ) from exc
    return bm3d


class LIME(Method):
    """LIME with the sped-up solver; see the module docstring for every step."""

    def __init__(self, config: Mapping[str, Any], device: torch.device):
        super().__init__(_config(config), device)
        if self.config["denoise"]:
            _bm3d()

    def decompose(self, low: torch.Tensor) -> LIMEResult:
        """Run LIME on ``low`` (``N x 3 x H x W`` in [0, 1]) and return every stage."""
        if low.ndim != 4 or low.shape[1] != 3:
            raise ImageError(f"'lime' expects an N x 3 x H x W batch, got shape {tuple(low.shape)}")
        cfg = self.config
        x = low.float().clamp(0, 1)
        t_hat = initial_illumination(x)
        solver = solvers.resolve_solver(cfg["solver"], x.device.type, x.shape[-2] * x.shape[-1])
        if solver == "cg":
            t = refine_illumination_cg(t_hat, cfg).to(torch.float32)
        elif solver == "multifrontal":
            t_np = t_hat.detach().cpu().double().numpy()
            maps = [refine_illumination_multifrontal(m, cfg, x.device) for m in t_np]
            t = torch.stack([m.to(torch.float32) for m in maps]).to(x.device)
        else:
            t_np = t_hat.detach().cpu().double().numpy()
            refined = np.stack(
                [
                    refine_illumination(
                        t_np[i], cfg["alpha"], cfg["strategy"], cfg["sigma"], cfg["eps"], solver
                    )
                    for i in range(t_np.shape[0])
                ]
            )
            t = torch.from_numpy(refined).to(device=x.device, dtype=torch.float32)
        t_gamma = t.clamp(cfg["eps"], 1.0) ** cfg["gamma"]
        enhanced = (x / t_gamma[:, None]).clamp(0, 1)
        if cfg["denoise"]:
            enhanced = self._denoise(enhanced, t_gamma)
        return LIMEResult(t_hat=t_hat, t=t, t_gamma=t_gamma, enhanced=enhanced)

    def _denoise(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``R_f = R o T + R_d o (1 - T)`` with ``R_d`` = BM3D on the luma of ``R`` (step 6)."""
        bm3d = _bm3d()
        ycc = rgb_to_ycbcr(r)
        y = ycc[:, 0].detach().cpu().double().numpy()
        sigma = self.config["bm3d_sigma"] / 255.0
        y_d = np.stack([np.asarray(bm3d.bm3d(y[i], sigma_psd=sigma)) for i in range(len(y))])
        y_d = torch.from_numpy(y_d).to(device=r.device, dtype=r.dtype)
        r_d = ycbcr_to_rgb(torch.cat((y_d[:, None], ycc[:, 1:]), 1)).clamp(0, 1)
        tt = t[:, None]
        return (r * tt + r_d * (1 - tt)).clamp(0, 1)

    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        return self.decompose(low).enhanced.to(low.dtype)

    def provenance(self) -> dict[str, Any]:
        import scipy

        described = {
            "multifrontal": "exact multifrontal nested-dissection Cholesky in torch (float32 "
            "factors refined in float64)",
            "direct": "SuperLU (scipy.sparse.linalg.splu), nested-dissection ordering",
            "direct-mmd": "SuperLU (scipy.sparse.linalg.splu), MMD_AT_PLUS_A ordering",
            "cg": f"Jacobi-preconditioned CG in torch, cg_tol {self.config['cg_tol']:g}",
        }
        solver = self.config["solver"]
        if solver == "auto":
            large = solvers.resolve_solver("auto", self.device.type, solvers.MAX_PIXELS + 1)
            described["auto"] = (
                f"{described['multifrontal']} up to {solvers.MAX_PIXELS:,} pixels, "
                f"{described[large]} above"
            )
        return {
            "solver": f"sped-up solver, {described[solver]}",
            "scipy": scipy.__version__,
            "denoise": "bm3d" if self.config["denoise"] else "off",
        }
