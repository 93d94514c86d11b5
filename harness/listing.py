"""Descriptions of registered plugins, as ``llbench list KIND`` prints them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .plugin_host import PluginHost, get_host


def describe(
    kind: str, *, data_root: Path | None = None, host: PluginHost | None = None
) -> list[dict[str, Any]]:
    """One dict per registered spec of ``kind`` (method, dataset, metric or segmenter)."""
    host = host or get_host()
    reg = host.registry(kind)
    rows = []
    for spec in reg:
        origin = reg.origin(spec.name)
        if kind == "method":
            rows.append(
                {
                    "name": spec.name,
                    "supervision": spec.supervision,
                    "trains": spec.trains,
                    "presets": sorted(spec.presets),
                    "paper": spec.paper,
                    "official weights": spec.official_weights is not None,
                    "plugin": origin,
                    "summary": spec.summary,
                }
            )
        elif kind == "metric":
            missing = spec.available()
            rows.append(
                {
                    "name": spec.name,
                    "kind": spec.kind,
                    "direction": "higher" if spec.higher_better else "lower",
                    "range": spec.score_range,
                    "needs": sorted(spec.needs),
                    "default": spec.default,
                    "available": "yes" if missing is None else f"no: {missing}",
                    "plugin": origin,
                    "definition": spec.definition,
                }
            )
        elif kind == "dataset":
            status = "?"
            if data_root is not None:
                try:
                    st = spec.build(Path(data_root)).status()
                    status = st.state + (f" ({st.detail})" if st.detail else "")
                except Exception as exc:  # noqa: BLE001
                    status = f"error: {exc}"
            rows.append(
                {
                    "name": spec.name,
                    "paired": spec.paired,
                    "splits": spec.splits,
                    "masks": spec.masks,
                    "status": status,
                    "plugin": origin,
                    "summary": spec.summary,
                    "source": spec.source,
                }
            )
        else:
            missing = spec.available()
            rows.append(
                {
                    "name": spec.name,
                    "classes": len(spec.classes),
                    "available": "yes" if missing is None else f"no: {missing}",
                    "plugin": origin,
                    "summary": spec.summary,
                }
            )
    return rows
