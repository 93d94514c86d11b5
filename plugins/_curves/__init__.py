"""Shared building blocks of the curve-based zero-reference methods (Zero-DCE, Zero-DCE++, SGZ).

* :mod:`.curve`: the quadratic light-enhancement curve and its iteration;
* :mod:`.nets`: DCE-Net and the depthwise separable curve network (official layer names);
* :mod:`.losses`: the non-reference losses, in the papers' and the official code's forms;
* :mod:`.data`: deterministic, resumable training batches;
* :mod:`.method`: :class:`~.method.CurveMethod`, inference plus the resumable training loop.

Importing this package does not import torch; import the submodules.
"""
