"""Metric classes and specs of the core metrics (the ``core-metrics`` plugin).

Each class wraps one function of :mod:`llbench.metrics.functional`: it moves its inputs to the
metric's device (a no-op when they are already there), runs under ``torch.inference_mode`` and
returns a float64 tensor of shape ``(N,)`` on that device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from llbench._lazy import torch  # imported on first use (light plugin loading)
from llbench.api import Metric, MetricSpec
from llbench.metrics import functional as F
from llbench.metrics.functional import MetricInputError


class FullReferenceMetric(Metric):
    """A metric comparing the output with its reference image: subclasses set ``name`` and
    ``fn(pred, ref) -> (N,)``; a missing reference is an error saying how to give one."""

    name: ClassVar[str]
    fn: ClassVar[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]

    def __call__(
        self,
        pred: torch.Tensor,
        ref: torch.Tensor | None = None,
        low: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if ref is None:
            raise MetricInputError(
                f"{self.name} is a full-reference metric and got no reference image: score a "
                "paired dataset, or pass the ground truth folder (llbench score --ref GT_DIR)"
            )
        with torch.inference_mode():
            return type(self).fn(pred.to(self.device), ref.to(self.device))


class PSNR(FullReferenceMetric):
    """PSNR over RGB 8-bit levels (:func:`llbench.metrics.functional.psnr`)."""

    name = "psnr"
    fn = staticmethod(F.psnr)


class PSNRY(FullReferenceMetric):
    """PSNR on BT.601 YCbCr luma (:func:`llbench.metrics.functional.psnr_y`)."""

    name = "psnr_y"
    fn = staticmethod(F.psnr_y)


class SSIM(FullReferenceMetric):
    """SSIM on rounded luma, as pyiqa's ``ssim`` (:func:`llbench.metrics.functional.ssim`)."""

    name = "ssim"
    fn = staticmethod(F.ssim)


class SSIMRGB(FullReferenceMetric):
    """SSIM per RGB channel, averaged (:func:`llbench.metrics.functional.ssim_rgb`)."""

    name = "ssim_rgb"
    fn = staticmethod(F.ssim_rgb)


class PSNRGTMean(FullReferenceMetric):
    """PSNR after GT-mean scaling (:func:`llbench.metrics.functional.psnr_gtmean`)."""

    name = "psnr_gtmean"
    fn = staticmethod(F.psnr_gtmean)


class SSIMRGBGTMean(FullReferenceMetric):
    """RGB SSIM after GT-mean scaling (:func:`llbench.metrics.functional.ssim_rgb_gtmean`)."""

    name = "ssim_rgb_gtmean"
    fn = staticmethod(F.ssim_rgb_gtmean)


class SSIMGTMean(FullReferenceMetric):
    """SSIM after GT-mean scaling (:func:`llbench.metrics.functional.ssim_gtmean`)."""

    name = "ssim_gtmean"
    fn = staticmethod(F.ssim_gtmean)


class NIQE(Metric):
    """NIQE, as pyiqa's ``niqe`` (:func:`llbench.metrics.functional.niqe`); lower is better.

    The pristine parameters are loaded (and their sha256 checked) when the metric is built.
    """

    name = "niqe"

    def __init__(
        self, device: torch.device | str = "cpu", options: Mapping[str, Any] | None = None
    ):
        super().__init__(device, options)
        from llbench.metrics import _niqe

        self.params = _niqe.pristine_params(self.device, F.work_dtype(self.device))

    def __call__(
        self,
        pred: torch.Tensor,
        ref: torch.Tensor | None = None,
        low: torch.Tensor | None = None,
    ) -> torch.Tensor:
        with torch.inference_mode():
            return F.niqe(pred.to(self.device), self.params)


