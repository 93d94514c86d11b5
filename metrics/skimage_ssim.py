"""SSIM exactly as scikit-image computes it by default: :func:`ssim_skimage`.

``skimage.metrics.structural_similarity(pred, ref, channel_axis=2, data_range=255)`` on 8-bit
RGB is the SSIM of Zero-DCE's evaluation script and of SKF Table 1 (Zero-DCE on LOL: 0.562). Per
colour channel (Wang et al., TIP 2004, Eq. 13 with ``C3 = C2 / 2``): a 7 x 7 uniform window,
sample (co)variances (``N / (N - 1)``, N = 49), ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``,
no clamping, the SSIM map averaged over the windows lying inside the image (skimage filters with
mirrored borders, then crops 3 pixels on each side: the same windows); then the mean over R, G, B.

How it is fast and exact: with the window sums ``a = sum x``, ``b = sum y``, ``q = sum x^2 + y^2``
and ``r = sum xy`` (exact int32 for 8-bit levels), Eq. 13 becomes
``S = (2ab + c1)(2(49 r - ab) + c2) / ((a^2 + b^2 + c1)(49 q - a^2 - b^2 + c2))`` with
``c1 = 49^2 C1`` and ``c2 = 49 * 48 C2``. Every difference that could cancel is formed in
integers; only the final products and the ratio are float32 (error far below 1e-6 on the mean),
summed in float64. The 7-wide box sums take four additions per axis (sums of 2, then 4, then
4 + 2 + 1). On CPU one image's three planes are processed in bands of about 64 rows of a 600-wide
image, so each band's working arrays stay in the core's cache; preallocated buffers are reused
from band to band. On a GPU all planes go at once, in bands bounded by
:data:`llbench.metrics.functional.TILE_ELEMENTS`. 600 x 400: about 3.3 ms here against
skimage's 40 ms (``tests/benchmarks/test_bench_ssim_variants.py``).
"""

from __future__ import annotations

import math
import threading

from llbench._lazy import torch  # imported on first use (light plugin loading)
from llbench.metrics.functional import TILE_ELEMENTS, _check, to_levels, work_dtype

__all__ = ["ssim_skimage", "WINDOW"]

#: Side of scikit-image's default uniform window.
WINDOW = 7
#: Values per working array in one CPU band (about 64 rows x 3 planes x 600 columns): small
#: enough that a band's arrays stay in a core's cache, large enough to keep per-call overhead low.
_CPU_BAND_ELEMENTS = 3 * 64 * 600
_MIN_BAND_ROWS = 16
_K1, _K2, _L = 0.01, 0.03, 255.0


def _box7(src: torch.Tensor, half: torch.Tensor, tmp: torch.Tensor, out: torch.Tensor) -> None:
    """7 x 7 sums over the 'valid' windows of ``src`` (last two dims) into ``out``: along each
    axis ``s2 = x_i + x_(i+1)``, ``s4 = s2_i + s2_(i+2)``, ``s7 = s4_i + s2_(i+4) + x_(i+6)``.
    ``half`` is scratch of ``src``'s shape; ``tmp`` holds the row sums (``src``'s rows, the
    output's columns)."""
    wo, ho = out.shape[-1], out.shape[-2]
    s2 = half[..., : src.shape[-1] - 1]
    torch.add(src[..., :-1], src[..., 1:], out=s2)
    torch.add(s2[..., 0:wo], s2[..., 2 : wo + 2], out=tmp)
    tmp.add_(s2[..., 4 : wo + 4]).add_(src[..., 6 : wo + 6])
    s2 = half[..., : tmp.shape[-2] - 1, :wo]
    torch.add(tmp[..., :-1, :], tmp[..., 1:, :], out=s2)
    torch.add(s2[..., 0:ho, :], s2[..., 2 : ho + 2, :], out=out)
    out.add_(s2[..., 4 : ho + 4, :]).add_(tmp[..., 6 : ho + 6, :])


_SCRATCH = threading.local()  # per thread: concurrent calls never share buffers


