"""Descriptions of registered plugins, as ``llbench list KIND`` prints them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llbench.pluginhost.host import PluginHost, get_host
from llbench.pluginhost.kinds import kind as get_kind


def describe(
    kind: str, *, data_root: Path | None = None, host: PluginHost | None = None
) -> list[dict[str, Any]]:
    """One dict per registered spec of ``kind`` (any entry of the kinds table)."""
    k = get_kind(kind)
    host = host or get_host()
    reg = host.registry(k.name)
    return [k.describe(spec, reg.origin(spec.name), data_root) for spec in reg]
