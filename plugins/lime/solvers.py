"""Solvers for LIME's sped-up system ``(I + alpha sum_d D_d^T Diag(w~_d) D_d) t = t_hat``.

The matrix is ``I`` plus a weighted graph Laplacian on the 4-connected pixel grid (see
:mod:`llbench.plugins.lime.method`, step 3). Config ``solver`` picks one:

* ``"multifrontal"`` -- exact: sparse Cholesky in a nested-dissection order, as a batched
  multifrontal factorization in torch on the method's device (:mod:`.multifrontal`): float32
  factors refined in float64 to about 1e-10 of the float64 answer. 600 x 400 on two CPU cores:
  about 0.24 s (the first image of a size adds 0.04 s of analysis), against 0.8 s for
  ``"direct-mmd"``. Grids up to :data:`.multifrontal.MAX_PIXELS` (its factors grow as N log N).
* ``"direct"`` -- exact: sparse LU (SuperLU, symmetric mode, no pivoting: the matrix is
  symmetric positive definite and diagonally dominant) after a geometric nested-dissection
  ordering of the grid (George, "Nested dissection of a regular finite element mesh", SIAM J.
  Numer. Anal. 10(2), 1973): the longer side of each rectangle is cut by a one-pixel line, both
  halves are ordered first and the line last, down to blocks of 16 pixels. On a 600 x 400 image
  this fills in 20 M entries instead of the 31 M of the minimum-degree ordering, about 1.3x
  faster; the result is the same to rounding (1e-13). Any size; float64 on the CPU.
* ``"direct-mmd"`` -- the same factorization with SuperLU's minimum-degree ordering on
  ``A^T + A`` (llbench's LIME before issue 20), kept for comparison.
* ``"cg"`` -- conjugate gradients in torch on the method's device (the GPU when there is one),
  Jacobi-preconditioned, from ``t = 0``, until the residual norm is below ``cg_tol`` times
  ``||t_hat||`` (checked every 50 iterations). The weights span about six orders of magnitude
  (up to ``alpha / eps^2`` in flat regions), so it needs 1,500-3,000 iterations for a 600 x 400
  image: about 4.4 s on one CPU core in float64, a fraction of that on a GPU, where every
  iteration is a handful of elementwise kernels; memory stays proportional to the image. With
  ``cg_tol = 1e-4`` its output stays within 0.05 of an 8-bit level of the exact solve on the
  test images.
* ``"auto"`` (default) -- ``"multifrontal"`` up to :data:`.multifrontal.MAX_PIXELS` pixels;
  above that ``"cg"`` on CUDA devices and ``"direct"`` elsewhere.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from llbench.errors import ConfigError

from .multifrontal import MAX_PIXELS

SOLVERS = ("auto", "multifrontal", "direct", "direct-mmd", "cg")
_ND_LEAF = 16
_CHECK_EVERY = 50


def resolve_solver(solver: str, device_type: str, pixels: int = 0) -> str:
    """The solver ``"auto"`` stands for on a device of type ``device_type`` for images of
    ``pixels`` pixels."""
    if solver not in SOLVERS:
        raise ConfigError(
            f"method 'lime': solver must be one of {', '.join(SOLVERS)}, got {solver!r}"
        )
    if solver == "auto":
        if pixels <= MAX_PIXELS:
            return "multifrontal"
        return "cg" if device_type == "cuda" else "direct"
    return solver


@functools.lru_cache(maxsize=8)
def nested_dissection(h: int, w: int, leaf: int = _ND_LEAF) -> np.ndarray:
    """A nested-dissection ordering of the ``h x w`` grid's row-major indices (module docstring)."""
    idx = np.arange(h * w).reshape(h, w)
    parts: list[np.ndarray] = []
    stack = [(0, h, 0, w, False)]
    while stack:  # iterative, so deep grids cannot exhaust the recursion limit
        r0, r1, c0, c1, emit = stack.pop()
        if r1 <= r0 or c1 <= c0:
            continue
        if emit or (r1 - r0) * (c1 - c0) <= leaf or min(r1 - r0, c1 - c0) <= 2:
            parts.append(idx[r0:r1, c0:c1].ravel())
            continue
        if c1 - c0 >= r1 - r0:
            m = (c0 + c1) // 2
            halves, line = [(r0, r1, c0, m), (r0, r1, m + 1, c1)], (r0, r1, m, m + 1)
        else:
            m = (r0 + r1) // 2
            halves, line = [(r0, m, c0, c1), (m + 1, r1, c0, c1)], (m, m + 1, c0, c1)
        # popped in reverse: first half, second half, then the separator line
        stack.append((*line, True))
        stack.extend((*half, False) for half in reversed(halves))
    order = np.concatenate(parts)
    assert order.size == h * w
    return order


