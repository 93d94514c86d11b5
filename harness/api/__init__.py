"""The plugin API: everything a plugin imports, built-ins and third parties alike.

Light names (hook markers, specs) import eagerly and pull in nothing heavy; the base classes,
which need torch, load on first attribute access::

    from llbench.api import MethodSpec, hookimpl            # cheap: listing plugins stays fast
    from llbench.api import TrainableMethod, TrainContext   # imports torch

Submodules: :mod:`~llbench.api.hookspecs` (the hooks, one per plugin kind, plus
``register_commands``), :mod:`~llbench.api.specs` (what plugins register),
:mod:`~llbench.api.methods`, :mod:`~llbench.api.datasets`, :mod:`~llbench.api.metrics`,
:mod:`~llbench.api.segmenters` (the base classes), :mod:`~llbench.api.features` (the
decoder-feature hook frameworks such as SKF use), :mod:`~llbench.api.training` (patch batches,
training phases and the resumable loop), :mod:`~llbench.api.backbones` (pretrained VGG features
for perceptual losses, weight files from the cache).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from llbench.api.hookspecs import hookimpl, hookspec
from llbench.api.specs import (
    METRIC_KINDS,
    SUPERVISIONS,
    AnnotatorSpec,
    DatasetSpec,
    ExecutorSpec,
    MethodSpec,
    MetricSpec,
    PublishedValue,
    SegmenterSpec,
    WeightsRef,
)

if TYPE_CHECKING:  # pragma: no cover
    from llbench.api.annotators import AnnotationContext, Annotator, Label, Pair
    from llbench.api.backbones import VGGFeatures, backbone_file
    from llbench.api.datasets import Dataset, DatasetStatus, Sample
    from llbench.api.executors import Executor, Handle
    from llbench.api.features import DecoderSite, transform_site
    from llbench.api.methods import (
        Method,
        TrainableMethod,
        TrainContext,
        count_parameters,
        load_state_dict_file,
    )
    from llbench.api.metrics import DatasetMetric, EfficiencyMetric, Metric
    from llbench.api.segmenters import Segmentation, Segmenter
    from llbench.api.training import Patches, Phase, paired_items, run_phases

_LAZY = {
    "Method": "methods",
    "TrainableMethod": "methods",
    "TrainContext": "methods",
    "load_state_dict_file": "methods",
    "count_parameters": "methods",
    "Dataset": "datasets",
    "DatasetStatus": "datasets",
    "Sample": "datasets",
    "Metric": "metrics",
    "DatasetMetric": "metrics",
    "EfficiencyMetric": "metrics",
    "Segmenter": "segmenters",
    "Segmentation": "segmenters",
    "DecoderSite": "features",
    "transform_site": "features",
    "Patches": "training",
    "Phase": "training",
    "run_phases": "training",
    "paired_items": "training",
    "Executor": "executors",
    "Handle": "executors",
    "VGGFeatures": "backbones",
    "backbone_file": "backbones",
    "Annotator": "annotators",
    "AnnotationContext": "annotators",
    "Label": "annotators",
    "Pair": "annotators",
}

__all__ = [
    "METRIC_KINDS",
    "SUPERVISIONS",
    "AnnotatorSpec",
    "DatasetSpec",
    "ExecutorSpec",
    "MethodSpec",
    "MetricSpec",
    "SegmenterSpec",
    "WeightsRef",
    "PublishedValue",
    "Executor",
    "Handle",
    "hookimpl",
    "hookspec",
    "Method",
    "TrainableMethod",
    "TrainContext",
    "load_state_dict_file",
    "count_parameters",
    "Dataset",
    "DatasetStatus",
    "Sample",
    "Metric",
    "DatasetMetric",
    "EfficiencyMetric",
    "Segmenter",
    "Segmentation",
    "DecoderSite",
    "transform_site",
    "Patches",
    "Phase",
    "run_phases",
    "paired_items",
    "VGGFeatures",
    "backbone_file",
    "Annotator",
    "AnnotationContext",
    "Label",
    "Pair",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"llbench.api.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'llbench.api' has no attribute {name!r}")
