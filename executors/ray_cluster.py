"""The ``ray`` executor: tasks on a Ray cluster.

Options: ``address`` (``auto`` or ``HOST:PORT`` of an existing cluster; absent: a local cluster
is started for the run and shut down after it, listening on loopback only), ``cpus`` per task
(default 1), ``gpus`` per task (default 0), ``shared_roots`` (as for ``submitit``: folders every
node mounts; checked before submitting). Ray's usage statistics are switched off.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from llbench.api.executors import Executor, Handle
from llbench.errors import ConfigError


def _call(fn: Callable[[Any], Any], arg: Any) -> Any:
    return fn(arg)


class _RefHandle(Handle):
    def __init__(self, ray: Any, ref: Any):
        self.ray, self.ref = ray, ref

    def done(self) -> bool:
        ready, _ = self.ray.wait([self.ref], timeout=0)
        return bool(ready)

    def result(self) -> Any:
        return self.ray.get(self.ref)

    def cancel(self) -> None:
        self.ray.cancel(self.ref, force=True)


class RayExecutor(Executor):
    name = "ray"
    poll_seconds = 0.1

    def __init__(self, options: Mapping[str, Any] | None = None):
        super().__init__(options)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        import ray

        self.ray = ray
        address = self.options.get("address")
        self.started = False
        if not ray.is_initialized():
            if address:
                ray.init(address=str(address), log_to_driver=False)
            else:
                ray.init(
                    num_cpus=self.workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    _node_ip_address="127.0.0.1",
                    _temp_dir=tempfile.mkdtemp(prefix="llbench-ray-"),
                )
                self.started = True
        self.local_files = not address
        self._remote = ray.remote(
            num_cpus=float(self.options.get("cpus", 1)),
            num_gpus=float(self.options.get("gpus", 0)),
            max_retries=0,  # the driver retries shards itself (bounded, reported)
        )(_call)

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Handle:
        return _RefHandle(self.ray, self._remote.remote(fn, arg))

    def check_reachable(self, paths: Iterable[Path]) -> None:
        roots = [
            Path(r).resolve() for r in str(self.options.get("shared_roots", "")).split(",") if r
        ]
        if not roots or self.local_files:
            return
        for path in paths:
            p = Path(path).resolve()
            if not any(p == r or r in p.parents for r in roots):
                raise ConfigError(f"{p} is not under a folder every Ray node shares ({roots})")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "address": self.options.get("address") or "local"}

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False
