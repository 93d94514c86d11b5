"""NIQE: Mittal, Soundararajan and Bovik, "Making a 'completely blind' image quality analyzer",
IEEE Signal Processing Letters 20(3), 2013 -- computed as pyiqa's ``niqe`` (which follows BasicSR's
port of the official MATLAB release), batched and vectorized.

Steps, per image (Y = rounded luma 0..255, see :func:`llbench.metrics.functional.luma_levels`):

1. Crop to whole 96 x 96 blocks from the top-left (partial blocks are discarded).
2. At two scales (the image, then the image halved by MATLAB's antialiased bicubic ``imresize``):
   MSCN coefficients ``(Y - mu) / (sigma + 1)`` (paper Eq. 1), ``mu`` and ``sigma`` the local mean
   and standard deviation under a 7 x 7 Gaussian window with sigma 7/6 whose taps sum to pyiqa's
   float32-rounded window (:func:`_window_taps` says why that matters), the image edge replicated
   (``sigma = sqrt(|E[Y^2] - mu^2| + eps)``). Arithmetic in float64, as pyiqa; pyiqa halves the
   image in float32, which moves its NIQE by up to 5e-4 from this float64 resize.
3. Per block (96 x 96 at scale 1, 48 x 48 at scale 2), 18 features: the generalized Gaussian fit
   of the MSCN coefficients (shape ``alpha`` and ``(beta_l + beta_r) / 2``), and for the products of
   neighbouring coefficients along the horizontal, vertical and both diagonal directions (circular
   within the block, as MATLAB's ``circshift``) the asymmetric generalized Gaussian fit
   ``(alpha, eta, beta_l, beta_r)`` with ``eta = (beta_r - beta_l) Gamma(2/alpha) / Gamma(1/alpha)``
   (the AGGD mean, paper Eq. 8).
   The moment-matching fit picks ``alpha`` on the grid 0.2:0.001:10 whose ratio
   ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` is nearest to the normalized estimate ``r_hat``
   (first grid point on ties; the ratio is increasing in ``a``, so a sorted search replaces the
   scan). A block with no negative or no positive coefficient has undefined ``beta`` (NaN), and
   its ``alpha`` falls on the grid's first point, as in pyiqa.
4. Fit a multivariate Gaussian to the 36-dimensional block features: mean ignoring NaN entries
   per feature, covariance (unbiased) over the blocks with no NaN feature.
5. ``NIQE = sqrt((nu1 - nu2)^T ((Sigma1 + Sigma2) / 2)^+ (nu1 - nu2))`` (paper Eq. 10, with the
   pseudo-inverse) against the pristine model shipped in ``data/niqe_pris_params.npz``.
"""

from __future__ import annotations

import functools
import hashlib
import io
from importlib import resources

import numpy as np

from llbench._lazy import LazyModule, torch  # imported on first use (light plugin loading)
from llbench.errors import WeightsError
from llbench.metrics import functional as _functional
from llbench.metrics._resize import _resize_dim, resize_rows
from llbench.metrics.functional import _filter_valid, bands

