"""How tables print names and numbers: display names, decimals and units per metric.

Every value of a column is printed with the same number of decimals: the metric's entry in
:data:`DECIMALS`, or, for a metric not listed, the number that gives three significant digits to
the column's largest value (:func:`column_decimals`). Names not listed print as registered.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

METRICS: dict[str, str] = {
    "psnr": "PSNR",
    "psnr_y": "PSNR-Y",
    "psnr_gtmean": "PSNR (GT-mean)",
    "ssim": "SSIM",
    "ssim_rgb": "SSIM-RGB",
    "ssim_gtmean": "SSIM (GT-mean)",
    "ssim_rgb_gtmean": "SSIM-RGB (GT-mean)",
    "ssim_skimage": "SSIM (skimage)",
    "ssim_matlab": "SSIM (MATLAB)",
    "mse": "MSE",
    "psnr_sgz": "PSNR (SGZ REF.py)",
    "ssim_sgz": "SSIM (SGZ REF.py)",
    "mse_sgz": "MSE (SGZ REF.py)",
    "lpips": "LPIPS",
    "niqe": "NIQE",
    "pi": "PI",
    "nrqm": "NRQM",
    "musiq": "MUSIQ",
    "brisque": "BRISQUE",
    "unique": "UNIQUE",
    "nima": "NIMA",
    "clipiqa": "CLIP-IQA",
    "ceiq": "CEIQ",
    "loe": "LOE",
    "miou": "mIoU",
    "mpa": "mPA",
    "params": "Params",
    "flops": "FLOPs",
    "time": "Time",
}

UNITS: dict[str, str] = {
    "psnr": "dB",
    "psnr_y": "dB",
    "psnr_gtmean": "dB",
    "psnr_sgz": "dB",
    "params": "M",
    "flops": "G",
    "time": "ms",
}

DECIMALS: dict[str, int] = {
    "psnr": 2,
    "psnr_y": 2,
    "psnr_gtmean": 2,
    "psnr_sgz": 2,
    "ssim_sgz": 3,
    "ssim": 3,
    "ssim_rgb": 3,
    "ssim_gtmean": 3,
    "ssim_rgb_gtmean": 3,
    "ssim_skimage": 3,
    "ssim_matlab": 3,
    "mse": 4,
    "lpips": 3,
    "niqe": 3,
    "pi": 3,
    "nrqm": 3,
    "musiq": 2,
    "brisque": 2,
    "unique": 3,
    "nima": 3,
    "clipiqa": 3,
    "ceiq": 3,
    "loe": 1,
    "miou": 3,
    "mpa": 3,
    "params": 3,
    "flops": 2,
    "time": 1,
}

DATASETS: dict[str, str] = {
    "lol": "LOL",
    "lol-unpaired": "LOL (unpaired)",
    "lolv2-real": "LOLv2-real",
    "lolv2-synthetic": "LOLv2-synthetic",
    "lolv2-unpaired": "LOLv2-real (unpaired)",
    "lsrw": "LSRW",
    "lsrw-huawei": "LSRW-Huawei",
    "lsrw-nikon": "LSRW-Nikon",
    "dicm": "DICM",
    "lime": "LIME",
    "mef": "MEF",
    "npe": "NPE",
    "vv": "VV",
    "sice": "SICE",
    "voc-dark": "VOC (dark)",
    "scenes": "Scenes",
    "synthetic": "Synthetic",
    "synthetic-unpaired": "Synthetic (unpaired)",
    "darkcityscape": "DarkCityScape",
    "darkbdd": "DarkBDD",
    "gladnet": "GladNet",
    "lv-synthetic": "Synthetic (Lv et al.)",
}

METHODS: dict[str, str] = {
    "input": "Input",
    "gamma": "Gamma",
    "he": "HE",
    "clahe": "CLAHE",
    "lime": "LIME",
    "zero-dce": "Zero-DCE",
    "zero-dce++": "Zero-DCE++",
    "sgz": "SGZ",
    "retinexnet": "RetinexNet",
    "retinexnet-skf": "RetinexNet-SKF",
    "kind": "KinD",
    "kind-skf": "KinD-SKF",
    "drbn": "DRBN",
    "drbn-skf": "DRBN-SKF",
    "crnet": "CRNet",
    "mcmt": "MCMT",
    "sllen": "SLLEN",
    "lightendiffusion": "LightenDiffusion",
    "hillie": "HiLLIE",
}


def metric_name(metric: str) -> str:
    return METRICS.get(metric, metric)


def dataset_name(dataset: str) -> str:
    return DATASETS.get(dataset, dataset)


def method_name(method: str) -> str:
    return METHODS.get(method, method)


def unit(metric: str) -> str:
    return UNITS.get(metric, "")


def column_decimals(metric: str, values: Iterable[float]) -> int:
    """Decimals for every value of a column of ``metric``: its :data:`DECIMALS` entry, else
    three significant digits for the smallest non-zero value (at most 4 decimals)."""
    if metric in DECIMALS:
        return DECIMALS[metric]
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return 3
    return max(0, min(4, 2 - math.floor(math.log10(min(finite)))))


def fmt(value: float | None, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{decimals}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def fmt_signed(value: float, decimals: int) -> str:
    text = fmt(value, decimals)
    return text if text.startswith("-") else "+" + text