def solve_direct(a: sp.spmatrix, b: np.ndarray, h: int, w: int, ordering: str = "nd") -> np.ndarray:
    """Exact solve of ``a x = b`` (``a`` the ``hw x hw`` LIME matrix, row-major pixels)."""
    opts = {"diag_pivot_thresh": 0.0, "options": {"SymmetricMode": True}}
    if ordering == "mmd":
        return spla.splu(sp.csc_matrix(a), permc_spec="MMD_AT_PLUS_A", **opts).solve(b)
    p = nested_dissection(h, w)
    ap = sp.csr_matrix(a)[p][:, p].tocsc()
    x = np.empty_like(b)
    x[p] = spla.splu(ap, permc_spec="NATURAL", **opts).solve(b[p])
    return x


def solve_cg(eh, ev, b, tol: float = 1e-4, max_iter: int = 20000):
    """Jacobi-preconditioned conjugate gradients for a batch: ``eh`` (N x H x W-1) and ``ev``
    (N x H-1 x W) are ``alpha w~`` per edge, ``b`` (N x H x W) the right-hand sides; all torch
    tensors on one device. Returns ``t`` (N x H x W). Raises :class:`ConfigError` when the
    residual is still above ``tol * ||b||`` after ``max_iter`` iterations."""
    import torch

    diag = torch.ones_like(b)
    diag[:, :, :-1] += eh
    diag[:, :, 1:] += eh
    diag[:, :-1] += ev
    diag[:, 1:] += ev
    inv_diag = diag.reciprocal()

    def apply(x: torch.Tensor) -> torch.Tensor:
        y = diag * x
        y[:, :, :-1].sub_(eh * x[:, :, 1:])
        y[:, :, 1:].sub_(eh * x[:, :, :-1])
        y[:, :-1].sub_(ev * x[:, 1:])
        y[:, 1:].sub_(ev * x[:, :-1])
        return y

    def dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (u * v).sum(dim=(1, 2), keepdim=True)

    x = torch.zeros_like(b)
    r = b.clone()
    z = r * inv_diag
    p = z.clone()
    rz = dot(r, z)
    goal = tol * b.flatten(1).norm(dim=1).clamp_min(torch.finfo(b.dtype).tiny)
    for k in range(1, max_iter + 1):
        ap = apply(p)
        step = rz / dot(p, ap).clamp_min(torch.finfo(b.dtype).tiny)
        x.addcmul_(step, p)
        r.addcmul_(step, ap, value=-1.0)
        if k % _CHECK_EVERY == 0 and bool((r.flatten(1).norm(dim=1) <= goal).all()):
            return x
        z = r * inv_diag
        rz_new = dot(r, z)
        p = z.add_(p.mul_(rz_new / rz.clamp_min(torch.finfo(b.dtype).tiny)))
        rz = rz_new
    if bool((r.flatten(1).norm(dim=1) <= goal).all()):
        return x
    raise ConfigError(
        f"method 'lime': conjugate gradients did not reach cg_tol = {tol:g} in {max_iter} "
        "iterations; raise cg_max_iter or use solver = 'direct'"
    )
