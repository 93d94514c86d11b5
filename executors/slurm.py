"""The ``submitit`` executor: Slurm jobs through submitit.

Options (``--executor-option KEY=VALUE`` or the config's ``[executor]`` table): ``partition``,
``time_min`` (default 60), ``gpus`` (per task, default 0), ``cpus`` (per task, default 2),
``mem_gb``, ``array_parallelism`` (how many jobs run at once, default ``workers``), ``cluster``
(``slurm``, or ``local``/``debug`` to run submitit's local modes), ``folder`` (job logs, default
``<home>/slurm``), ``shared_roots`` (comma-separated folders the compute nodes mount; the llbench
home and data root must lie under one of them, checked before submitting).

Each task runs as a :class:`submitit.helpers.Checkpointable`, so a preempted job is requeued
with the same arguments; shards are idempotent (outputs are rewritten, records returned), so a
requeued or retried shard never duplicates anything. A cancelled or failed job raises from
``result()`` (``UncompletedJobError`` with accounting), and the driver retries or reports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from llbench.api.executors import Executor, Handle
from llbench.errors import ConfigError

NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm")


def _call(fn: Callable[[Any], Any], arg: Any) -> Any:
    return fn(arg)


class _JobHandle(Handle):
    def __init__(self, job: Any):
        self.job = job

    def done(self) -> bool:
        return bool(self.job.done())

    def result(self) -> Any:
        return self.job.result()

    def cancel(self) -> None:
        self.job.cancel(check=False)


class SubmititExecutor(Executor):
    name = "submitit"
    local_files = False
    poll_seconds = 0.5

    def __init__(self, options: Mapping[str, Any] | None = None):
        super().__init__(options)
        import submitit

        opts = self.options
        home = Path(opts.get("home", "."))
        folder = Path(opts.get("folder") or home / "slurm") / time.strftime("%Y%m%d-%H%M%S")
        cluster = opts.get("cluster", "slurm")
        self._executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        params: dict[str, Any] = {
            "timeout_min": int(opts.get("time_min", 60)),
            "cpus_per_task": int(opts.get("cpus", 2)),
        }
        if cluster == "slurm":
            params["slurm_array_parallelism"] = int(opts.get("array_parallelism", self.workers))
            if opts.get("partition"):
                params["slurm_partition"] = str(opts["partition"])
            if int(opts.get("gpus", 0)):
                params["gpus_per_node"] = int(opts["gpus"])
            if opts.get("mem_gb"):
                params["mem_gb"] = float(opts["mem_gb"])
        self._executor.update_parameters(**params)
        self._task = _checkpointable()
        self.folder = folder

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Handle:
        return _JobHandle(self._executor.submit(self._task, fn, arg))

    def check_reachable(self, paths: Iterable[Path]) -> None:
        """Compute nodes must see the llbench home and data root. With ``shared_roots`` every
        path must lie under one of them; without it, paths under node-local folders (``/tmp``,
        ``/var/tmp``, ``/dev/shm``) are refused, since other nodes cannot read them."""
        roots = [
            Path(r).resolve() for r in str(self.options.get("shared_roots", "")).split(",") if r
        ]
        for path in paths:
            p = Path(path).resolve()
            if roots:
                if not any(p == r or r in p.parents for r in roots):
                    raise ConfigError(
                        f"{p} is not under a folder the compute nodes share "
                        f"({', '.join(map(str, roots))}); put the llbench home and data there, "
                        "or name their folder in --executor-option shared_roots=..."
                    )
            elif self.options.get("cluster", "slurm") == "slurm" and any(
                p == Path(d) or Path(d) in p.parents for d in NODE_LOCAL
            ):
                raise ConfigError(
                    f"{p} is in a node-local folder, which Slurm's compute nodes cannot read: "
                    "move the llbench home and data to a shared filesystem, or, if this folder "
                    "is shared, say so with --executor-option shared_roots=FOLDER"
                )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "folder": str(self.folder), **{
            k: self.options[k] for k in ("partition", "gpus", "time_min") if k in self.options
        }}  # fmt: skip


def _checkpointable():
    import submitit

    class RequeueableTask(submitit.helpers.Checkpointable):
        """Runs ``fn(arg)``; on preemption submitit requeues it with the same arguments."""

        def __call__(self, fn: Callable[[Any], Any], arg: Any) -> Any:
            return _call(fn, arg)

    return RequeueableTask()
