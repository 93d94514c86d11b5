"""MATLAB-style bicubic resizing (``imresize(..., 'bicubic')`` with antialiasing), batched torch.

NIQE (second scale) and LOE (downsampling to a 50-pixel short side) are defined on top of MATLAB's
``imresize``, so their reference values depend on its exact weights. This module rebuilds those
weights from MATLAB's documented algorithm (Keys' cubic kernel with ``a = -0.5``, R. Keys, "Cubic
convolution interpolation for digital image processing", IEEE TASSP 29(6), 1981, Eq. 15; the kernel
stretched by ``1 / scale`` when shrinking, which is MATLAB's antialiasing; each output pixel's
weights normalized to sum to one; out-of-range taps mirrored with the edge pixel repeated,
``[a b c] -> [b a | a b c | c b]``).

Each 1-D pass is a gather of ``taps`` input samples per output sample and a weighted sum: O(taps)
work per output pixel, batched over all leading dimensions, on any device.
"""

from __future__ import annotations

import functools
import math

from llbench._lazy import torch  # imported on first use (light plugin loading)

#: Most values one gather of the general (non-strided) resize holds; wider inputs are resized in
#: slices along the other dimension, so shrinking a huge image stays within bounded memory.
_GATHER_ELEMENTS = 1 << 23


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (Keys 1981, Eq. 15)."""
    ax = x.abs()
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


@functools.lru_cache(maxsize=64)
def _weights_cpu(
    in_len: int, out_len: int, antialias: bool
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int, torch.Tensor] | None]:
    """Tap indices ``(out_len, taps)`` (int64, mirrored into range), weights ``(out_len, taps)``
    (float64) and, when every output sample uses the same weights at a constant stride (integer
    downsampling factors), ``(stride, taps, mirrored_span)`` for the strided fast path: the input
    indices from the first output's first tap to the last output's last tap."""
    scale = out_len / in_len
    width = 4.0  # the cubic kernel's support
    if scale < 1 and antialias:
        width = width / scale
        kscale = scale
    else:
        kscale = 1.0
    taps = math.ceil(width) + 2
    # output pixel centres in input coordinates (0-based), as MATLAB's u = x/scale + 0.5(1 - 1/scale)
    u = (torch.arange(out_len, dtype=torch.float64) + 0.5) / scale - 0.5
    left = torch.floor(u - width / 2)
    raw = left.unsqueeze(1) + torch.arange(taps, dtype=torch.float64).unsqueeze(0)
    w = _cubic((u.unsqueeze(1) - raw) * kscale)
    w = w / w.sum(dim=1, keepdim=True)
    idx = _mirror(raw.long(), in_len)
    strided = None
    step = in_len // out_len
    if in_len == step * out_len and out_len > 1 and torch.equal(w, w[:1].expand_as(w)):
        first = int(left[0])
        if torch.equal(left.long(), first + step * torch.arange(out_len)):
            span = torch.arange(first, first + step * (out_len - 1) + taps)
            strided = (step, taps, _mirror(span, in_len))
    return idx, w, strided


def _mirror(i: torch.Tensor, n: int) -> torch.Tensor:
    """Symmetric mirroring with the edge repeated (period ``2 n``)."""
    m = torch.remainder(i, 2 * n)
    return torch.where(m >= n, 2 * n - 1 - m, m)


def _resize_dim(x: torch.Tensor, dim: int, out_len: int, antialias: bool) -> torch.Tensor:
    """Resize dimension ``dim`` (negative) of ``x`` to ``out_len``."""
    in_len = x.shape[dim]
    if in_len == out_len:
        return x
    idx, w, strided = _weights_cpu(in_len, out_len, antialias)
    if strided is not None:  # same weights for every output: strided multiply-adds
        step, taps, span = strided
        xp = x.index_select(dim, span.to(x.device))
        wt = w[0].tolist()
        stop = step * (out_len - 1) + 1
        out = torch.mul(_every(xp, dim, 0, stop, step), wt[0])
        for t in range(1, taps):
            out.add_(_every(xp, dim, t, t + stop, step), alpha=wt[t])
        return out
    taps = idx.shape[1]
    other = -1 if dim == -2 else -2
    per_col = x.numel() // max(1, x.shape[dim] * x.shape[other]) * out_len * taps
    chunk = max(1, _GATHER_ELEMENTS // max(1, per_col))
    if x.shape[other] > chunk:  # bound the gather: the other dimension in slices (same values)
        parts = [
            _resize_dim(x.narrow(other, i, min(chunk, x.shape[other] - i)), dim, out_len, antialias)
            for i in range(0, x.shape[other], chunk)
        ]
        return torch.cat(parts, dim=other)
    gathered = x.index_select(dim, idx.flatten().to(x.device))
    gathered = gathered.unflatten(dim, (out_len, taps))  # taps next to the resized dimension
    shape = [1] * gathered.dim()
    shape[dim - 1], shape[dim] = out_len, taps
    wv = w.to(device=x.device, dtype=x.dtype).view(shape)
    return (gathered * wv).sum(dim=dim)


def resize_rows(
    x: torch.Tensor, out_len: int, start: int, stop: int, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Rows ``start .. stop-1`` of ``imresize`` along the rows (dim -2) to ``out_len`` rows
    (antialiased), reading only the input rows they need (converted to ``dtype``): equal, value
    for value, to the same rows of :func:`imresize`'s row pass on ``x.to(dtype)`` (the same taps
    and weights, summed in the same order)."""
    in_len = x.shape[-2]
    dtype = dtype or x.dtype
    if in_len == out_len:
        return x[..., start:stop, :].to(dtype)
    idx, w, strided = _weights_cpu(in_len, out_len, True)
    if strided is not None:
        step, taps, span = strided
        sub = span[step * start : step * (stop - 1) + taps]
        xp = x.index_select(-2, sub.to(x.device)).to(dtype)
        wt = w[0].tolist()
        last = step * (stop - start - 1) + 1
        out = torch.mul(xp[..., 0:last:step, :], wt[0])
        for t in range(1, taps):
            out.add_(xp[..., t : t + last : step, :], alpha=wt[t])
        return out
    taps = idx.shape[1]
    gathered = x.index_select(-2, idx[start:stop].flatten().to(x.device)).to(dtype)
    gathered = gathered.unflatten(-2, (stop - start, taps))
    wv = w[start:stop].to(device=x.device, dtype=dtype).view(stop - start, taps, 1)
    return (gathered * wv).sum(dim=-2)


