"""Reference rows: the task scores of the dark inputs and of the normal-light images.

For datasets with segmentation masks, a report shows the gap an enhancement method closes
between segmenting the un-enhanced dark inputs and segmenting the normal-light images (the
downstream protocol of SLLEN Sec. IV and SGZ Sec. 4.3). Both are stored once per dataset, split,
manifest and segmenter identity (name, version and the sha256 of its weight files:
:func:`llbench.engine.contexts.segmenter_identity`) as reference rows (:data:`llbench.store.REFERENCES`), which tables show
above the methods and never rank.
"""

from __future__ import annotations

from typing import Any

import torch

from llbench.api.specs import MetricSpec
from llbench.engine.contexts import segmenter_identity, segmenter_name, split_contexts
from llbench.engine.plan import RunPlan, hash_json
from llbench.engine.provenance import base_provenance
from llbench.store.database import REFERENCES, Store


def reference_key(plan: RunPlan, which: str, segmenter: dict[str, Any]) -> str:
    """Reference rows are keyed by the segmenter's identity (name, version, weight hashes)."""
    return hash_json(
        {
            "bound": which,
            "dataset": plan.dataset.name,
            "split": plan.split,
            "manifest": plan.manifest_hash,
            "segmenter": segmenter,
        }
    )[:20]


def task_metric_names(specs: list[MetricSpec]) -> list[str]:
    return [s.name for s in specs if s.kind == "task" and "segmenter" in s.needs]


def record_references(plan: RunPlan, store: Store, device: torch.device) -> None:
    """Score the dark inputs and the normal-light images with the run's task metrics (once)."""
    names = task_metric_names(plan.metrics)
    if not names or any(s.mask is None for s in plan.samples):
        return
    from llbench.metrics.task import reference_scores

    segmenter = segmenter_name(plan)
    identity = segmenter_identity(segmenter)
    keys = {which: reference_key(plan, which, identity) for which in REFERENCES}
    if all(set(names) <= store.scored_metrics(k) for k in keys.values()):
        return
    bounds = reference_scores(plan.samples, segmenter, device)
    identity = segmenter_identity(segmenter)  # tiny-seg may have been trained just now
    keys = {which: reference_key(plan, which, identity) for which in REFERENCES}
    contexts = split_contexts(plan)
    for which, values in bounds.items():
        store.record_reference(
            keys[which],
            which,
            {n: values[n] for n in names if n in values},
            contexts,
            dataset=plan.dataset.name,
            split=plan.split,
            n_images=len(plan.samples),
            manifest_hash=plan.manifest_hash,
            provenance={
                **base_provenance(),
                "segmenter": segmenter,
                "segmenter_identity": identity,
                "bound": which,
            },
        )
