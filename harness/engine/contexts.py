"""What a split-level score depends on besides the saved outputs: its *context*.

A run's key covers what determines its outputs (method, config, weights, data); metrics are
added to a run later without enhancing again. Per-image metrics depend on the outputs alone, but
split-level ones do not: ``miou``/``mpa`` depend on the segmenter (``--segmenter``) and on the
weights it loads, efficiency metrics on their input size (``--efficiency-size``). Each stored
split-level score therefore records a context (:func:`split_contexts`: canonical JSON of the
run's options and, for metrics that segment, the segmenter's identity), and a score counts as
done only when its stored context equals the one asked for now; otherwise it is computed again.
Reports read the contexts back to say which segmenter made the task columns
(:func:`describe_segmenters`). The reference rows (dark inputs, normal-light images) are keyed
by the same segmenter identity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from llbench.api.specs import MetricSpec
from llbench.engine.plan import RunPlan
from llbench.io.hashing import sha256_file_cached

__all__ = [
    "segmenter_name",
    "segmenter_identity",
    "split_contexts",
    "segmenter_of",
    "describe_segmenters",
]


def segmenter_name(plan: RunPlan) -> str:
    """The segmenter the plan's task metrics use (``--segmenter``, else the default)."""
    from llbench.metrics.task import DEFAULT_SEGMENTER

    return plan.options.get("segmenter") or DEFAULT_SEGMENTER


def segmenter_identity(name: str) -> dict[str, Any]:
    """Name, version and the sha256 of each weight file of the segmenter ``name`` as they are on
    disk now (``None`` for a file not there yet, e.g. tiny-seg before its first training)."""
    from llbench.pluginhost.host import get_host

    spec = get_host().segmenter(name)
    files = {p.name: (sha256_file_cached(p) if p.is_file() else None) for p in spec.weight_files()}
    return {"segmenter": name, "version": spec.version, "weights": files}


def _needs_segmenter(spec: MetricSpec) -> bool:
    return spec.kind == "task" and "segmenter" in spec.needs


def split_contexts(plan: RunPlan) -> dict[str, str]:
    """``{metric: context}`` for the plan's split-level metrics (module docstring)."""
    split = [s for s in plan.metrics if s.kind in ("task", "efficiency")]
    if not split:
        return {}
    seg = None
    if any(_needs_segmenter(s) for s in split):
        seg = segmenter_identity(segmenter_name(plan))
    options = {k: v for k, v in plan.options.items() if k != "segmenter"}  # in the identity
    out = {}
    for s in split:
        what: dict[str, Any] = {"metric_version": s.version, "options": options}
        if _needs_segmenter(s):
            what["segmenter"] = seg
        out[s.name] = json.dumps(what, sort_keys=True, separators=(",", ":"))
    return out


def _segmenter(context: str) -> dict[str, Any] | None:
    try:
        seg = json.loads(context).get("segmenter")
    except (ValueError, AttributeError):
        return None
    return seg if isinstance(seg, dict) else None


def segmenter_of(context: str) -> str | None:
    """The segmenter identity in a stored context, as canonical JSON (None when it has none)."""
    seg = _segmenter(context)
    return None if seg is None else json.dumps(seg, sort_keys=True)


def describe_segmenters(contexts: Iterable[str]) -> list[str]:
    """``"tiny-seg (tiny-seg.pt 3fa2c1e0)"`` for each distinct segmenter named by stored
    contexts (others, and contexts that are not JSON, are skipped)."""
    out: list[str] = []
    for seg in filter(None, map(_segmenter, contexts)):
        files = ", ".join(
            f"{name} {sha[:8] if sha else 'absent'}" for name, sha in sorted(seg["weights"].items())
        )
        item = seg["segmenter"] + (f" ({files})" if files else "")
        if item not in out:
            out.append(item)
    return out