F = LazyModule("torch.nn.functional")
BLOCK = 96
PARAMS_FILE = "niqe_pris_params.npz"
PARAMS_SHA256 = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _window_taps(size: int = 7, sigma: float = 7.0 / 6.0) -> tuple[list[float], float]:
    """The Gaussian window of the MSCN step, as pyiqa applies it.

    pyiqa builds MATLAB's ``fspecial('gaussian', 7, 7/6)`` in float64, normalizes it and rounds
    it to float32. The rounding matters: the float32 taps sum to ``1 + delta`` with ``delta``
    about ``4e-8``, which leaves a variance ``delta * Y^2`` and tiny MSCN coefficients of one sign
    in flat regions, and the AGGD fit counts signs. With exactly normalized taps, pyiqa's
    calibration image I19 scores 8.94 instead of pyiqa's 9.07.

    Returns the exact normalized 1-D Gaussian ``g`` (the window is ``(1 + delta) g g^T``) and
    ``1 + delta``, the sum of pyiqa's float32 window. Each float32 tap differs from
    ``(1 + delta) g_i g_j`` by less than 1e-7 of its value, which moves MSCN coefficients by
    less than 1e-7 of the local contrast; in flat windows, where only ``delta`` counts, the two
    agree exactly.
    """
    half = (size - 1) / 2.0
    d2 = (np.arange(size) - half) ** 2
    h = np.exp(-(d2[:, None] + d2[None, :]) / (2 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0
    w32 = (h / h.sum()).astype(np.float32).astype(np.float64)
    g = np.exp(-d2 / (2 * sigma * sigma))
    return (g / g.sum()).tolist(), float(w32.sum())


_TAPS, _WINDOW_SUM = _window_taps()


def params_path():
    """The shipped pristine-parameter file (a ``Traversable``)."""
    return resources.files("llbench.metrics.data").joinpath(PARAMS_FILE)


def check_params() -> str | None:
    """None when the shipped parameters are present and intact, else what is wrong."""
    try:
        _params_bytes()
    except WeightsError as exc:
        return str(exc)
    return None


def _params_bytes() -> bytes:
    """The shipped file's bytes, sha256-checked (no torch needed, for the availability check)."""
    path = params_path()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WeightsError(
            f"NIQE pristine parameters not found at {path}: they ship inside the llbench package "
            f"(llbench/metrics/data/{PARAMS_FILE}); reinstall llbench ({exc})"
        ) from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != PARAMS_SHA256:
        raise WeightsError(
            f"NIQE pristine parameters at {path} have sha256 {digest}, expected {PARAMS_SHA256}: "
            "the file is damaged or was replaced; reinstall llbench"
        )
    return raw


@functools.lru_cache(maxsize=1)
def _load_params_cpu() -> tuple[torch.Tensor, torch.Tensor]:
    raw = _params_bytes()
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        mu = torch.from_numpy(np.ascontiguousarray(data["mu_pris_param"], dtype=np.float64))
        cov = torch.from_numpy(np.ascontiguousarray(data["cov_pris_param"], dtype=np.float64))
    return mu.reshape(-1), cov


def pristine_params(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Pristine mean (36,) and covariance (36, 36) on ``device``; sha256-checked on first load."""
    mu, cov = _load_params_cpu()
    return mu.to(device=device, dtype=dtype), cov.to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=8)
def _ratio_table(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The shape grid 0.2:0.001:10 and ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` on it."""
    gam = 0.2 + 0.001 * torch.arange(9801, dtype=torch.float64)
    r = torch.exp(2 * torch.lgamma(2 / gam) - torch.lgamma(1 / gam) - torch.lgamma(3 / gam))
    return gam.to(device=device, dtype=dtype), r.to(device=device, dtype=dtype)


def _nearest_on_grid(v: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Index of the table entry nearest to each ``v`` (lower index on ties, 0 for NaN)."""
    i = torch.searchsorted(table, v.contiguous()).clamp_(1, table.numel() - 1)
    lo, hi = table[i - 1], table[i]
    idx = torch.where((v - lo).abs() <= (hi - v).abs(), i - 1, i)
    return torch.where(torch.isnan(v), torch.zeros_like(idx), idx)


def _aggd(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric generalized Gaussian fit (moment matching) along the last dim: alpha, beta_l,
    beta_r (Mittal et al. SPL 2013, after Lasmar et al. ICIP 2009).

    Branch-free reductions (a random mix of signs defeats branch prediction in ``x < 0`` counts):
    with ``s = sign(x)``, ``n_r - n_l = sum(s)``, ``n_r + n_l = ||s||_2^2``; then ``s`` becomes
    ``|x|`` in place, ``sum|x|`` its sum and ``sum_{x<0} x^2 = (sum x^2 - x . |x|) / 2``.
    """
    m = x.shape[-1]
    norm2 = torch.linalg.vector_norm
    s = torch.sign(x)
    diff = s.sum(dim=-1)  # n_r - n_l
    nonzero = norm2(s, dim=-1).square_().round_()  # n_r + n_l
    n_l = (nonzero - diff) / 2
    n_r = (nonzero + diff) / 2
    a = s.mul_(x)  # |x|
    l1 = a.sum(dim=-1)
    ss = norm2(x, dim=-1).square_()
    signed = torch.linalg.vecdot(x, a)  # sum x |x| = ss_r - ss_l
    # exactly 0 without coefficients of that sign, so that 0 / 0 gives NaN there as in pyiqa
    ss_l = torch.where(n_l > 0, ((ss - signed) / 2).clamp_(min=0.0), 0.0)
    ss_r = torch.where(n_r > 0, ((ss + signed) / 2).clamp_(min=0.0), 0.0)
    left_std = torch.sqrt(ss_l / n_l)
    right_std = torch.sqrt(ss_r / n_r)
    g = left_std / right_std
    r_hat = (l1 / m).square_() / (ss / m)
    r_norm = r_hat * (g.pow(3) + 1) * (g + 1) / (g.square() + 1).square()
    gam, table = _ratio_table(x.device, x.dtype)
    alpha = gam[_nearest_on_grid(r_norm, table)]
    k = torch.exp(0.5 * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))
    return alpha, left_std * k, right_std * k


def _mscn(
    img: torch.Tensor, start: int = 0, stop: int | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Mean-subtracted contrast-normalized coefficients (paper Eq. 1) of rows ``start .. stop-1``
    of ``img`` (in ``dtype``): local mean and variance under the Gaussian window (separable, see
    :func:`_window_taps`), the image edge replicated. A band reads the 3 rows on each side it
    needs (replicated only at the image's own edges), so its coefficients equal those of the
    whole image."""
    pad = len(_TAPS) // 2
    n, _, h, w = img.shape
    stop = h if stop is None else stop
    a, b = max(0, start - pad), min(h, stop + pad)
    top, bottom = pad - (start - a), pad - (b - stop)
    src = img[..., a:b, :].to(dtype or img.dtype)
    both = torch.empty(
        (n, 2, stop - start + 2 * pad, w + 2 * pad), dtype=src.dtype, device=img.device
    )
    p = both[:, 0:1]
    p.copy_(F.pad(src, (pad, pad, top, bottom), mode="replicate"))
    torch.mul(p, p, out=both[:, 1:2])
    stats = _filter_valid(both, _TAPS).mul_(_WINDOW_SUM)
    mu, e2 = stats[:, 0:1], stats[:, 1:2]
    sigma = e2.sub_(mu.square()).abs_().add_(torch.finfo(src.dtype).eps).sqrt_()
    return (src[..., start - a : stop - a, :] - mu).div_(sigma.add_(1.0))


def _segments(shift: int) -> list[tuple[slice, slice]]:
    """(destination, source) index pairs along one axis for a circular shift by ``shift``
    (``shifted[i] = a[(i - shift) mod L]``), as ``torch.roll`` / MATLAB ``circshift``."""
    if shift == 0:
        return [(slice(None), slice(None))]
    if shift == 1:
        return [(slice(1, None), slice(None, -1)), (slice(0, 1), slice(-1, None))]
    if shift == -1:
        return [(slice(None, -1), slice(1, None)), (slice(-1, None), slice(0, 1))]
    raise ValueError(f"unsupported shift {shift}")


def _block_features(z: torch.Tensor, bs: int) -> torch.Tensor:
    """18 features per ``bs x bs`` block of MSCN maps ``N x 1 x h x w`` -> ``N x blocks x 18``."""
    n, _, h, w = z.shape
    nbh, nbw = h // bs, w // bs
    blocks = z.reshape(n, nbh, bs, nbw, bs).permute(0, 1, 3, 2, 4)  # N, nbh, nbw, bs, bs
    # the coefficients and their products with the circularly shifted block, written in place
    x = torch.empty((5, n, nbh, nbw, bs, bs), dtype=z.dtype, device=z.device)
    x[0].copy_(blocks)
    b = x[0]
    for k, (s0, s1) in enumerate(_SHIFTS, start=1):
        for d0, r0 in _segments(s0):
            for d1, r1 in _segments(s1):
                torch.mul(b[..., d0, d1], b[..., r0, r1], out=x[k][..., d0, d1])
    alpha, bl, br = _aggd(x.view(5, n * nbh * nbw, bs * bs))  # each 5 x B
    feats = [alpha[0], (bl[0] + br[0]) / 2]
    for k in range(1, 5):
        a = alpha[k]
        eta = (br[k] - bl[k]) * torch.exp(torch.lgamma(2 / a) - torch.lgamma(1 / a))
        feats += [a, eta, bl[k], br[k]]
    return torch.stack(feats, dim=-1).reshape(n, nbh * nbw, 18)


def _mvg(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """NaN-aware mean (per feature) and covariance (over complete rows) of ``N x B x D``."""
    nan = torch.isnan(feats)
    mu = torch.where(nan, 0.0, feats).sum(dim=1) / (~nan).sum(dim=1)
    row_ok = (~nan.any(dim=-1, keepdim=True)).to(feats.dtype)  # N x B x 1
    nv = row_ok.sum(dim=1, keepdim=True)  # N x 1 x 1
    f = torch.where(row_ok > 0, feats, 0.0)
    mean = f.sum(dim=1, keepdim=True) / nv
    xc = (f - mean) * row_ok
    denom = torch.where(nv > 1, nv - 1, torch.ones_like(nv))  # one row: covariance 0
    cov = xc.transpose(1, 2) @ xc / denom
    return mu, cov


def niqe_luma(
    y: torch.Tensor, mu_pris: torch.Tensor, cov_pris: torch.Tensor, block: int = BLOCK
) -> torch.Tensor:
    """NIQE of luma levels ``N x 1 x H x W`` (float, 0..255) -> ``(N,)``.

    Large images go through in bands of block rows (each with the rows its window needs), the
    half-scale image row band by row band, so memory stays bounded; the block features are the
    same values, in the same order, as for the whole image at once."""
    n, _, h, w = y.shape
    nbh, nbw = h // block, w // block
    dt = mu_pris.dtype
    img = y[..., : nbh * block, : nbw * block]  # converted to dt band by band
    feats = []
    for scale in (1, 2):
        bs = block // scale
        hh, ww = img.shape[-2:]
        step = max(1, _functional.TILE_ELEMENTS // (n * bs * ww * 8))  # block rows a band holds
        parts = []
        for k in range(0, hh // bs, step):
            a, b = k * bs, min(hh, (k + step) * bs)
            parts.append(_block_features(_mscn(img, a, b, dt), bs))
        feats.append(torch.cat(parts, dim=1))
        if scale == 1:
            img = _half(img, dt)
    mu_d, cov_d = _mvg(torch.cat(feats, dim=-1))
    bad = ~(torch.isfinite(mu_d).all(dim=1) & torch.isfinite(cov_d).flatten(1).all(dim=1))
    eye = torch.eye(cov_d.shape[-1], dtype=cov_d.dtype, device=cov_d.device)
    cov_d = torch.where(bad[:, None, None], eye, cov_d)
    diff = torch.where(bad[:, None], 0.0, mu_pris.reshape(1, -1) - mu_d)
    inv = torch.linalg.pinv((cov_pris + cov_d) / 2)
    q = (diff.unsqueeze(1) @ inv @ diff.unsqueeze(2)).reshape(n)
    q = torch.sqrt(q)
    return torch.where(bad, torch.full_like(q, float("nan")), q)


def _half(img: torch.Tensor, dt: torch.dtype) -> torch.Tensor:
    """MATLAB ``imresize`` of ``img.to(dt)`` to half its size, row band by row band (the same
    values as :func:`llbench.metrics._resize.imresize` on the whole image)."""
    n, c, h, w = img.shape
    out = torch.empty((n, c, h // 2, w // 2), dtype=dt, device=img.device)
    for a, b in bands(h // 2, n * c * w * 12):
        out[..., a:b, :] = _resize_dim(resize_rows(img, h // 2, a, b, dt), -1, w // 2, True)
    return out
