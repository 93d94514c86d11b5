"""The executor contract: where worker functions run (plugin kind ``executors``).

An executor runs module-level functions of :mod:`llbench.engine.worker` on picklable arguments
and hands their results back; it never sees the database (the driver records results). Built-in:
``local`` (a process pool on this machine), ``submitit`` (Slurm), ``ray`` (a Ray cluster). A
third party registers another (Dask, Kubernetes) through ``register_executors``::

    @hookimpl
    def register_executors(register):
        register(ExecutorSpec(name="dask", build=lambda options: DaskExecutor(options),
                              summary="a Dask cluster"))

where ``DaskExecutor`` subclasses :class:`Executor` and implements :meth:`Executor.submit`
returning a :class:`Handle`.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llbench.errors import ConfigError


class Handle(abc.ABC):
    """A submitted task: poll :meth:`done`, then :meth:`result` returns or raises."""

    @abc.abstractmethod
    def done(self) -> bool: ...

    @abc.abstractmethod
    def result(self) -> Any: ...

    def cancel(self) -> None:  # noqa: B027 - optional
        """Give up on the task (best effort)."""


class Executor(abc.ABC):
    """Runs worker functions somewhere.

    ``workers`` is how many tasks run at once; ``local_files`` says whether workers see this
    machine's files (then :meth:`check_reachable` has nothing to check). Options come from the
    command line (``--workers``, ``--executor-option KEY=VALUE``) and the ``[executor]`` table of
    a config file.
    """

    name: str = ""
    local_files: bool = True
    poll_seconds: float = 0.05

    def __init__(self, options: Mapping[str, Any] | None = None):
        self.options = dict(options or {})
        self.workers = int(self.options.get("workers", 1))
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")

    @abc.abstractmethod
    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Handle:
        """Start ``fn(arg)``; ``fn`` is a module-level function, ``arg`` picklable."""

    def check_reachable(self, paths: Iterable[Path]) -> None:
        """Raise :class:`ConfigError` naming any path workers cannot read (before submitting).

        Executors whose workers run on other machines check that paths lie on a filesystem
        shared with them (see their ``shared_roots`` option)."""
        return None

    def describe(self) -> dict[str, Any]:
        """For the run's provenance."""
        return {"executor": self.name, "workers": self.workers}

    def close(self) -> None:  # noqa: B027 - optional
        """Release workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_any(
    handles: Sequence[Handle], poll: float = 0.05, timeout: float | None = None
) -> list[int]:
    """Indices of the handles that are done, waiting until at least one is (or ``timeout``)."""
    start = time.monotonic()
    while True:
        ready = [i for i, h in enumerate(handles) if h.done()]
        if ready or not handles:
            return ready
        if timeout is not None and time.monotonic() - start > timeout:
            return []
        time.sleep(poll)


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``["partition=gpu", "gpus=1"]`` -> ``{"partition": "gpu", "gpus": 1}`` (ints, floats and
    true/false converted)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"executor option {pair!r} must look like KEY=VALUE")
        key, value = pair.split("=", 1)
        out[key.strip()] = _convert(value.strip())
    return out


def _convert(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
