"""The metric definitions the seed papers used: the ``metric-variants`` plugin.

Registers ``ssim_skimage``, ``ssim_matlab``, ``mse``, ``ceiq`` and SGZ's ``psnr_sgz``,
``ssim_sgz``, ``mse_sgz``. Each is a separate name
because its numbers are not comparable with ``ssim`` (pyiqa's luma SSIM) or with each other; the
column-by-column mapping of every seed paper's tables to these names is in ``docs/metrics/``.

* ``ssim_skimage`` -- scikit-image's ``structural_similarity(channel_axis=2, data_range=255)``
  (7 x 7 uniform window, sample covariance, mean over R, G, B): the SSIM of Zero-DCE's evaluation
  and of SKF Table 1 (Zero-DCE on LOL: 0.562). :func:`llbench.metrics.skimage_ssim.ssim_skimage`.
* ``ssim_matlab`` -- Wang et al.'s reference ``ssim.m`` on MATLAB ``rgb2gray``, with its automatic
  downsampling (f = 2 on LOL's 600 x 400). :func:`llbench.metrics.matlab.ssim_matlab`.
* ``mse`` -- mean squared error on [0, 1] (SGZ Tables 2, 3, 6).
* ``ceiq`` -- Yan et al.'s contrast quality score with the authors' SVR (:mod:`.ceiq`); needs
  the released model file in the cache.
* ``psnr_sgz``, ``ssim_sgz``, ``mse_sgz`` -- SGZ's ``REF.py``: OpenCV's greyscale PNG read,
  per-image min-max normalisation, old scikit-image defaults (SSIM data range 2)
  (:mod:`llbench.metrics.sgz_ref`).
"""

from __future__ import annotations

from llbench.api import MetricSpec, hookimpl
from llbench.metrics import functional as F
from llbench.metrics import matlab as MATLAB
from llbench.metrics import sgz_ref as SGZ
from llbench.metrics.core import FullReferenceMetric, metric_builder
from llbench.metrics.skimage_ssim import ssim_skimage

__all__ = [
    "SSIMSkimage",
    "SSIMMatlab",
    "MSE",
    "PSNRSGZ",
    "SSIMSGZ",
    "MSESGZ",
    "DEFINITIONS",
    "variant_specs",
    "register_metrics",
]


class SSIMSkimage(FullReferenceMetric):
    """scikit-image's default SSIM on 8-bit RGB (:func:`llbench.metrics.skimage_ssim.ssim_skimage`)."""

    name = "ssim_skimage"
    fn = staticmethod(ssim_skimage)


class SSIMMatlab(FullReferenceMetric):
    """Wang et al.'s ``ssim.m`` on ``rgb2gray`` (:func:`llbench.metrics.matlab.ssim_matlab`)."""

    name = "ssim_matlab"
    fn = staticmethod(MATLAB.ssim_matlab)


class PSNRSGZ(FullReferenceMetric):
    """SGZ's REF.py PSNR (:func:`llbench.metrics.sgz_ref.psnr_sgz`)."""

    name = "psnr_sgz"
    fn = staticmethod(SGZ.psnr_sgz)


class SSIMSGZ(FullReferenceMetric):
    """SGZ's REF.py SSIM (:func:`llbench.metrics.sgz_ref.ssim_sgz`)."""

    name = "ssim_sgz"
    fn = staticmethod(SGZ.ssim_sgz)


class MSESGZ(FullReferenceMetric):
    """SGZ's REF.py MSE (:func:`llbench.metrics.sgz_ref.mse_sgz`)."""

    name = "mse_sgz"
    fn = staticmethod(SGZ.mse_sgz)


class MSE(FullReferenceMetric):
    """Mean squared error on [0, 1] (:func:`llbench.metrics.functional.mse`)."""

    name = "mse"
    fn = staticmethod(F.mse)


