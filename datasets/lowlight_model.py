"""A seeded, physically plausible model that turns a well-exposed sRGB image into a low-light one.

Used by ``voc-dark`` (PASCAL VOC 2012 val darkened for segmentation in the dark, as SLLEN's
Sec. III-F does with the synthesis of Zhang et al., "Learning temporal consistency for low light
video enhancement from single images", CVPR 2021) and by the synthetic dataset.

The model, applied per image (all arithmetic in float64, channel-independent):

1. Decode sRGB to linear light with the IEC 61966-2-1 transfer function:
   ``L = x / 12.92`` for ``x <= 0.04045``, else ``((x + 0.055) / 1.055) ** 2.4``.
2. Dim the scene: ``D = exposure * L ** gamma``. ``exposure`` < 1 is the loss of light (a shorter
   exposure or a darker scene, ``log2(1 / exposure)`` stops); ``gamma`` >= 1 darkens shadows more
   than highlights, the ``beta * (alpha * I) ** gamma`` family of Lv et al. (MBLLEN, BMVC 2018)
   and Zhang et al. (CVPR 2021), here applied in linear light rather than to display values.
3. Sensor noise, Poisson-Gaussian (Foi et al., "Practical Poissonian-Gaussian noise modeling and
   fitting for single-image raw-data", TIP 2008): ``N = shot_noise * Poisson(D / shot_noise) +
   Normal(0, read_noise ** 2)``, so ``Var[N | D] = shot_noise * D + read_noise ** 2``.
   ``shot_noise`` is the signal level of one photo-electron (a higher ISO gain means a larger
   value); ``read_noise`` is the standard deviation of the signal-independent part. Both are in
   linear units of full scale. A value of 0 turns that term off.
4. Clip to [0, 1], encode back to sRGB (the inverse of step 1) and quantize to 8 bits by rounding.

Parameters are fixed when given as a number and drawn from ``rng`` when given as a
``(low, high)`` range: ``gamma`` uniformly, the others log-uniformly (they span orders of
magnitude). The defaults draw:

======================  ===================  ==========================================
parameter               default range        meaning
======================  ===================  ==========================================
``exposure``            0.04 .. 0.25         2 to 4.6 stops under-exposed
``gamma``               1.0 .. 1.4           extra shadow darkening in linear light
``shot_noise``          2e-4 .. 2e-3         500 to 5000 photo-electrons at full scale
``read_noise``          5e-4 .. 4e-3         read noise, fraction of full scale
======================  ===================  ==========================================

Draws happen in the order exposure, gamma, shot_noise, read_noise, then the noise itself, so a
generator seeded the same way gives bit-identical images.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

Param = float | tuple[float, float]

EXPOSURE_RANGE: tuple[float, float] = (0.04, 0.25)
GAMMA_RANGE: tuple[float, float] = (1.0, 1.4)
SHOT_NOISE_RANGE: tuple[float, float] = (2e-4, 2e-3)
READ_NOISE_RANGE: tuple[float, float] = (5e-4, 4e-3)


@dataclass(frozen=True)
class DarkenParams:
    """The parameters one call of :func:`darken` used (stored beside generated data)."""

    exposure: float
    gamma: float
    shot_noise: float
    read_noise: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decoding of values in [0, 1]."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding of linear values in [0, 1] (the inverse of the above)."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


def _draw(value: Param, rng: np.random.Generator, name: str, log: bool) -> float:
    if isinstance(value, tuple | list):
        lo, hi = (float(v) for v in value)
        if not (hi >= lo >= 0.0) or (log and lo <= 0.0):
            raise ValueError(
                f"{name} range must be 0 {'<' if log else '<='} low <= high, got {value}"
            )
        if lo == hi:
            return lo
        if log:
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        return float(rng.uniform(lo, hi))
    v = float(value)
    if not math.isfinite(v) or v < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return v


def draw_params(
    rng: np.random.Generator,
    *,
    exposure: Param = EXPOSURE_RANGE,
    gamma: Param = GAMMA_RANGE,
    shot_noise: Param = SHOT_NOISE_RANGE,
    read_noise: Param = READ_NOISE_RANGE,
) -> DarkenParams:
    """Resolve each parameter: a number is used as is, a ``(low, high)`` range is drawn."""
    p = DarkenParams(
        exposure=_draw(exposure, rng, "exposure", log=True),
        gamma=_draw(gamma, rng, "gamma", log=False),
        shot_noise=_draw(shot_noise, rng, "shot_noise", log=True),
        read_noise=_draw(read_noise, rng, "read_noise", log=True),
    )
    if not 0.0 < p.exposure <= 1.0:
        raise ValueError(f"exposure must be in (0, 1], got {p.exposure}")
    if p.gamma <= 0.0:
        raise ValueError(f"gamma must be > 0, got {p.gamma}")
    return p


def apply_params(
    rgb_uint8: np.ndarray, params: DarkenParams, rng: np.random.Generator
) -> np.ndarray:
    """Steps 1-4 of the module docstring with fixed ``params``; noise drawn from ``rng``."""
    rgb = np.asarray(rgb_uint8)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 uint8 array, got {rgb.dtype} {rgb.shape}")
    lin = srgb_to_linear(rgb / 255.0)
    dim = params.exposure * np.power(lin, params.gamma)
    if params.shot_noise > 0.0:
        dim = rng.poisson(dim / params.shot_noise) * params.shot_noise
    if params.read_noise > 0.0:
        dim = dim + rng.normal(0.0, params.read_noise, size=dim.shape)
    out = linear_to_srgb(np.clip(dim, 0.0, 1.0))
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def darken_with_params(
    rgb_uint8: np.ndarray,
    rng: np.random.Generator,
    *,
    exposure: Param = EXPOSURE_RANGE,
    gamma: Param = GAMMA_RANGE,
    shot_noise: Param = SHOT_NOISE_RANGE,
    read_noise: Param = READ_NOISE_RANGE,
) -> tuple[np.ndarray, DarkenParams]:
    """Like :func:`darken`, also returning the parameters that were drawn."""
    params = draw_params(
        rng, exposure=exposure, gamma=gamma, shot_noise=shot_noise, read_noise=read_noise
    )
    return apply_params(rgb_uint8, params, rng), params


def darken(
    rgb_uint8: np.ndarray,
    rng: np.random.Generator,
    *,
    exposure: Param = EXPOSURE_RANGE,
    gamma: Param = GAMMA_RANGE,
    shot_noise: Param = SHOT_NOISE_RANGE,
    read_noise: Param = READ_NOISE_RANGE,
) -> np.ndarray:
    """Darken an ``H x W x 3`` uint8 sRGB image with the model of the module docstring.

    Each parameter is a number (fixed) or a ``(low, high)`` range drawn from ``rng``. Returns a
    new ``H x W x 3`` uint8 array; the same ``rng`` state gives the same output.
    """
    return darken_with_params(
        rgb_uint8, rng, exposure=exposure, gamma=gamma, shot_noise=shot_noise, read_noise=read_noise
    )[0]
