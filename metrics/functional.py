"""Core image-quality metrics as plain functions: ``llbench.metrics.functional``.

Every function takes batches ``N x 3 x H x W`` and returns a float64 tensor of shape ``(N,)`` on
the input's device. Images are float tensors holding 8-bit levels ``k / 255`` (what llbench saves
as PNG), or ``uint8`` tensors holding the levels themselves. Float input is snapped to the nearest
8-bit level (``round(clamp(x, 0, 1) * 255)``), so each metric scores exactly the 8-bit image it
names. Levels and their differences are exact integers in float32; filters, scalings and
accumulations run in float64 (float32 on Apple MPS, which has no float64; NIQE there may deviate
from pyiqa by a few tenths).

The definitions (each registered metric's ``definition`` string says the same):

* :func:`psnr` -- RGB, MSE over all pixels and channels, peak 255, per image. As pyiqa's ``psnr``,
  a stabilizer ``eps = 1e-8`` (on the ``[0, 1]`` scale) is added to the MSE, so identical images
  score a finite 80 dB (``10 log10(1 / 1e-8)``) instead of infinity; the results store turns
  non-finite values into NULL, and a cap keeps "perfect" visible and sortable.
* :func:`psnr_y` -- the same on the luma ``Y`` of ITU-R BT.601 YCbCr (studio range 16-235,
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for levels ``R, G, B`` in 0..255, the
  convention of MATLAB's ``rgb2ycbcr`` and BasicSR), unrounded, peak 255, same ``eps``.
* :func:`ssim` -- SSIM of Wang et al. (TIP 2004, Eq. 13 per window, Eq. 17 mean over windows)
  with an 11 x 11 Gaussian window (sigma 1.5, weighted statistics as Eq. 14-16), K = (0.01, 0.03),
  L = 255, computed exactly as pyiqa's ``ssim``: on the luma
  ``Y = round(0.299 R + 0.587 G + 0.114 B)`` (the Y of YIQ, i.e. BT.601 weights without the studio
  offset, rounded to an integer level, in pyiqa's float32 arithmetic, see :func:`luma_levels`),
  "valid" windows only (no padding), no 1/f downsampling (pyiqa's default; the original MATLAB
  ``ssim.m`` downsamples by ``f = max(1, round(min(H, W) / 256))``), the contrast-structure term
  clamped at 0 as pyiqa does, mean over the SSIM map.
* :func:`ssim_rgb` -- the same per R, G, B level channel, averaged over the three channels (pyiqa's
  ``ssimc``).
* :func:`psnr_gtmean`, :func:`ssim_gtmean` -- the "GT-mean" protocol of KinD's LOL evaluation,
  LLFlow and Retinexformer: the output is multiplied by ``s = mean(gray(ref)) / mean(gray(pred))``
  with ``gray = 0.299 R + 0.587 G + 0.114 B`` (means over the image, unrounded) and clipped to
  ``[0, 255]``; PSNR scores the scaled image unrounded (as those scripts compute PSNR on the float
  image), SSIM scores it rounded to 8-bit levels (as they convert to uint8 before SSIM). A black
  output (grey mean 0) stays black (``s`` is taken as 1: any gain leaves it black).
  The public scripts differ in details that move the numbers: Retinexformer's and LLFlow's apply
  OpenCV's ``COLOR_BGR2GRAY`` to RGB arrays (grey = 0.114 R + 0.587 G + 0.299 B), LLFlow's
  ``test.py`` divides by the plain RGB mean of the output and truncates the scaled image to uint8,
  and their SSIM is per RGB channel (Retinexformer) or skimage's 7 x 7 uniform-window SSIM on
  OpenCV grey (LLFlow), not the Gaussian-window luma SSIM here.
* :func:`llbench.metrics.skimage_ssim.ssim_skimage` -- scikit-image's ``structural_similarity(channel_axis=2, data_range=255)``
  with its defaults (7 x 7 uniform window, sample covariance, no clamp, mean over the windows
  inside the image, then over R, G, B): Zero-DCE's and SKF's SSIM. Equal to skimage to 1e-6.
* :func:`ssim_matlab` -- Wang et al.'s reference ``ssim.m``: MATLAB ``rgb2gray`` (rounded to
  uint8), the automatic downsampling by ``f = max(1, round(min(H, W) / 256))`` (f x f mean, every
  f-th pixel), 11 x 11 Gaussian (sigma 1.5), 'valid', no clamp.
* :func:`mse` -- mean squared error on the [0, 1] scale (SGZ's MSE column).
* :func:`niqe` -- NIQE (Mittal et al., SPL 2013) as pyiqa's ``niqe``; see :mod:`._niqe`.
* :func:`loe` -- lightness order error (Wang et al., TIP 2013) against the low-light input.

Bounded memory: every metric here works on bands of image rows (with the overlap its windows
need), sized so one band's working set holds about :data:`TILE_ELEMENTS` values, and accumulates
per-image sums. Each pixel's value is computed exactly as on the whole image; only the order in
which the per-pixel terms are summed into the mean changes (float64, so below 1e-12 relative).
Images of the usual sizes (up to about 1500 x 1000) fit in one band. The MATLAB definitions
(:func:`ssim_matlab` and its helpers) live in :mod:`llbench.metrics.matlab`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from llbench._lazy import torch  # imported on first use (light plugin loading)
from llbench.errors import ImageError
from llbench.metrics._resize import imresize_uint8

__all__ = [
    "MetricInputError",
    "work_dtype",
    "to_levels",
    "luma_levels",
    "gray_levels",
    "ycbcr_y",
    "psnr",
    "psnr_y",
    "ssim",
    "ssim_rgb",
    "ssim_levels",
    "gtmean_scale",
    "psnr_gtmean",
    "ssim_gtmean",
    "mse",
    "niqe",
    "loe",
    "loe_size",
    "PSNR_EPS",
    "PSNR_MAX_DB",
    "LOE_SHORT_SIDE",
    "TILE_ELEMENTS",
    "bands",
    "luma_banded",
    "mean_square_levels",
    "ssim_banded",
    "ssim_map_sum",
    "gtmean_factor",
]

#: Stabilizer added to the MSE on the [0, 1] scale (pyiqa's ``eps``).
PSNR_EPS = 1e-8
#: PSNR of identical images: ``10 log10(1 / PSNR_EPS)``.
PSNR_MAX_DB = 80.0

_SSIM_K1, _SSIM_K2, _SSIM_L = 0.01, 0.03, 255.0
_SSIM_WIN, _SSIM_SIGMA = 11, 1.5
LOE_SHORT_SIDE = 50

#: Values (batch x channels x rows x columns) one band of rows holds in a metric's largest
#: working array; the peak working memory of a metric is a small multiple of this (about 100 MB)
#: on top of its inputs, whatever the image size.
TILE_ELEMENTS = 1 << 22


def bands(rows: int, per_row: int, budget: int | None = None) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges covering ``rows`` output rows, each holding at most ``budget``
    (default :data:`TILE_ELEMENTS`) values at ``per_row`` values a row (at least one row)."""
    step = max(1, (budget or TILE_ELEMENTS) // max(1, per_row))
    for a in range(0, rows, step):
        yield a, min(rows, a + step)


class MetricInputError(ImageError, ValueError):
    """Images a metric cannot score: wrong rank, channel count, dtype, size or pairing."""


# -- input handling ------------------------------------------------------------------------------
def work_dtype(device: torch.device) -> torch.dtype:
    """float64, except on MPS (no float64 there)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _check(
    name: str,
    pred: torch.Tensor,
    other: torch.Tensor | None = None,
    what: str = "reference",
    min_size: int = 1,
) -> None:
    for label, t in (("prediction", pred), (what, other)):
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise MetricInputError(
                f"{name}: the {label} must be a torch.Tensor, got {type(t).__name__}"
            )
        if t.dim() != 4 or t.shape[1] != 3:
            raise MetricInputError(
                f"{name}: the {label} must be a batch N x 3 x H x W (RGB), got shape "
                f"{tuple(t.shape)}; add a batch dimension with .unsqueeze(0) for one image"
            )
        if not (t.is_floating_point() or t.dtype == torch.uint8):
            raise MetricInputError(
                f"{name}: the {label} must be float (levels k/255 in [0, 1]) or uint8, got {t.dtype}"
            )
        if min(t.shape[-2:]) < min_size:
            raise MetricInputError(
                f"{name}: needs images of at least {min_size} x {min_size} pixels, the {label} is "
                f"{t.shape[-1]} x {t.shape[-2]} (W x H)"
            )
        if t.shape[0] == 0:
            raise MetricInputError(f"{name}: the {label} batch is empty")
    if other is not None and other.shape != pred.shape:
        raise MetricInputError(
            f"{name}: prediction and {what} differ in shape: prediction {_fmt(pred)}, "
            f"{what} {_fmt(other)}. Metrics compare images pixel by pixel: the method's output must "
            f"keep the input size and each {what} must be the same image size"
        )


def _fmt(t: torch.Tensor) -> str:
    n, c, h, w = t.shape
    return f"N={n}, {w} x {h} (W x H), {c} channels"


def to_levels(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """8-bit levels 0..255 as a float tensor (exact integers, float32 by default):
    ``round(clamp(x, 0, 1) * 255)`` for float input, the values themselves for uint8 input.
    The caller's tensor is never modified."""
    dtype = torch.float32 if dtype is None else dtype
    if x.dtype == torch.uint8:
        return x.to(dtype)
    if x.dtype == dtype:
        t = torch.clamp(x, 0.0, 1.0)  # the one new tensor; the rest is in place
    else:
        t = x.to(dtype).clamp_(0.0, 1.0)
    return t.mul_(255.0).round_()


def luma_levels(levels: torch.Tensor) -> torch.Tensor:
    """Rounded luma of ``N x 3 x H x W`` levels as ``N x 1 x H x W`` (float32, integer values):
    the Y pyiqa's ``ssim`` and ``niqe`` use, ``round(255 (0.299 r + 0.587 g + 0.114 b))`` on
    ``r, g, b = level / 255`` (the Y of YIQ).

    Evaluated in float32 in the fixed order ``(0.299 r + 0.587 g) + 0.114 b``, which reproduces
    pyiqa's float32 result for all 2^24 colours, including the 3540 whose exact value is a tie
    (x.5) and whose rounding float32 decides; elementwise kernels make it the same on every device.
    """
    v = levels.to(torch.float32) / 255.0
    r, g, b = v.unbind(1)
    y = (r * 0.299 + g * 0.587).add_(b * 0.114)
    return y.mul_(255.0).round_().unsqueeze(1)


def gray_levels(levels: torch.Tensor) -> torch.Tensor:
    """Unrounded ``0.299 R + 0.587 G + 0.114 B`` (OpenCV's RGB->GRAY weights), ``N x 1 x H x W``."""
    r, g, b = levels.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def ycbcr_y(levels: torch.Tensor) -> torch.Tensor:
    """BT.601 studio-range luma ``16 + (65.481 R + 128.553 G + 24.966 B) / 255`` (16..235)."""
    r, g, b = levels.unbind(1)
    return (16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0).unsqueeze(1)


def _psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    # 10 log10(1 / (mse / 255^2 + eps)), the [0, 1]-scale formula of pyiqa
    return -10.0 * torch.log10(mse / (255.0 * 255.0) + PSNR_EPS)


# -- PSNR ----------------------------------------------------------------------------------------
def mean_square_levels(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean over pixels and channels of the squared 8-bit level differences, per image (float64),
    band by band: the differences and squares are exact integers and so are the float64 sums."""
    n, c, h, w = pred.shape
    acc = torch.zeros(n, dtype=work_dtype(pred.device), device=pred.device)
    for a, b in bands(h, n * c * w):
        d = to_levels(pred[..., a:b, :]).sub_(to_levels(ref[..., a:b, :]))
        acc += d.square_().sum(dim=(1, 2, 3), dtype=acc.dtype)
    return acc / (c * h * w)


def psnr(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PSNR in dB over RGB levels (see the module docstring); identical images give 80 dB."""
    _check("psnr", pred, ref)
    return _psnr_from_mse(mean_square_levels(pred, ref.to(pred.device)))


def psnr_y(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PSNR in dB on BT.601 YCbCr luma (16-235, unrounded), peak 255."""
    _check("psnr_y", pred, ref)
    ref = ref.to(pred.device)
    # the offset 16 cancels: Y(pred) - Y(ref) = (65.481 dR + 128.553 dG + 24.966 dB) / 255
    dt = work_dtype(pred.device)
    n, c, h, w = pred.shape
    acc = torch.zeros(n, dtype=dt, device=pred.device)
    for a, b in bands(h, n * c * w):
        d = to_levels(pred[..., a:b, :], dt).sub_(to_levels(ref[..., a:b, :], dt))
        dr, dg, db = d.unbind(1)
        dy = (65.481 * dr + 128.553 * dg + 24.966 * db) / 255.0
        acc += dy.square_().sum(dim=(1, 2))
    return _psnr_from_mse(acc / (h * w))


# -- SSIM ----------------------------------------------------------------------------------------
def _gaussian_taps(size: int, sigma: float) -> list[float]:
    """Normalized 1-D Gaussian; the 2-D window of Wang et al. is its outer product."""
    half = (size - 1) / 2.0
    g = [math.exp(-((i - half) ** 2) / (2.0 * sigma * sigma)) for i in range(size)]
    s = sum(g)
    return [v / s for v in g]


def _filter_valid(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable 'valid' correlation of the last two dims with ``taps`` (rows, then columns).

    Shifted in-place multiply-adds: k passes per direction over the image, no padding, no im2col.
    """
    k = len(taps)
    wo = x.shape[-1] - k + 1
    out = torch.mul(x[..., 0:wo], taps[0])
    for i in range(1, k):
        out.add_(x[..., i : i + wo], alpha=taps[i])
    ho = out.shape[-2] - k + 1
    res = torch.mul(out[..., 0:ho, :], taps[0])
    for i in range(1, k):
        res.add_(out[..., i : i + ho, :], alpha=taps[i])
    return res


def ssim_map_sum(x: torch.Tensor, y: torch.Tensor, clamp: bool = True) -> torch.Tensor:
    """Sum over channels and valid windows of the SSIM map of level images ``N x C x H x W``
    (float), per image.

    Local statistics (Eq. 14-16 of Wang et al.) come from one separable filtering of the stacked
    maps ``x, y, x^2, y^2, xy``; the SSIM map (Eq. 13) is then formed in place. ``clamp``: pyiqa's
    form, luminance times the contrast-structure term clamped at 0; otherwise the unclamped
    ratio of ``ssim.m``, ``(2 mu_xy + C1)(2 cov + C2) / ((mu_x^2 + mu_y^2 + C1)(var sum + C2))``.
    """
    dtype = work_dtype(x.device)
    n, c, h, w = x.shape
    c1 = (_SSIM_K1 * _SSIM_L) ** 2
    c2 = (_SSIM_K2 * _SSIM_L) ** 2
    stack = torch.empty((n, 5 * c, h, w), dtype=dtype, device=x.device)
    xs, ys, xx, yy, xy = stack.split(c, dim=1)
    xs.copy_(x)
    ys.copy_(y)
    torch.mul(xs, xs, out=xx)
    torch.mul(ys, ys, out=yy)
    torch.mul(xs, ys, out=xy)
    stats = _filter_valid(stack, _gaussian_taps(_SSIM_WIN, _SSIM_SIGMA))
    del stack
    mu1, mu2, e11, e22, e12 = stats.split(c, dim=1)
    mu12 = mu1 * mu2
    mu_sq = mu1.square_().add_(mu2.square_())  # mu1^2 + mu2^2, in mu1's storage
    var_sum = e11.add_(e22).sub_(mu_sq)  # sigma1^2 + sigma2^2
    cov = e12.sub_(mu12)  # sigma12
    if not clamp:
        num = mu12.mul_(2.0).add_(c1).mul_(cov.mul_(2.0).add_(c2))
        den = mu_sq.add_(c1).mul_(var_sum.add_(c2))
        return num.div_(den).sum(dim=(1, 2, 3))
    # contrast-structure factor, clamped at 0 as pyiqa does (C3 = C2 / 2 in Eq. 13)
    cs = cov.mul_(2.0).add_(c2).div_(var_sum.add_(c2)).clamp_(min=0.0)
    lum = mu12.mul_(2.0).add_(c1).div_(mu_sq.add_(c1))
    return lum.mul_(cs).sum(dim=(1, 2, 3))


def ssim_banded(
    rows: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]],
    shape: tuple[int, int, int, int],
    clamp: bool = True,
    per_row: int | None = None,
) -> torch.Tensor:
    """Mean SSIM of two level images of ``shape = (N, C, H, W)`` given band by band:
    ``rows(a, b)`` returns both images' rows ``a .. b-1`` (``N x C x (b - a) x W``). Each band
    holds the rows of a run of output windows plus the 10 rows they share with the next band;
    ``per_row`` (default ``5 N C W``) is the working memory one row of a band costs ``rows``."""
    n, c, h, w = shape
    ho, wo = h - _SSIM_WIN + 1, w - _SSIM_WIN + 1
    acc = None
    for a, b in bands(ho, per_row or 5 * n * c * w):
        x, y = rows(a, b + _SSIM_WIN - 1)
        part = ssim_map_sum(x, y, clamp)
        acc = part if acc is None else acc.add_(part)
    assert acc is not None
    return acc / (c * ho * wo)


def ssim_levels(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM over channels and valid windows of level images ``N x C x H x W`` (float)."""
    return ssim_banded(
        lambda a, b: (x[..., a:b, :], y[..., a:b, :]),
        tuple(x.shape),  # type: ignore[arg-type]
    )


def ssim(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """SSIM on rounded luma, as pyiqa's ``ssim`` (see the module docstring)."""
    _check("ssim", pred, ref, min_size=_SSIM_WIN)
    ref = ref.to(pred.device)
    n, _, h, w = pred.shape
    return ssim_banded(
        lambda a, b: (
            luma_levels(to_levels(pred[..., a:b, :])),
            luma_levels(to_levels(ref[..., a:b, :])),
        ),
        (n, 1, h, w),
    )


def ssim_rgb(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """SSIM per R, G, B level channel, averaged (pyiqa's ``ssimc``)."""
    _check("ssim_rgb", pred, ref, min_size=_SSIM_WIN)
    ref = ref.to(pred.device)
    return ssim_banded(
        lambda a, b: (to_levels(pred[..., a:b, :]), to_levels(ref[..., a:b, :])),
        tuple(pred.shape),  # type: ignore[arg-type]
    )


# -- GT-mean variants ----------------------------------------------------------------------------
def gtmean_factor(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``s = mean(gray(ref)) / mean(gray(pred))`` per image as ``N x 1 x 1 x 1`` (1 where the
    prediction's grey mean is 0), from the 8-bit levels of ``pred`` and ``ref``, band by band."""
    dt = work_dtype(pred.device)
    n, c, h, w = pred.shape
    sums = torch.zeros((2, n), dtype=dt, device=pred.device)
    for a, b in bands(h, n * c * w):
        for i, t in enumerate((pred, ref)):
            sums[i] += gray_levels(to_levels(t[..., a:b, :], dt)).sum(dim=(1, 2, 3))
    m_pred, m_ref = (sums / (h * w)).view(2, n, 1, 1, 1)
    return torch.where(m_pred > 0, m_ref / m_pred.clamp(min=1e-12), torch.ones_like(m_pred))


def gtmean_scale(pred_levels: torch.Tensor, ref_levels: torch.Tensor) -> torch.Tensor:
    """``pred_levels`` multiplied by ``mean(gray(ref)) / mean(gray(pred))`` per image and clipped to
    ``[0, 255]`` (unrounded). A prediction with grey mean 0 (all black) is returned unchanged."""
    m_pred = gray_levels(pred_levels).mean(dim=(1, 2, 3), keepdim=True)
    m_ref = gray_levels(ref_levels).mean(dim=(1, 2, 3), keepdim=True)
    s = torch.where(m_pred > 0, m_ref / m_pred.clamp(min=1e-12), torch.ones_like(m_pred))
    return (pred_levels * s).clamp_(0.0, 255.0)


def psnr_gtmean(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PSNR of the GT-mean-scaled output (scaled, clipped, not rounded) against the reference."""
    _check("psnr_gtmean", pred, ref)
    ref = ref.to(pred.device)
    dt = work_dtype(pred.device)
    s = gtmean_factor(pred, ref)
    n, c, h, w = pred.shape
    acc = torch.zeros(n, dtype=dt, device=pred.device)
    for a, b in bands(h, n * c * w):
        p, r = to_levels(pred[..., a:b, :], dt), to_levels(ref[..., a:b, :], dt)
        d = p.mul_(s).clamp_(0.0, 255.0).sub_(r)
        acc += d.square_().sum(dim=(1, 2, 3))
    return _psnr_from_mse(acc / (c * h * w))


def _scaled_rows(pred: torch.Tensor, ref: torch.Tensor, luma: bool):
    dt = work_dtype(pred.device)
    s = gtmean_factor(pred, ref)

    def rows(a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        p, r = to_levels(pred[..., a:b, :], dt), to_levels(ref[..., a:b, :], dt)
        p = p.mul_(s).clamp_(0.0, 255.0).round_()
        return (luma_levels(p), luma_levels(r)) if luma else (p, r)

    return rows


def ssim_gtmean(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """SSIM (luma, as :func:`ssim`) of the GT-mean-scaled output rounded to 8-bit levels."""
    _check("ssim_gtmean", pred, ref, min_size=_SSIM_WIN)
    ref = ref.to(pred.device)
    n, _, h, w = pred.shape
    return ssim_banded(_scaled_rows(pred, ref, luma=True), (n, 1, h, w))


def ssim_rgb_gtmean(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """SSIM per RGB channel (as :func:`ssim_rgb`) of the GT-mean-scaled output rounded to 8-bit
    levels: the channel-wise SSIM that Retinexformer-style GT-mean tables report."""
    _check("ssim_rgb_gtmean", pred, ref, min_size=_SSIM_WIN)
    ref = ref.to(pred.device)
    return ssim_banded(_scaled_rows(pred, ref, luma=False), tuple(pred.shape))  # type: ignore[arg-type]


# -- MSE ------------------------------------------------------------------------------------------
def mse(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean squared error on the [0, 1] scale over all pixels and RGB channels of each image."""
    _check("mse", pred, ref)
    return mean_square_levels(pred, ref.to(pred.device)) / (255.0 * 255.0)


# -- NIQE ----------------------------------------------------------------------------------------
def niqe(
    pred: torch.Tensor, params: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """NIQE of each image (lower is better), as pyiqa's ``niqe``; see :mod:`llbench.metrics._niqe`.

    ``params = (mu, cov)`` overrides the shipped pristine model (1 x 36 mean, 36 x 36 covariance).
    Images need at least 96 x 96 pixels; an image without any textured 96 x 96 block (e.g. a flat
    colour) has no defined NIQE and gives NaN.
    """
    from llbench.metrics import _niqe

    _check("niqe", pred, min_size=_niqe.BLOCK)
    dtype = work_dtype(pred.device)
    if params is None:
        params = _niqe.pristine_params(pred.device, dtype)
    return _niqe.niqe_luma(luma_banded(pred), *params)


def luma_banded(pred: torch.Tensor) -> torch.Tensor:
    """:func:`luma_levels` of ``to_levels(pred)`` (``N x 1 x H x W`` float32), band by band."""
    n, c, h, w = pred.shape
    out = torch.empty((n, 1, h, w), dtype=torch.float32, device=pred.device)
    for a, b in bands(h, n * c * w):
        out[..., a:b, :] = luma_levels(to_levels(pred[..., a:b, :]))
    return out


# -- LOE -----------------------------------------------------------------------------------------
def loe_size(h: int, w: int, short_side: int = LOE_SHORT_SIDE) -> tuple[int, int]:
    """Downsampled size for LOE: ``r = short_side / min(h, w)``, ``(round(h r), round(w r))``
    (MATLAB rounding, halves away from zero); images already that small keep their size."""
    r = short_side / min(h, w)
    if r >= 1:
        return h, w
    return max(1, math.floor(h * r + 0.5)), max(1, math.floor(w * r + 0.5))


def _lightness_small(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    dt = work_dtype(img.device)
    n, c, h, w = img.shape
    light = torch.empty((n, h, w), dtype=dt, device=img.device)
    for a, b in bands(h, n * c * w):  # lightness = max of R, G, B levels
        light[:, a:b] = to_levels(img[..., a:b, :], dt).amax(dim=1)
    if tuple(light.shape[-2:]) != size:
        light = imresize_uint8(light, size)
    return light.flatten(1).long()


def loe(
    pred: torch.Tensor, low: torch.Tensor, short_side: int | None = LOE_SHORT_SIDE
) -> torch.Tensor:
    """Lightness order error of ``pred`` against the low-light input ``low`` (lower is better).

    Following Wang et al., "Naturalness preserved enhancement algorithm for non-uniform
    illumination images" (IEEE TIP 22(9), 2013), objective assessment: lightness
    ``L(x) = max_c I^c(x)``; ``RD(x) = sum_y U(L(x), L(y)) xor U(Le(x), Le(y))`` with
    ``U(p, q) = 1 if p >= q else 0``; ``LOE = mean_x RD(x)``. As in the paper, both lightness
    maps are downsampled so the shorter side is ``short_side`` pixels (``r = 50 / min(H, W)``,
    sizes rounded), here with MATLAB's antialiased bicubic ``imresize`` as it treats the uint8
    lightness maps of the paper-literal MATLAB LOE code (``L = max(I, [], 3)`` of the uint8 image,
    ``imresize(L, [Nd Md])``): the dimension with the smaller scale first, each pass rounded to
    integer levels; images whose shorter side is already at most ``short_side`` are not resized.
    ``short_side=None`` scores full resolution.

    Not the same numbers as the other widely circulated MATLAB ``LOE.m`` (in many LLIE evaluation
    scripts), which first takes a 15 x 15 local maximum of each rounded lightness map and then
    samples every ``step = floor(min(H, W) / 50)``-th pixel (``floor(H / step) x floor(W / step)``,
    no interpolation); published LOE tables are comparable only when made with the same code.

    Counted in O(pixels + 256^2) per image: with the joint histogram cumulated into
    ``C[i, j] = #{y : L(y) <= i, Le(y) <= j}``,
    ``RD(x) = C[L(x), 255] + C[255, Le(x)] - 2 C[L(x), Le(x)]`` (pairs ordered one way in one image
    and the other way in the other), instead of comparing all pairs.
    """
    _check("loe", pred, low, what="low-light input")
    low = low.to(pred.device)
    h, w = pred.shape[-2:]
    size = (h, w) if short_side is None else loe_size(h, w, short_side)
    le = _lightness_small(pred, size)  # enhanced
    li = _lightness_small(low, size)  # input
    n, m = li.shape
    offsets = torch.arange(n, device=li.device).unsqueeze(1) * 65536
    flat = (offsets + li * 256 + le).flatten()
    hist = torch.bincount(flat, minlength=n * 65536).view(n, 256, 256)
    cum = hist.cumsum(dim=1).cumsum(dim=2)  # cum[k, i, j] = #{L <= i, Le <= j}
    col_last = cum[:, :, 255]  # #{L <= i}
    row_last = cum[:, 255, :]  # #{Le <= j}
    both = cum.view(n, 65536).gather(1, li * 256 + le)
    rd = col_last.gather(1, li) + row_last.gather(1, le) - 2 * both
    return rd.sum(dim=1).to(work_dtype(pred.device)) / m