def _scratch(dev: torch.device, dtype: torch.dtype, shapes: list[tuple[int, ...]]) -> list:
    """Tensors of ``shapes`` carved from one buffer per thread, device and dtype, kept between
    calls (allocating fresh pages on every call costs as much as a tenth of the metric)."""
    sizes = [math.prod(s) for s in shapes]
    cache = _SCRATCH.__dict__.setdefault("buffers", {})
    key = (str(dev), dtype)
    buf = cache.get(key)
    if buf is None or buf.numel() < sum(sizes):
        buf = cache[key] = torch.empty(sum(sizes), dtype=dtype, device=dev)
    out, at = [], 0
    for shape, n in zip(shapes, sizes, strict=True):
        out.append(buf[at : at + n].view(shape))
        at += n
    return out


def ssim_skimage(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """SSIM exactly as scikit-image's ``structural_similarity(pred, ref, channel_axis=2,
    data_range=255)`` with its defaults on the 8-bit RGB images (see the module docstring);
    ``(N,)`` float64. Equal to skimage to 1e-6 (``tests/test_metric_variants.py``)."""
    _check("ssim_skimage", pred, ref, min_size=WINDOW)
    ref = ref.to(pred.device)
    n, c, h, w = pred.shape
    dev, it = pred.device, torch.int32
    x = to_levels(pred).to(it).reshape(n * c, h, w)
    y = to_levels(ref).to(it).reshape(n * c, h, w)
    ho, wo = h - WINDOW + 1, w - WINDOW + 1
    k, budget = (c, _CPU_BAND_ELEMENTS) if dev.type == "cpu" else (n * c, TILE_ELEMENTS)
    step = min(ho, max(_MIN_BAND_ROWS, budget // (k * w)))
    c1 = 49.0 * 49.0 * (_K1 * _L) ** 2
    c2 = 49.0 * 48.0 * (_K2 * _L) ** 2
    # buffers for the largest band, reused (as leading-row views) for every band
    rows = step + WINDOW - 1
    maps, half, rowsum, sums, ints = _scratch(
        dev,
        it,
        [(4, k, rows, w), (4, k, rows, w), (4, k, rows, wo), (4, k, step, wo), (4, k, step, wo)],
    )
    (flts,) = _scratch(dev, torch.float32, [(4, k, step, wo)])
    total = torch.zeros(n * c, dtype=work_dtype(dev), device=dev)
    for s in range(0, n * c, k):
        for a in range(0, ho, step):
            m = min(step, ho - a)
            rows = m + WINDOW - 1
            ws, sm, nm, fl = maps[:, :, :rows], sums[:, :, :m], ints[:, :, :m], flts[:, :, :m]
            xs, ys, qs, rs = ws.unbind(0)
            xs.copy_(x[s : s + k, a : a + rows])
            ys.copy_(y[s : s + k, a : a + rows])
            torch.mul(xs, xs, out=qs).addcmul_(ys, ys)
            torch.mul(xs, ys, out=rs)
            _box7(ws, half[:, :, :rows], rowsum[:, :, :rows], sm)
            sa, sb, sq, sr = sm.unbind(0)
            ab, a2b2, cov, var = nm.unbind(0)
            torch.mul(sa, sb, out=ab)  # 49^2 mu_x mu_y
            torch.mul(sa, sa, out=a2b2).addcmul_(sb, sb)  # 49^2 (mu_x^2 + mu_y^2)
            torch.mul(sr, 49, out=cov).sub_(ab)  # 49 * 48 cov_xy
            torch.mul(sq, 49, out=var).sub_(a2b2)  # 49 * 48 (var_x + var_y)
            fl.copy_(nm)
            f_ab, f_a2b2, f_cov, f_var = fl.unbind(0)
            f_ab.add_(c1 / 2).mul_(f_cov.add_(c2 / 2))
            f_a2b2.add_(c1).mul_(f_var.add_(c2))
            total[s : s + k] += f_ab.div_(f_a2b2).sum(dim=(-2, -1), dtype=total.dtype)
    return (total * (4.0 / (ho * wo))).reshape(n, c).mean(dim=1)
