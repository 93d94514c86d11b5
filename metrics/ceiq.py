"""CEIQ: Yan, Li and Fu, "No-Reference Quality Assessment of Contrast-Distorted Images using
Contrast Enhancement" (arXiv:1904.08879, 2019), the no-reference contrast score of SLLEN's
Tables I-III. Higher is better (the released model predicts CCID2014 MOS, about 1-5).

The authors' MATLAB code (github.com/mtobeiyf/CEIQ, ``CEIQ.m``, MIT licence) defines the
features exactly; this module reproduces each MATLAB call it makes, batched in torch:

1. ``gImg = rgb2gray(Img)``: :func:`llbench.metrics.matlab.matlab_rgb2gray` (uint8).
2. ``enhancedImg = histeq(gImg)``: MATLAB's default histogram equalisation to 64 levels
   (:func:`matlab_histeq`, a transcription of ``histeq.m``'s
   ``createTransformationToIntensityImage``).
3. ``f1 = ssim(gImg, enhancedImg)``: MATLAB's built-in ``ssim`` (not Wang's ``ssim.m``: the
   repository ships no ``ssim.m``): 11 x 11 Gaussian (sigma 1.5) filtering with replicated
   borders, same-size SSIM map, K = (0.01, 0.03), L = 255, mean over all pixels
   (:func:`matlab_builtin_ssim`).
4. ``imhist(., 128)`` of both images, divided by the pixel count (uint8 value ``v`` falls in bin
   ``floor(v * 127 / 255 + 1/2)``); over the bins where both are non-zero:
   ``f2 = -sum h1 log2 h1``, ``f3 = -sum h2 log2 h2`` (Eq. 3), ``f4 = -sum h1 log2 h2`` (Eq. 4),
   ``f5 = -sum h2 log2 h1`` (Eq. 5).
5. ``svmpredict(1, [f1..f5], model)``: the released LIBSVM model (``data/model.mat``: epsilon-SVR,
   linear kernel, 532 support vectors, trained on all of CCID2014), applied as LIBSVM does:
   ``sum_i coef_i K(x, sv_i) - rho`` on the raw features (no scaling).

The model file is not shipped: it is read from the torch hub cache (see :func:`model_path`) and
must be the authors' file (sha256 checked); ``options["ceiq_model"]`` may name another LIBSVM
``.mat`` model explicitly (e.g. one retrained on another database), which is then used as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llbench._lazy import torch  # imported on first use (light plugin loading)
from llbench.api import Metric, MetricSpec
from llbench.errors import WeightsError
from llbench.metrics import functional as F
from llbench.metrics.matlab import matlab_rgb2gray

#: The authors' released model, under the name llbench gives it in the cache.
MODEL_FILENAME = "ceiq_model-f2c2300a.mat"
MODEL_SHA256 = "f2c2300adbf6fbe09dfa46c5b05e47e8fb96c810f7b582344f6c3bf201e93d6d"
MODEL_URL = (
    "https://github.com/mtobeiyf/CEIQ/raw/c92b6a19ccf45d783928e00ae4262cb9f289fed2/data/model.mat"
)
HISTEQ_LEVELS = 64
HIST_BINS = 128
_LIBSVM_KERNELS = {0: "linear", 1: "polynomial", 2: "rbf", 3: "sigmoid"}


# -- the MATLAB steps ------------------------------------------------------------------------------
def _hist256(gray: torch.Tensor) -> torch.Tensor:
    """Counts of the 256 levels of each image of ``N x 1 x H x W`` integer levels: ``N x 256``."""
    n = gray.shape[0]
    idx = gray.reshape(n, -1).long()
    idx = idx + 256 * torch.arange(n, device=gray.device).unsqueeze(1)
    return torch.bincount(idx.flatten(), minlength=256 * n).view(n, 256)


def matlab_histeq(gray: torch.Tensor, levels: int = HISTEQ_LEVELS) -> torch.Tensor:
    """MATLAB ``histeq(I)`` (``histeq(I, 64)``) of uint8 grey levels ``N x 1 x H x W``.

    With ``nn`` the 256-bin histogram, ``cum`` its cumulative sum, the target cumulative
    histogram ``cumd(k) = k * numel / m`` (``m = 64``) and ``tol(j) = nn(j) / 2`` (0 for the first
    and last level), the error ``err(k, j) = cumd(k) - cum(j) + tol(j)`` is set to ``numel`` where
    it is below ``-numel * sqrt(eps)``; level ``j`` maps to ``T(j) = (argmin_k err(k, j)) /
    (m - 1)`` and the output is ``uint8(255 T)`` (MATLAB's rounding).
    """
    n = gray.shape[0]
    numel = gray.shape[-1] * gray.shape[-2]
    dt = torch.float64 if gray.device.type != "mps" else torch.float32
    nn = _hist256(gray).to(dt)
    cum = nn.cumsum(dim=1)
    tol = nn.clone()
    tol[:, 0] = 0.0
    tol[:, -1] = 0.0
    tol = tol / 2.0
    hgram = torch.full((levels,), numel / levels, dtype=dt, device=gray.device)
    cumd = (hgram * (numel / hgram.sum())).cumsum(0)
    err = (cumd.view(1, levels, 1) - cum.view(n, 1, 256)) + tol.view(n, 1, 256)
    err = torch.where(err < -numel * 2.0**-26, torch.full_like(err, float(numel)), err)
    t = err.argmin(dim=1).to(dt) / (levels - 1)  # N x 256, first minimum as MATLAB's min
    lut = torch.floor(255.0 * t + 0.5)
    flat = gray.reshape(n, -1).long()
    return lut.gather(1, flat).view_as(gray).to(gray.dtype)


def matlab_imhist(gray: torch.Tensor, bins: int = HIST_BINS) -> torch.Tensor:
    """MATLAB ``imhist(I, bins)`` of uint8 levels: level ``v`` counts in bin
    ``floor(v (bins - 1) / 255 + 1/2)`` (exact integer arithmetic; no level sits on an edge)."""
    n = gray.shape[0]
    v = gray.reshape(n, -1).long()
    b = torch.div(v * (2 * (bins - 1)) + 255, 510, rounding_mode="floor")
    b = b + bins * torch.arange(n, device=gray.device).unsqueeze(1)
    return torch.bincount(b.flatten(), minlength=bins * n).view(n, bins)


def matlab_builtin_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MATLAB's built-in ``ssim(A, ref)`` for uint8 2-D images given as ``N x 1 x H x W`` levels:
    ``imgaussfilt(., 1.5, 'FilterSize', 11, 'Padding', 'replicate')`` statistics, the same-size
    SSIM map (Eq. 13, C3 = C2 / 2), ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``, mean over all
    pixels."""
    dt = F.work_dtype(a.device)
    x, y = a.to(dt), b.to(dt)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    r = 5
    stack = torch.nn.functional.pad(stack, (r, r, r, r), mode="replicate")
    taps = F._gaussian_taps(2 * r + 1, 1.5)
    mu1, mu2, e11, e22, e12 = F._filter_valid(stack, taps).unbind(1)
    mu12 = mu1 * mu2
    mu_sq = mu1.square_().add_(mu2.square_())
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    num = mu12.mul(2.0).add_(c1).mul_(e12.sub_(mu12).mul_(2.0).add_(c2))
    den = mu_sq.add(c1).mul_(e11.add_(e22).sub_(mu_sq).add_(c2))
    return num.div_(den).mean(dim=(1, 2))


def ceiq_features(img: torch.Tensor) -> torch.Tensor:
    """The five CEIQ features ``(f1 .. f5)`` of each image of an RGB batch: ``N x 5`` float64."""
    F._check("ceiq", img, min_size=1)
    gray = matlab_rgb2gray(F.to_levels(img))
    eq = matlab_histeq(gray)
    f1 = matlab_builtin_ssim(gray, eq)
    numel = gray.shape[-1] * gray.shape[-2]
    dt = f1.dtype
    h1 = matlab_imhist(gray).to(dt) / numel
    h2 = matlab_imhist(eq).to(dt) / numel
    good = (h1 > 0) & (h2 > 0)
    one = torch.ones_like(h1)
    l1 = torch.log2(torch.where(good, h1, one))  # 0 where masked out
    l2 = torch.log2(torch.where(good, h2, one))
    z = torch.zeros_like(h1)
    g1, g2 = torch.where(good, h1, z), torch.where(good, h2, z)
    f2 = -(g1 * l1).sum(1)
    f3 = -(g2 * l2).sum(1)
    f4 = -(g1 * l2).sum(1)
    f5 = -(g2 * l1).sum(1)
    return torch.stack([f1, f2, f3, f4, f5], dim=1)


# -- the LIBSVM model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SVRModel:
    """A LIBSVM regression model as its MATLAB interface saves it (``svmtrain``'s struct).

    ``Parameters = [svm_type; kernel_type; degree; gamma; coef0]`` (svm_type 3 = epsilon-SVR,
    4 = nu-SVR), ``rho``, ``sv_coef`` (totalSV x 1), ``SVs`` (totalSV x d, sparse).
    """

    svm_type: int
    kernel: int
    degree: int
    gamma: float
    coef0: float
    rho: float
    coef: torch.Tensor  # (S,) float64
    svs: torch.Tensor  # (S, d) float64

    def predict(self, feat: torch.Tensor) -> torch.Tensor:
        """``sum_i coef_i K(x, sv_i) - rho`` for each row of ``feat`` (LIBSVM's svm_predict)."""
        x = feat.to(torch.float64)
        svs, coef = self.svs.to(x.device), self.coef.to(x.device)
        if x.shape[1] != svs.shape[1]:
            raise WeightsError(
                f"CEIQ model expects {svs.shape[1]} features, the metric computes {x.shape[1]}"
            )
        dot = x @ svs.T
        if self.kernel == 0:
            k = dot
        elif self.kernel == 1:
            k = (self.gamma * dot + self.coef0) ** self.degree
        elif self.kernel == 2:
            d2 = (x * x).sum(1, keepdim=True) + (svs * svs).sum(1) - 2.0 * dot
            k = torch.exp(-self.gamma * d2.clamp_(min=0.0))
        else:
            k = torch.tanh(self.gamma * dot + self.coef0)
        return k @ coef - self.rho


def load_libsvm_mat(path: Path, var: str = "model") -> SVRModel:
    """Read a LIBSVM MATLAB-interface model (``save model.mat model``) with scipy."""
    import numpy as np
    import scipy.io
    import scipy.sparse

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for bad files
        raise WeightsError(f"cannot read {path} as a MATLAB .mat file: {exc}") from exc
    if var not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise WeightsError(f"{path} has no {var!r} variable (found {found}): not a LIBSVM model")
    st = mat[var]
    fields = st.dtype.names or ()
    missing = [f for f in ("Parameters", "rho", "sv_coef", "SVs") if f not in fields]
    if missing:
        raise WeightsError(f"{path}: the {var!r} struct lacks {missing}: not a LIBSVM model")
    s = st.reshape(-1)[0]
    params = np.asarray(s["Parameters"], dtype=np.float64).reshape(-1)
    if params.size < 5:
        raise WeightsError(f"{path}: Parameters has {params.size} entries, LIBSVM writes 5")
    svm_type, kernel = int(params[0]), int(params[1])
    if svm_type not in (3, 4):
        raise WeightsError(
            f"{path}: svm_type {svm_type} is not a regression model (3 = epsilon-SVR, 4 = nu-SVR)"
        )
    if kernel not in _LIBSVM_KERNELS:
        raise WeightsError(f"{path}: kernel_type {kernel} is not supported (0-3)")
    svs = s["SVs"]
    svs = svs.toarray() if scipy.sparse.issparse(svs) else np.asarray(svs)
    coef = np.asarray(s["sv_coef"], dtype=np.float64).reshape(-1)
    rho = np.asarray(s["rho"], dtype=np.float64).reshape(-1)
    if svs.ndim != 2 or svs.shape[0] != coef.size or rho.size != 1:
        raise WeightsError(
            f"{path}: inconsistent model ({svs.shape} support vectors, {coef.size} coefficients, "
            f"{rho.size} rho values)"
        )
    return SVRModel(
        svm_type,
        kernel,
        int(params[2]),
        float(params[3]),
        float(params[4]),
        float(rho[0]),
        torch.from_numpy(coef.copy()),
        torch.from_numpy(np.asarray(svs, dtype=np.float64)),
    )


# -- where the model lives -------------------------------------------------------------------------
def _registered():
    from llbench.io import weights as W

    return W.FILES.get(MODEL_FILENAME)


def model_path() -> Path:
    """The cache path of the released model: the weights registry's when it lists the file,
    else ``$TORCH_HOME/hub/checkpoints/ceiq_model-f2c2300a.mat``."""
    from llbench.io import weights as W

    wf = _registered()
    return wf.path() if wf is not None else W.torch_hub_dir() / "checkpoints" / MODEL_FILENAME


def unavailable() -> str | None:
    """None when the released model is in the cache, else what to place where."""
    path = model_path()
    if path.is_file():
        return None
    how = (
        f"`llbench weights import {MODEL_FILENAME}` (any name: the file is recognised by its hash)"
        if _registered() is not None
        else "a copy into that folder"
    )
    return (
        f"missing CEIQ's released SVR model: data/model.mat of github.com/mtobeiyf/CEIQ (MIT; "
        f"{MODEL_URL}; sha256 {MODEL_SHA256}) -> {path}. Place it with {how}"
    )


def load_model(options: Mapping[str, Any] | None = None) -> tuple[SVRModel, Path, str]:
    """The model, its path and sha256: ``options["ceiq_model"]`` when given (used as is), else the
    released file from the cache, which must match the published hash."""
    from llbench.io.hashing import sha256_file

    explicit = (options or {}).get("ceiq_model")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsError(f"ceiq: no such model file {path} (option ceiq_model)")
        return load_libsvm_mat(path), path, sha256_file(path)
    msg = unavailable()
    if msg:
        raise WeightsError(f"ceiq: {msg}")
    path = model_path()
    digest = sha256_file(path)
    if digest != MODEL_SHA256:
        raise WeightsError(
            f"ceiq: {path} has sha256 {digest}, not the released model's {MODEL_SHA256} "
            f"({MODEL_URL}); replace it, or name another model with the option ceiq_model"
        )
    return load_libsvm_mat(path), path, digest


class CEIQ(Metric):
    """CEIQ score of each image (higher is better); see the module docstring."""

    name = "ceiq"

    def __init__(
        self, device: torch.device | str = "cpu", options: Mapping[str, Any] | None = None
    ):
        super().__init__(device, options)
        self.model, self.model_path, self.model_sha256 = load_model(self.options)

    def __call__(
        self,
        pred: torch.Tensor,
        ref: torch.Tensor | None = None,
        low: torch.Tensor | None = None,
    ) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.predict(ceiq_features(pred.to(self.device)))


DEFINITION = (
    "CEIQ (Yan, Li, Fu 2019; the authors' CEIQ.m): grey = MATLAB rgb2gray (uint8); E = "
    "histeq(grey) (MATLAB default, 64 levels); f1 = MATLAB built-in ssim(grey, E) (11x11 "
    "Gaussian sigma 1.5, replicate padding, mean over all pixels); 128-bin imhist of grey and E "
    "divided by the pixel count, over bins where both are non-zero: f2 = -sum h1 log2 h1, f3 = "
    "-sum h2 log2 h2, f4 = -sum h1 log2 h2, f5 = -sum h2 log2 h1; score = the released LIBSVM "
    "epsilon-SVR (linear kernel, trained on CCID2014) on [f1..f5], unscaled. Higher is better. "
    "Dataset score: mean over images."
)


def ceiq_spec() -> MetricSpec:
    """The ``ceiq`` metric spec (registered by :mod:`llbench.metrics.variants`)."""

    def build(device: torch.device, options: Mapping[str, Any]) -> CEIQ:
        return CEIQ(device, options)

    return MetricSpec(
        "ceiq",
        build,
        "CEIQ contrast quality (Yan et al.), the authors' SVR (higher is better)",
        "no-reference",
        True,
        DEFINITION,
        score_range=None,
        needs=frozenset({"weights"}),
        available=unavailable,
        default=False,
        version=f"ceiq-model-{MODEL_SHA256[:8]}",
    )


__all__ = [
    "CEIQ",
    "DEFINITION",
    "MODEL_FILENAME",
    "MODEL_SHA256",
    "MODEL_URL",
    "SVRModel",
    "ceiq_features",
    "ceiq_spec",
    "load_libsvm_mat",
    "load_model",
    "matlab_builtin_ssim",
    "matlab_histeq",
    "matlab_imhist",
    "model_path",
    "unavailable",
]