class LOE(Metric):
    """Lightness order error against the low-light input (:func:`llbench.metrics.functional.loe`)."""

    name = "loe"

    def __call__(
        self,
        pred: torch.Tensor,
        ref: torch.Tensor | None = None,
        low: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if low is None:
            raise MetricInputError(
                "loe compares the output with the low-light input and got none: pass the inputs "
                "(llbench score --input LOW_DIR)"
            )
        with torch.inference_mode():
            return F.loe(pred.to(self.device), low.to(self.device))


def _niqe_available() -> str | None:
    from llbench.metrics import _niqe

    return _niqe.check_params()


_PSNR_TAIL = (
    "MSE + 255^2 * 1e-8 in the denominator (pyiqa's stabilizer), so identical images score "
    "80 dB, never infinity. Dataset score: mean over images."
)
_SSIM_CORE = (
    "11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, 'valid' windows only "
    "(no padding), no downsampling, the contrast-structure term clamped at 0, mean of the SSIM map"
)
_GTMEAN_SCALE = (
    "the output's 8-bit levels multiplied by s = mean(gray(ref)) / mean(gray(out)) with "
    "gray = 0.299 R + 0.587 G + 0.114 B (means over the image), then clipped to [0, 255]; an "
    "all-black output stays unscaled"
)

DEFINITIONS: dict[str, str] = {
    "psnr": (
        "PSNR in dB between output and reference as 8-bit RGB levels (round(255 x)): "
        "10 log10(255^2 / (MSE + 255^2 * 1e-8)), MSE over all pixels and the 3 channels of one "
        "image; " + _PSNR_TAIL
    ),
    "psnr_y": (
        "PSNR in dB on the luma of ITU-R BT.601 YCbCr, studio range: Y = 16 + (65.481 R + "
        "128.553 G + 24.966 B) / 255 for 8-bit levels (16..235, unrounded, as MATLAB rgb2ycbcr "
        "and BasicSR), peak 255, MSE over the pixels of one image; " + _PSNR_TAIL
    ),
    "ssim": (
        "SSIM (Wang et al., TIP 2004) as pyiqa's `ssim`: on the luma Y = round(0.299 R + "
        "0.587 G + 0.114 B) of the 8-bit levels (Y of YIQ, rounded to an integer level), "
        + _SSIM_CORE
        + ". Dataset score: mean over images."
    ),
    "ssim_rgb": (
        "SSIM (Wang et al., TIP 2004) on each of R, G, B (8-bit levels, no luma conversion), "
        "averaged over the 3 channels, as pyiqa's `ssimc`: " + _SSIM_CORE + ". Mean over images."
    ),
    "psnr_gtmean": (
        "GT-mean PSNR (the KinD / LLFlow / Retinexformer evaluation protocol): "
        + _GTMEAN_SCALE
        + ", not rounded; then psnr's formula against the reference (80 dB cap). Uses the "
        "reference's brightness, so it is never comparable with psnr."
    ),
    "ssim_gtmean": (
        "GT-mean SSIM: " + _GTMEAN_SCALE + ", then rounded to 8-bit levels; then ssim (luma, as "
        "`ssim`) against the reference. Uses the reference's brightness, so it is never "
        "comparable with ssim."
    ),
    "ssim_rgb_gtmean": (
        "GT-mean SSIM per RGB channel: "
        + _GTMEAN_SCALE
        + ", then rounded to 8-bit levels; then ssim_rgb (each of R, G, B, averaged) against the "
        "reference, the channel-wise SSIM of Retinexformer-style GT-mean tables. Never "
        "comparable with ssim_rgb."
    ),
    "niqe": (
        "NIQE (Mittal, Soundararajan, Bovik, SPL 2013) as pyiqa's `niqe`: luma Y = round(0.299 R "
        "+ 0.587 G + 0.114 B), cropped to whole 96x96 blocks, 18 natural-scene-statistics "
        "features per block at two scales (the second: MATLAB bicubic imresize by 1/2, 48x48 "
        "blocks), a multivariate Gaussian fit to the 36-dim block features compared with the "
        "official pristine model (BasicSR's niqe_pris_params.npz): sqrt(d^T ((S1 + S2) / 2)^+ d). "
        "Needs at least 96x96 pixels; NaN when no block has texture. Lower is better."
    ),
    "loe": (
        "Lightness order error (Wang et al., TIP 2013, NPE) of the output against the low-light "
        "input: lightness = max(R, G, B) of the 8-bit levels; both maps resized with MATLAB's "
        "antialiased bicubic imresize so the shorter side is 50 px (r = 50 / min(H, W), sizes "
        "rounded; smaller images keep their size), as imresize treats uint8 maps: the dimension "
        "with the smaller scale first, rounded to integer levels after each pass; LOE = mean over "
        "pixels x of the number of pixels y whose order (>=) relative to x differs between the "
        "two maps. 0 = order preserved; at most the pixel count of the resized map (3750 for "
        "50x75). Lower is better."
    ),
}


def metric_builder(cls: type[Metric]) -> Callable[[torch.device, Mapping[str, Any]], Metric]:
    def build(device: torch.device, options: Mapping[str, Any]) -> Metric:
        return cls(device, options)

    build.__qualname__ = f"build_{cls.__name__}"
    return build


def core_specs() -> list[MetricSpec]:
    """The specs the ``core-metrics`` plugin registers."""
    ref = frozenset({"reference"})
    fr = "full-reference"
    return [
        MetricSpec(
            "psnr",
            metric_builder(PSNR),
            "PSNR (dB), RGB 8-bit",
            fr,
            True,
            DEFINITIONS["psnr"],
            score_range=(0.0, 80.0),
            needs=ref,
        ),
        MetricSpec(
            "psnr_y",
            metric_builder(PSNRY),
            "PSNR (dB) on BT.601 Y (16-235)",
            fr,
            True,
            DEFINITIONS["psnr_y"],
            score_range=(0.0, 80.0),
            needs=ref,
            default=False,
        ),
        MetricSpec(
            "ssim",
            metric_builder(SSIM),
            "SSIM on luma, as pyiqa",
            fr,
            True,
            DEFINITIONS["ssim"],
            score_range=(0.0, 1.0),
            needs=ref,
        ),
        MetricSpec(
            "ssim_rgb",
            metric_builder(SSIMRGB),
            "SSIM per RGB channel, averaged",
            fr,
            True,
            DEFINITIONS["ssim_rgb"],
            score_range=(0.0, 1.0),
            needs=ref,
            default=False,
        ),
        MetricSpec(
            "psnr_gtmean",
            metric_builder(PSNRGTMean),
            "PSNR after GT-mean brightness scaling",
            fr,
            True,
            DEFINITIONS["psnr_gtmean"],
            score_range=(0.0, 80.0),
            needs=ref,
            default=False,
        ),
        MetricSpec(
            "ssim_gtmean",
            metric_builder(SSIMGTMean),
            "SSIM after GT-mean brightness scaling",
            fr,
            True,
            DEFINITIONS["ssim_gtmean"],
            score_range=(0.0, 1.0),
            needs=ref,
            default=False,
        ),
        MetricSpec(
            "ssim_rgb_gtmean",
            metric_builder(SSIMRGBGTMean),
            "RGB SSIM after GT-mean brightness scaling",
            fr,
            True,
            DEFINITIONS["ssim_rgb_gtmean"],
            score_range=(0.0, 1.0),
            needs=ref,
            default=False,
        ),
        MetricSpec(
            "niqe",
            metric_builder(NIQE),
            "NIQE, as pyiqa (lower is better)",
            "no-reference",
            False,
            DEFINITIONS["niqe"],
            score_range=None,
            available=_niqe_available,
        ),
        MetricSpec(
            "loe",
            metric_builder(LOE),
            "lightness order error vs the input (lower is better)",
            "no-reference",
            False,
            DEFINITIONS["loe"],
            score_range=None,
            needs=frozenset({"input"}),
        ),
    ]
