"""Shared building blocks of the curve-based zero-reference methods (Zero-DCE, Zero-DCE++, SGZ).

* :mod:`.curve`: the quadratic light-enhancement curve and its iteration;
* :mod:`.nets`: DCE-Net and the depthwise separable curve network (official layer names);
* :mod:`.losses`: the non-reference losses, in the papers' and the official code's forms;
* :mod:`.data`: deterministic, resumable training batches;
* :mod:`.method`: :class:`~.method.CurveMethod`, inference plus the resumable training loop.

Importing this package does not import torch; import the submodules.
"""

from urllib.parse import quote

from llbench.api import WeightsRef


def released_checkpoint(repo: str, commit: str, path: str) -> WeightsRef:
    """The authors' released checkpoint at ``path`` of GitHub ``repo`` at a fixed ``commit``.

    Pinning the commit fixes the bytes behind the URL. The authors published no sha256, so none
    is pinned; the hash of the file used is recorded in each run's provenance instead.
    """
    return WeightsRef(
        url=f"https://raw.githubusercontent.com/{repo}/{commit}/{quote(path)}",
        sha256="",
        filename=path.rsplit("/", 1)[-1],
        source=f"https://github.com/{repo} ({path})",
    )


def quick_preset(max_steps: int, checkpoint_every: int) -> dict:
    """Short CPU runs: small images, few steps, a larger step size; the same code path."""
    return {
        "train_size": 64,
        "batch_size": 4,
        "max_steps": max_steps,
        "lr": 1e-3,
        "checkpoint_every": checkpoint_every,
    }
