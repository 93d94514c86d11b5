"""Core image-quality metrics: the ``core-metrics`` plugin (``llbench.metrics``).

Registers ``psnr``, ``psnr_y``, ``ssim``, ``ssim_rgb``, ``psnr_gtmean``, ``ssim_gtmean``,
``ssim_rgb_gtmean``, ``niqe`` and ``loe``; each spec's ``definition`` states exactly what is computed. The same
computations are plain functions in :mod:`llbench.metrics.functional`::

    from llbench.metrics import functional as M
    M.psnr(pred, ref)   # (N,) float64, pred/ref N x 3 x H x W holding 8-bit levels k/255
    M.niqe(pred)
    M.loe(pred, low)

``psnr``, ``ssim`` and ``niqe`` reproduce pyiqa's metrics of the same name (see
``tests/test_metrics_core.py`` for the agreement measured on pyiqa's calibration images).
The NIQE pristine parameters ship in ``llbench/metrics/data`` (BasicSR, Apache-2.0; see
``data/NOTICE.txt``).
"""

from __future__ import annotations

from llbench.api import hookimpl
from llbench.metrics.core import (
    LOE,
    NIQE,
    PSNR,
    PSNRY,
    SSIM,
    SSIMRGB,
    PSNRGTMean,
    SSIMGTMean,
    SSIMRGBGTMean,
    core_specs,
)

__all__ = [
    "PSNR",
    "PSNRY",
    "SSIM",
    "SSIMRGB",
    "PSNRGTMean",
    "SSIMGTMean",
    "SSIMRGBGTMean",
    "NIQE",
    "LOE",
    "core_specs",
    "register_metrics",
]


@hookimpl
def register_metrics(register):
    """Register the core metrics' specs."""
    for spec in core_specs():
        register(spec)
