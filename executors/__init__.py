"""Built-in executors (plugin kind ``executors``): where worker functions run.

* ``local``: a process pool on this machine (``--workers N``; each worker gets
  ``cores // N`` torch threads so workers do not oversubscribe the cores); one worker runs the
  tasks in this process;
* ``submitit``: Slurm through submitit (partition, time, GPUs, array parallelism from
  ``--executor-option`` or the config's ``[executor]`` table; preempted jobs requeue);
* ``ray``: an existing Ray cluster (``address=...``) or a local one started for the run.
"""

from __future__ import annotations

from llbench.api import ExecutorSpec, hookimpl


def _missing(module: str, pip: str) -> str | None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return f"needs the Python package {pip!r} (pip install {pip})"
    return None


def _local(options):
    from llbench.executors.local import LocalExecutor

    return LocalExecutor(options)


def _submitit(options):
    from llbench.executors.slurm import SubmititExecutor

    return SubmititExecutor(options)


def _ray(options):
    from llbench.executors.ray_cluster import RayExecutor

    return RayExecutor(options)


@hookimpl
def register_executors(register):
    register(
        ExecutorSpec(
            name="local",
            build=_local,
            summary="process pool on this machine (--workers N, torch threads split between them)",
        )
    )
    register(
        ExecutorSpec(
            name="submitit",
            build=_submitit,
            summary="Slurm through submitit (partition, time_min, gpus, array_parallelism)",
            available=lambda: _missing("submitit", "submitit"),
        )
    )
    register(
        ExecutorSpec(
            name="ray",
            build=_ray,
            summary="a Ray cluster (address=auto|HOST:PORT) or a local one started for the run",
            available=lambda: _missing("ray", "ray"),
        )
    )
