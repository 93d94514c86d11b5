"""Plugin loading: pluggy over the ``llbench`` entry-point group.

Built-in and third-party plugins load the same way. A plugin that fails to import, or whose
``register_*`` hook raises, is recorded with its error (``llbench plugins`` shows it) and the rest
still load. ``LLBENCH_PLUGINS=a,b`` loads only the named entry points (an empty value: none).
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from llbench import paths
from llbench.api import hookspecs
from llbench.api.specs import DatasetSpec, MethodSpec, MetricSpec, SegmenterSpec
from llbench.pluginhost.kinds import KINDS
from llbench.pluginhost.registry import Registry

GROUP = "llbench"


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin, as ``llbench plugins`` lists it."""

    name: str
    module: str
    distribution: str
    version: str
    error: str | None = None
    provides: dict[str, list[str]] | None = None


class PluginHost:
    """A plugin manager plus one registry per kind."""

    def __init__(self, home: str | Path | None = None, data_root: str | Path | None = None):
        # Folders named explicitly stay; unnamed ones follow LLBENCH_HOME / LLBENCH_DATA and the
        # defaults at each (re)build of the registries (see :meth:`paths_now`).
        self._home_arg = home
        self._data_root_arg = data_root
        self.home, self.data_root = self.paths_now()
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.registries: dict[str, Registry] = {n: Registry(n, k.spec) for n, k in KINDS.items()}
        self.infos: dict[str, PluginInfo] = {}
        self._entry_points_loaded = False
        self._built = False

    # -- loading -----------------------------------------------------------------------------
    def load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        only = os.environ.get("LLBENCH_PLUGINS")
        allowed = None if only is None else {s.strip() for s in only.split(",") if s.strip()}
        for ep in sorted(md.entry_points(group=GROUP), key=lambda e: e.name):
            if allowed is not None and ep.name not in allowed:
                continue
            if self.pm.has_plugin(ep.name) or ep.name in self.infos:
                continue
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            info = PluginInfo(ep.name, ep.value, dist, version)
            self.infos[ep.name] = info
            try:
                module = ep.load()
                self.pm.register(module, name=ep.name)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the rest
                info.error = _describe(exc)
        self._built = False

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (tests and notebooks); registries rebuild on next use."""
        name = self.pm.register(plugin, name=name)
        mod = getattr(plugin, "__name__", type(plugin).__name__)
        self.infos[name] = PluginInfo(name, mod, "(registered in process)", "")
        self._built = False
        return name

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self._built = False

    def build(self) -> None:
        """(Re)fill the registries by calling every plugin's register hooks."""
        self.load_entry_points()
        now = self.paths_now()
        if self._built and now == (self.home, self.data_root):
            return
        self.home, self.data_root = now
        for reg in self.registries.values():
            reg.clear()
        for info in self.infos.values():
            info.provides = {}
        for kind, entry in KINDS.items():
            hook = getattr(self.pm.hook, entry.hook)
            for impl in hook.get_hookimpls():
                origin = impl.plugin_name
                info = self.infos.get(origin)
                names_before = set(self.registries[kind].names())
                args = {
                    "register": functools.partial(self.registries[kind].add, origin=origin),
                    "home": self.home,
                    "data_root": self.data_root,
                }
                try:
                    impl.function(**{a: args[a] for a in impl.argnames})
                except Exception as exc:  # noqa: BLE001
                    if info is not None:
                        info.error = (info.error + "; " if info.error else "") + _describe(exc)
                    continue
                if info is not None:
                    new = sorted(set(self.registries[kind].names()) - names_before)
                    if new:
                        info.provides.setdefault(kind, []).extend(new)
        self._built = True

    def paths_now(self) -> tuple[Path, Path]:
        home = paths.home(self._home_arg)
        return home, paths.data_root(self._data_root_arg, home)

    def use_paths(self, home: str | Path | None, data_root: str | Path | None) -> None:
        """Point the plugins at other folders (registries refill on next use)."""
        if home is not None:
            self._home_arg = home
        if data_root is not None:
            self._data_root_arg = data_root

    # -- access ------------------------------------------------------------------------------
    def registry(self, kind: str) -> Registry:
        self.build()
        return self.registries[kind]

    def method(self, name: str) -> MethodSpec:
        return self.registry("method").get(name)

    def dataset(self, name: str) -> DatasetSpec:
        return self.registry("dataset").get(name)

    def metric(self, name: str) -> MetricSpec:
        return self.registry("metric").get(name)

    def segmenter(self, name: str) -> SegmenterSpec:
        return self.registry("segmenter").get(name)

    def add_commands(self, cli: Any) -> None:
        """Let plugins add commands to the ``llbench`` click group (``register_commands``)."""
        self.load_entry_points()
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the CLI
                info = self.infos.get(impl.plugin_name)
                if info is not None:
                    info.error = (info.error + "; " if info.error else "") + _describe(exc)

    def plugins(self) -> list[PluginInfo]:
        self.build()
        return sorted(self.infos.values(), key=lambda i: i.name)


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


_host: PluginHost | None = None


def get_host(home: str | Path | None = None, data_root: str | Path | None = None) -> PluginHost:
    """The process-wide plugin host, created and loaded lazily.

    ``home`` / ``data_root`` (the CLI's ``--home`` / ``--data-root``, or an API call's) are
    handed to the plugins' hooks; naming other folders than the host has makes it refill its
    registries with them.
    """
    global _host
    if _host is None:
        _host = PluginHost(home, data_root)
    elif home is not None or data_root is not None:
        _host.use_paths(home, data_root)
    return _host


def reset_host() -> None:
    """Forget loaded plugins (tests use this after changing ``sys.path`` or the environment)."""
    global _host
    _host = None
