"""Contrast-limited adaptive histogram equalization (CLAHE) of the luma, in torch.

K. Zuiderveld, "Contrast Limited Adaptive Histogram Equalization", Graphics Gems IV, 1994,
pp. 474-485 (building on Pizer et al., CVGIP 39, 1987). This is llbench's own batched torch
implementation of the algorithm in the form OpenCV's ``cv2.createCLAHE`` computes it, so that
``clip_limit = 2.0`` and ``tile_grid = [8, 8]`` mean what they mean in the many LLIE papers that
report OpenCV's CLAHE:

1. Luma: full-range YCbCr as for ``he`` (:mod:`llbench.plugins.he.luma`), quantized to 8 bits.
2. Contextual regions: the image is split into ``rows x cols`` tiles. When ``H`` and ``W`` are
   multiples of ``rows`` and ``cols`` the tiles are ``H / rows x W / cols`` pixels; otherwise, as
   in OpenCV, the bottom and right edges are extended by ``rows - H mod rows`` rows and
   ``cols - W mod cols`` columns (a whole extra tile row where ``H`` is a multiple but ``W`` is
   not, and vice versa) by mirror reflection without repeating the edge pixel
   (BORDER_REFLECT_101), and the tiles cover the extended image. An image smaller than the grid
   in a dimension gets one tile row/column per pixel there.
3. Clipping (Zuiderveld's ``ClipHistogram``): each tile's 256-bin histogram is clipped at
   ``max(1, floor(clip_limit * tile_area / 256))`` counts; the clipped excess is redistributed,
   ``floor(excess / 256)`` to every bin and the remaining ``r`` counts one each to bins
   ``0, s, 2 s, ...`` with step ``s = max(1, floor(256 / r))``. ``clip_limit <= 0`` disables
   clipping (plain AHE).
4. Mapping (``MapHistogram``): ``lut[k] = round(255 * cdf[k] / tile_area)``.
5. Interpolation: each pixel's new level is the bilinear interpolation of the four nearest tile
   mappings, weighted by its distance to the tile centres (tiles at the border use the nearest
   mapping), rounded to 8 bits.
6. RGB is rebuilt from the new luma and the original Cb, Cr and clipped to [0, 1].

Clipping the histogram bounds the slope of each tile's mapping by ``clip_limit`` (times 255 / 256
levels per level), which is what keeps noise in flat regions from being stretched over the whole
range as global HE does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from llbench.api import Method
from llbench.errors import ConfigError, ImageError
from llbench.plugins.he.luma import rgb_to_ycbcr, to_u8, ycbcr_to_rgb
from llbench.plugins.he.method import check_luma

from . import DEFAULT_CONFIG

NBINS = 256


def _reflect101(n: int, padded: int, device: torch.device) -> torch.Tensor:
    """Indices ``0..padded-1`` mapped into ``0..n-1`` by reflection without edge repetition."""
    idx = torch.arange(padded, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = idx % period
    return torch.where(idx < n, idx, period - idx)


def clip_histograms(hist: torch.Tensor, limit: int) -> torch.Tensor:
    """Clip ``... x 256`` integer histograms at ``limit`` and redistribute the excess.

    Zuiderveld's ``ClipHistogram`` with OpenCV's redistribution order (module docstring, step 3).
    The total count of each histogram is preserved.
    """
    excess = (hist - limit).clamp_min(0).sum(-1, keepdim=True)
    clipped = hist.clamp_max(limit)
    batch = excess // NBINS
    residual = excess - batch * NBINS
    bins = torch.arange(NBINS, device=hist.device)
    step = (NBINS // residual.clamp_min(1)).clamp_min(1)
    extra = (bins % step == 0) & (bins // step < residual)
    return clipped + batch + extra.long()


def clahe_levels(
    levels: torch.Tensor, clip_limit: float = 2.0, tile_grid: Sequence[int] = (8, 8)
) -> torch.Tensor:
    """CLAHE of 8-bit levels: ``N x H x W`` int64 in 0..255 -> ``N x H x W`` float levels 0..255.

    ``tile_grid`` is ``(rows, cols)``. See the module docstring for each step.
    """
    n, h, w = levels.shape
    dev = levels.device
    ty, tx = min(int(tile_grid[0]), h), min(int(tile_grid[1]), w)
    if h % ty == 0 and w % tx == 0:
        th, tw = h // ty, w // tx
    else:  # OpenCV extends both edges, by a whole extra tile row/column where one divides
        th, tw = (h + ty - h % ty) // ty, (w + tx - w % tx) // tx
    area = th * tw

    # 2. tiles over the reflect-101-extended image
    ext = levels[:, _reflect101(h, ty * th, dev)][:, :, _reflect101(w, tx * tw, dev)]
    tiles = ext.view(n, ty, th, tx, tw).permute(0, 1, 3, 2, 4).reshape(n * ty * tx, area)
    offsets = torch.arange(n * ty * tx, device=dev)[:, None] * NBINS
    hist = torch.bincount((tiles + offsets).reshape(-1), minlength=n * ty * tx * NBINS)
    hist = hist.view(n * ty * tx, NBINS)

    # 3. clip and redistribute
    if clip_limit > 0:
        hist = clip_histograms(hist, max(int(clip_limit * area / NBINS), 1))

    # 4. per-tile mappings
    lut = (hist.cumsum(1).float() * (255.0 / area)).round().clamp(0, 255).view(n, ty * tx * NBINS)

    # 5. bilinear interpolation between the four nearest tile centres (float32, as OpenCV)
    def axis(size: int, tile: int, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = torch.arange(size, device=dev, dtype=torch.float32) * (1.0 / tile) - 0.5
        i1 = f.floor()
        frac = f - i1
        i1 = i1.long()
        return i1.clamp_min(0), (i1 + 1).clamp_max(count - 1), frac

    y1, y2, ya = axis(h, th, ty)
    x1, x2, xa = axis(w, tw, tx)
    flat = levels.reshape(n, h * w)

    def corner(iy: torch.Tensor, ix: torch.Tensor) -> torch.Tensor:
        index = ((iy[:, None] * tx + ix[None, :]) * NBINS).reshape(1, h * w) + flat
        return lut.gather(1, index).view(n, h, w)

    xa, ya = xa[None, None, :], ya[None, :, None]
    top = corner(y1, x1) * (1 - xa) + corner(y1, x2) * xa
    bottom = corner(y2, x1) * (1 - xa) + corner(y2, x2) * xa
    return (top * (1 - ya) + bottom * ya).round().clamp(0, 255)


def _config(config: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise ConfigError(
            f"method 'clahe': unknown config key(s) {unknown}; known keys: {sorted(DEFAULT_CONFIG)}"
        )
    cfg = {**DEFAULT_CONFIG, **config}
    if isinstance(cfg["clip_limit"], bool) or not isinstance(cfg["clip_limit"], int | float):
        raise ConfigError(f"method 'clahe': clip_limit must be a number, got {cfg['clip_limit']!r}")
    grid = cfg["tile_grid"]
    if isinstance(grid, int):
        grid = [grid, grid]
    if (
        not isinstance(grid, Sequence)
        or len(grid) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in grid)
    ):
        raise ConfigError(
            f"method 'clahe': tile_grid must be [rows, cols] of positive integers, got {grid!r}"
        )
    cfg["tile_grid"] = [int(grid[0]), int(grid[1])]
    check_luma("clahe", cfg["luma"])
    return cfg


class CLAHE(Method):
    """CLAHE of the 8-bit luma with chroma kept; see the module docstring."""

    def __init__(self, config: Mapping[str, Any], device: torch.device):
        super().__init__(_config(config), device)

    def enhance(self, low: torch.Tensor) -> torch.Tensor:
        if low.ndim != 4 or low.shape[1] != 3:
            raise ImageError(
                f"'clahe' expects an N x 3 x H x W batch, got shape {tuple(low.shape)}"
            )
        luma = self.config["luma"]
        ycc = rgb_to_ycbcr(low.float().clamp(0, 1), luma)
        y = clahe_levels(to_u8(ycc[:, 0]), self.config["clip_limit"], self.config["tile_grid"])
        out = ycbcr_to_rgb(torch.cat(((y / 255)[:, None], ycc[:, 1:]), 1), luma)
        return out.clamp(0, 1).to(low.dtype)

    def provenance(self) -> dict[str, Any]:
        return {"implementation": "llbench torch CLAHE (OpenCV-compatible clipping and mapping)"}
