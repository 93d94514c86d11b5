"""The one table of plugin kinds: hook, spec type and listing for each.

Everything that handles plugin kinds (hook registration, registries, ``llbench list``, the
CLI's choices) reads :data:`KINDS`, so a new kind is one entry here plus its spec class and
hook in :mod:`llbench.api`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llbench.api.specs import (
    AnnotatorSpec,
    DatasetSpec,
    ExecutorSpec,
    MethodSpec,
    MetricSpec,
    SegmenterSpec,
)


@dataclass(frozen=True)
class Kind:
    """A plugin kind: ``name`` (singular), ``plural`` (the CLI's word), its registration hook,
    the spec class plugins register and how ``llbench list`` describes one spec."""

    name: str
    plural: str
    hook: str
    spec: type
    describe: Callable[[Any, str, Path | None], dict[str, Any]]


def _availability(spec: Any) -> str:
    missing = spec.available()
    return "yes" if missing is None else f"no: {missing}"


def _method(spec: MethodSpec, origin: str, data_root: Path | None) -> dict[str, Any]:
    return {
        "name": spec.name,
        "supervision": spec.supervision,
        "trains": spec.trains,
        "presets": sorted(spec.presets),
        "paper": spec.paper,
        "official weights": spec.official_weights is not None,
        "plugin": origin,
        "summary": spec.summary,
    }


def _metric(spec: MetricSpec, origin: str, data_root: Path | None) -> dict[str, Any]:
    return {
        "name": spec.name,
        "kind": spec.kind,
        "direction": "higher" if spec.higher_better else "lower",
        "range": spec.score_range,
        "needs": sorted(spec.needs),
        "default": spec.default,
        "available": _availability(spec),
        "plugin": origin,
        "definition": spec.definition,
    }


def _dataset(spec: DatasetSpec, origin: str, data_root: Path | None) -> dict[str, Any]:
    status = "?"
    if data_root is not None:
        try:
            st = spec.build(Path(data_root)).status()
            status = st.state + (f" ({st.detail})" if st.detail else "")
        except Exception as exc:  # noqa: BLE001 - a broken dataset is listed with its error
            status = f"error: {exc}"
    return {
        "name": spec.name,
        "paired": spec.paired,
        "splits": spec.splits,
        "masks": spec.masks,
        "status": status,
        "plugin": origin,
        "summary": spec.summary,
        "source": spec.source,
    }


def _segmenter(spec: SegmenterSpec, origin: str, data_root: Path | None) -> dict[str, Any]:
    return {
        "name": spec.name,
        "classes": len(spec.classes),
        "available": _availability(spec),
        "plugin": origin,
        "summary": spec.summary,
    }


def _executor(spec: ExecutorSpec, origin: str, data_root: Path | None) -> dict[str, Any]:
    return {
        "name": spec.name,
        "available": _availability(spec),
        "plugin": origin,
        "summary": spec.summary,
    }


def _annotator(spec: AnnotatorSpec, origin: str, data_root: Path | None) -> dict[str, Any]:
    return {
        "name": spec.name,
        "human": spec.human,
        "leaks supervision": spec.leaks_supervision,
        "available": _availability(spec),
        "plugin": origin,
        "summary": spec.summary,
    }


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("method", "methods", "register_methods", MethodSpec, _method),
        Kind("dataset", "datasets", "register_datasets", DatasetSpec, _dataset),
        Kind("metric", "metrics", "register_metrics", MetricSpec, _metric),
        Kind("segmenter", "segmenters", "register_segmenters", SegmenterSpec, _segmenter),
        Kind("executor", "executors", "register_executors", ExecutorSpec, _executor),
        Kind("annotator", "annotators", "register_annotators", AnnotatorSpec, _annotator),
    )
}
BY_PLURAL: dict[str, Kind] = {k.plural: k for k in KINDS.values()}


def kind(name: str) -> Kind:
    """A kind by singular or plural name; an error listing the kinds otherwise."""
    found = KINDS.get(name) or BY_PLURAL.get(name)
    if found is None:
        from llbench.errors import ConfigError

        raise ConfigError(f"unknown plugin kind {name!r}; kinds: {', '.join(BY_PLURAL)}")
    return found
