"""Hook specifications of llbench's plugin system (pluggy).

A plugin is a module (or object) with functions decorated by :data:`hookimpl`; each hook gets a
``register`` callback to call once per spec it provides. Hooks may also take ``home`` (the llbench
home: database, weights, studies) and ``data_root`` (the folder holding the datasets), the paths
of the command or API call that loaded the plugins, for plugins whose specs depend on them (e.g.
datasets a user added, a segmenter cached in the home). pluggy passes only the arguments an
implementation names, so ``def register_methods(register)`` is fine. Built-in plugins are found through the
same ``llbench`` entry-point group as third-party ones.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("llbench")
hookimpl = pluggy.HookimplMarker("llbench")


@hookspec
def register_methods(register, home, data_root):
    """Call ``register(MethodSpec(...))`` for each enhancement method the plugin provides."""


@hookspec
def register_datasets(register, home, data_root):
    """Call ``register(DatasetSpec(...))`` for each dataset the plugin provides."""


@hookspec
def register_metrics(register, home, data_root):
    """Call ``register(MetricSpec(...))`` for each metric the plugin provides."""


@hookspec
def register_segmenters(register, home, data_root):
    """Call ``register(SegmenterSpec(...))`` for each semantic segmenter the plugin provides."""


@hookspec
def register_executors(register, home, data_root):
    """Call ``register(ExecutorSpec(...))`` for each executor (where work runs) provided."""


@hookspec
def register_annotators(register, home, data_root):
    """Call ``register(AnnotatorSpec(...))`` for each annotator (who labels pairs) provided."""


@hookspec
def register_commands(cli):
    """Add commands or command groups to the ``llbench`` click group ``cli``
    (``@cli.command()`` / ``cli.add_command(group)``)."""


@hookspec
def report_figures(trainings, out_dir, fmt):
    """Draw a plugin's own figures for ``llbench report --figures``; return the files written.

    ``trainings``: one dict per training behind the report's rows (``key``, ``method``,
    ``dataset``, ``status``, ``workdir``: its folder under ``<home>/train/``); ``out_dir``: the
    figures folder; ``fmt``: ``png``, ``svg`` or ``pdf``. HiLLIE draws its stage figures here.
    """
