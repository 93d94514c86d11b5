"""The ``lime`` method: LIME, low-light enhancement via illumination map estimation.

X. Guo, Y. Li, H. Ling, "LIME: Low-Light Image Enhancement via Illumination Map Estimation",
IEEE Transactions on Image Processing 26(2):982-993, 2017 (online December 2016). See
:mod:`llbench.plugins.lime.method` for the equations and the choices made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llbench.api import MethodSpec, hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from llbench.api.methods import Method

DEFAULT_CONFIG: dict[str, Any] = {
    # trade-off between fidelity to T_hat and structure-aware smoothness (the paper's alpha;
    # the authors' demo: "lambda = 0.15 is fine for sped-up solver + strategy III")
    "alpha": 0.15,
    # weighting strategy W_d: 1 (W = 1), 2 (inverse gradient), 3 (Gaussian-smoothed, RTV-like)
    "strategy": 3,
    # standard deviation of the Gaussian G_sigma of strategy 3 (authors' demo: 2)
    "sigma": 2.0,
    # gamma correction of the refined illumination, T <- T^gamma (paper: 0.8; demo code: 0.7)
    "gamma": 0.8,
    # the small constant epsilon in the weights, and the floor of T in R = L / T
    "eps": 1e-3,
    # how the sparse system is solved (llbench.plugins.lime.solvers): "multifrontal" (exact,
    # batched nested-dissection Cholesky in torch on the method's device), "direct" (exact,
    # SuperLU, nested dissection), "direct-mmd" (exact, SuperLU, minimum degree), "cg" (conjugate
    # gradients in torch); "auto" = "multifrontal" up to 4 MP, then "cg" on CUDA, else "direct"
    "solver": "auto",
    # relative residual at which "cg" stops, and its iteration cap
    "cg_tol": 1e-4,
    "cg_max_iter": 20000,
    # the paper's optional BM3D denoising of Y recomposed with T; needs the `bm3d` package
    # (non-commercial licence, about 3 s per 600x400 image on one CPU core), so off by default
    "denoise": False,
    # BM3D noise standard deviation in 8-bit units (authors' demo: sigma_BM3D = 10)
    "bm3d_sigma": 10.0,
}


def _build(config: Mapping[str, Any], device: torch.device) -> Method:
    from .method import LIME

    return LIME(config, device)


SPEC = MethodSpec(
    name="lime",
    build=_build,
    summary="LIME: illumination T_hat = max(R, G, B) refined by the structure-aware sped-up solver "
    "(strategy III weights, alpha 0.15), T^0.8, R = L / T.",
    paper="X. Guo, Y. Li, H. Ling, LIME: Low-Light Image Enhancement via Illumination Map "
    "Estimation, IEEE TIP 26(2):982-993, 2017",
    supervision="none",
    trains=False,
    default_config=DEFAULT_CONFIG,
)


@hookimpl
def register_methods(register):
    register(SPEC)