DEFINITIONS: dict[str, str] = {
    "ssim_skimage": (
        "SSIM as scikit-image's structural_similarity(out, ref, channel_axis=2, data_range=255) "
        "with its defaults, on the 8-bit RGB levels: per channel a 7x7 uniform window, sample "
        "(co)variances (x 49/48), C1 = (0.01*255)^2, C2 = (0.03*255)^2, Eq. 13 of Wang et al. "
        "without clamping, mean of the SSIM map over the windows inside the image (3-pixel "
        "border cropped); mean over R, G, B. Equal to skimage to 1e-6. The SSIM of Zero-DCE's "
        "test script and SKF Table 1. Dataset score: mean over images."
    ),
    "ssim_matlab": (
        "SSIM as Wang et al.'s reference ssim.m (2009) on MATLAB rgb2gray of the 8-bit images: "
        "grey = uint8 rounding of 0.298936 R + 0.587043 G + 0.114021 B; both images low-passed "
        "with an f x f mean ('symmetric' borders, MATLAB's kernel centre) and sampled every f-th "
        "pixel, f = max(1, round(min(H, W) / 256)) (f = 2 on 600x400); 11x11 Gaussian window "
        "(sigma 1.5), K = (0.01, 0.03), L = 255, 'valid' windows, no clamping; mean of the SSIM "
        "map. Dataset score: mean over images."
    ),
    "mse": (
        "Mean squared error between output and reference on the [0, 1] scale (8-bit levels / "
        "255), over all pixels and the 3 channels of one image. Dataset score: mean over images "
        "(not the MSE of the mean PSNR). The closest RGB counterpart of SGZ's MSE column."
    ),
    "psnr_sgz": (
        "PSNR as SGZ's REF.py: both PNGs read as OpenCV greyscale (libpng's (9797 R + 19234 G + "
        "3737 B) >> 15, grey pixels unchanged), each min-max normalised to [0, 1] in float32 "
        "(cv2.normalize NORM_MINMAX), then skimage 0.16 compare_psnr: 10 log10(1 / MSE), data "
        "range 1. Dataset score: mean over images. SGZ Tables 2, 3, 4, 6."
    ),
    "ssim_sgz": (
        "SSIM as SGZ's REF.py: OpenCV greyscale PNG read and per-image min-max normalisation as "
        "psnr_sgz, then skimage 0.16 compare_ssim defaults for float32: 7x7 uniform window, "
        "sample covariance, K = (0.01, 0.03), data range 2 (float32's dtype range), mean over "
        "the windows inside the image, in float64. Dataset score: mean over images."
    ),
    "mse_sgz": (
        "MSE as SGZ's REF.py: OpenCV greyscale PNG read and per-image min-max normalisation as "
        "psnr_sgz, then skimage 0.16 compare_mse: float64 mean of the float32 squared "
        "differences. Dataset score: mean over images."
    ),
}


def variant_specs() -> list[MetricSpec]:
    """The specs this plugin registers (none is in the default metric set)."""
    from llbench.metrics.ceiq import ceiq_spec

    ref = frozenset({"reference"})
    fr = "full-reference"
    return [
        MetricSpec(
            "ssim_skimage",
            metric_builder(SSIMSkimage),
            "SSIM as scikit-image's default (7x7 uniform, RGB mean)",
            fr,
            True,
            DEFINITIONS["ssim_skimage"],
            score_range=(-1.0, 1.0),
            needs=ref,
            default=False,
        ),
        MetricSpec(
            "ssim_matlab",
            metric_builder(SSIMMatlab),
            "SSIM as Wang et al.'s ssim.m (rgb2gray, auto-downsampling)",
            fr,
            True,
            DEFINITIONS["ssim_matlab"],
            score_range=(-1.0, 1.0),
            needs=ref,
            default=False,
        ),
        MetricSpec(
            "mse",
            metric_builder(MSE),
            "Mean squared error on [0, 1] (lower is better)",
            fr,
            False,
            DEFINITIONS["mse"],
            score_range=(0.0, 1.0),
            needs=ref,
            default=False,
        ),
        ceiq_spec(),
        MetricSpec(
            "psnr_sgz",
            metric_builder(PSNRSGZ),
            "PSNR as SGZ's REF.py (grey, per-image min-max)",
            fr,
            True,
            DEFINITIONS["psnr_sgz"],
            needs=ref,
            default=False,
        ),
        MetricSpec(
            "ssim_sgz",
            metric_builder(SSIMSGZ),
            "SSIM as SGZ's REF.py (grey, per-image min-max, data range 2)",
            fr,
            True,
            DEFINITIONS["ssim_sgz"],
            score_range=(-1.0, 1.0),
            needs=ref,
            default=False,
        ),
        MetricSpec(
            "mse_sgz",
            metric_builder(MSESGZ),
            "MSE as SGZ's REF.py (grey, per-image min-max; lower is better)",
            fr,
            False,
            DEFINITIONS["mse_sgz"],
            score_range=(0.0, 1.0),
            needs=ref,
            default=False,
        ),
    ]


@hookimpl
def register_metrics(register):
    """Register the metric variants of the seed papers."""
    for spec in variant_specs():
        register(spec)
