"""Hook specifications of llbench's plugin system (pluggy).

A plugin is a module (or object) with functions decorated by :data:`hookimpl`; each hook gets a
``register`` callback to call once per spec it provides. Built-in plugins are found through the
same ``llbench`` entry-point group as third-party ones.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("llbench")
hookimpl = pluggy.HookimplMarker("llbench")


@hookspec
def register_methods(register):
    """Call ``register(MethodSpec(...))`` for each enhancement method the plugin provides."""


@hookspec
def register_datasets(register):
    """Call ``register(DatasetSpec(...))`` for each dataset the plugin provides."""


@hookspec
def register_metrics(register):
    """Call ``register(MetricSpec(...))`` for each metric the plugin provides."""


@hookspec
def register_segmenters(register):
    """Call ``register(SegmenterSpec(...))`` for each semantic segmenter the plugin provides."""