def _every(x: torch.Tensor, dim: int, start: int, stop: int, step: int) -> torch.Tensor:
    index = [slice(None)] * x.dim()
    index[dim] = slice(start, stop, step)
    return x[tuple(index)]


def imresize(x: torch.Tensor, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """Resize the last two dimensions of ``x`` to ``size = (h, w)`` like MATLAB's bicubic
    ``imresize`` (rows first, then columns; no rounding, no clipping)."""
    h, w = size
    return _resize_dim(_resize_dim(x, -2, h, antialias), -1, w, antialias)


def imresize_uint8(x: torch.Tensor, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """MATLAB's bicubic ``imresize`` of a uint8 image held as float levels 0..255 (last two
    dimensions to ``size = (h, w)``), returning float levels.

    As ``imresize.m`` does for integer classes: the dimension with the smaller scale factor is
    resized first (a stable ``sort(scale)``, so rows first on ties), and the result of each pass
    is stored in the input's class, i.e. rounded half away from zero and saturated to 0..255.
    """
    h, w = size
    dims = [(-2, h, h / x.shape[-2]), (-1, w, w / x.shape[-1])]
    dims.sort(key=lambda d: d[2])  # stable: rows first when the scales are equal
    for dim, length, _ in dims:
        x = _resize_dim(x, dim, length, antialias).clamp(0.0, 255.0).add_(0.5).floor_()
    return x
