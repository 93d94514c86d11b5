"""Reference rows: the task scores of the dark inputs and of the normal-light images.

For datasets with segmentation masks, a report shows the gap an enhancement method closes
between segmenting the un-enhanced dark inputs and segmenting the normal-light images (the
downstream protocol of SLLEN Sec. IV and SGZ Sec. 4.3). Both are stored once per dataset, split,
manifest and segmenter as reference rows (:data:`llbench.store.REFERENCES`), which tables show
above the methods and never rank.
"""

from __future__ import annotations

import torch

from llbench.api.specs import MetricSpec
from llbench.engine.plan import RunPlan, hash_json
from llbench.engine.provenance import base_provenance
from llbench.store.database import REFERENCES, Store


def reference_key(plan: RunPlan, which: str, segmenter: str) -> str:
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
    from llbench.metrics.task import DEFAULT_SEGMENTER, reference_scores

    segmenter = plan.options.get("segmenter") or DEFAULT_SEGMENTER
    keys = {which: reference_key(plan, which, segmenter) for which in REFERENCES}
    if all(set(names) <= store.scored_metrics(k) for k in keys.values()):
        return
    bounds = reference_scores(plan.samples, segmenter, device)
    for which, values in bounds.items():
        store.record_reference(
            keys[which],
            which,
            {n: values[n] for n in names if n in values},
            dataset=plan.dataset.name,
            split=plan.split,
            n_images=len(plan.samples),
            manifest_hash=plan.manifest_hash,
            provenance={**base_provenance(), "segmenter": segmenter, "bound": which},
        )
