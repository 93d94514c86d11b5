"""The ``he`` method: global histogram equalization of the 8-bit luma, chroma kept.

See :mod:`llbench.plugins.he.method` for the definition; :mod:`llbench.plugins.he.luma` holds the
colour-space and histogram helpers that the ``clahe`` and ``lime`` plugins share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llbench.api import MethodSpec, hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from llbench.api.methods import Method

DEFAULT_CONFIG: dict[str, Any] = {
    # Luma coefficients of the full-range YCbCr space the equalization runs in:
    # "bt601" (0.299, 0.587, 0.114; JPEG/OpenCV YCrCb) or "bt709" (0.2126, 0.7152, 0.0722).
    "luma": "bt601",
}


def _build(config: Mapping[str, Any], device: torch.device) -> Method:
    from .method import HistogramEqualization

    return HistogramEqualization(config, device)


SPEC = MethodSpec(
    name="he",
    build=_build,
    summary="Global histogram equalization of the 8-bit luma Y of full-range BT.601 YCbCr; "
    "Cb and Cr are kept.",
    paper="Histogram equalization, Gonzalez & Woods, Digital Image Processing, 3rd ed., "
    "Sec. 3.3.1, Eq. (3.3-8)",
    supervision="none",
    trains=False,
    default_config=DEFAULT_CONFIG,
)


@hookimpl
def register_methods(register):
    register(SPEC)
