"""Worker functions: pure computations on plain inputs that return records, never touching the
database, so the same function runs in this process, a process pool, a Slurm job or a Ray task.
The computations on built objects live in :mod:`llbench.engine.execute`
(:func:`~llbench.engine.execute.compute_batch`, :func:`~llbench.engine.execute.rescore`).

* :func:`run_shard` takes a picklable :class:`ShardTask` (names, config, weights file, samples),
  builds what it needs once per worker process, and returns :class:`ItemRecord` s;
* :func:`run_training` takes a :class:`TrainTask`, trains and saves the weights file, and
  returns the losses it logged, for the driver to record.

Only the driver writes SQLite (:func:`llbench.engine.execute.record`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from llbench.api.datasets import Sample
from llbench.api.methods import Method
from llbench.api.metrics import Metric
from llbench.engine.execute import ItemRecord, compute_batch, rescore
from llbench.io.hashing import sha256_file


@dataclass(frozen=True)
class ShardTask:
    """A picklable description of some images of one run to enhance (or rescore) and score."""

    run_key: str
    method: str
    config: dict[str, Any]
    weights: str | None
    device: str
    metrics: tuple[str, ...]
    options: dict[str, Any]
    samples: tuple[Sample, ...]
    home: str
    data_root: str
    out_dir: str
    batch_size: int = 1
    rescore: tuple[tuple[str, str], ...] = ()  # (sample key, saved output relative to home)
    torch_threads: int = 0


@dataclass(frozen=True)
class TrainTask:
    """A picklable description of one training (see :mod:`llbench.engine.training`)."""

    train_key: str
    method: str
    config: dict[str, Any]
    dataset: str
    seed: int
    device: str
    home: str
    data_root: str
    weights_path: str
    torch_threads: int = 0


@dataclass
class TrainOutcome:
    weights_path: str
    sha256: str
    provenance: dict[str, Any]
    log: list[tuple[int, dict[str, float]]]


# -- tasks for executors ------------------------------------------------------------------------
_BUILT: dict[Any, Any] = {}


def _set_threads(n: int) -> None:
    if n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _host(home: str, data_root: str):
    from llbench.pluginhost.host import get_host

    return get_host(home, data_root)


def _built_method(task: ShardTask) -> Method:
    import json

    key = ("method", task.method, json.dumps(task.config, sort_keys=True, default=str),
           task.weights, task.device)  # fmt: skip
    meth = _BUILT.get(key)
    if meth is None:
        from llbench.device import resolve_device

        spec = _host(task.home, task.data_root).method(task.method)
        meth = spec.build(task.config, resolve_device(task.device))
        if task.weights:
            meth.load_weights(task.weights)  # type: ignore[attr-defined]
        _BUILT.clear()  # one method per worker process at a time keeps memory flat
        _BUILT[key] = meth
    return meth


def _built_metrics(task: ShardTask) -> dict[str, Metric]:
    from llbench.device import resolve_device

    host = _host(task.home, task.data_root)
    key = ("metrics", task.metrics, repr(sorted(task.options.items())), task.device)
    built = _BUILT.get(key)
    if built is None:
        dev = resolve_device(task.device)
        built = {n: host.metric(n).build(dev, task.options) for n in task.metrics}
        _BUILT[key] = built
    return {n: m for n, m in built.items() if isinstance(m, Metric)}


def run_shard(task: ShardTask) -> list[ItemRecord]:
    """Enhance and score (or rescore) a shard of one run; returns a record per image."""
    _set_threads(task.torch_threads)
    metrics = _built_metrics(task)
    home = Path(task.home)
    records: list[ItemRecord] = []
    by_key = {s.key: s for s in task.samples}
    for key, output in task.rescore:
        records.append(rescore(metrics, by_key[key], output, None, home))
    todo = [s for s in task.samples if s.key not in dict(task.rescore)]
    if todo:
        meth = _built_method(task)
        for i in range(0, len(todo), task.batch_size):
            records += compute_batch(
                meth, metrics, todo[i : i + task.batch_size], Path(task.out_dir), home
            )
    return records


def run_training(task: TrainTask) -> TrainOutcome:
    """Train one method on one dataset's training split and save its weights (a worker task:
    the losses come back in the outcome; the checkpoint lives in ``<home>/train/<key>/``)."""
    from llbench.api.methods import TrainContext
    from llbench.device import resolve_device
    from llbench.engine.training import seed_everything

    _set_threads(task.torch_threads)
    host = _host(task.home, task.data_root)
    spec = host.method(task.method)
    dev = resolve_device(task.device)
    ds = host.dataset(task.dataset).build(Path(task.data_root))
    ds.prepare()
    log: list[tuple[int, dict[str, float]]] = []
    seed_everything(task.seed)
    meth = spec.build(task.config, dev)
    ctx = TrainContext(
        dataset=ds,
        samples=ds.samples("train"),
        workdir=Path(task.home) / "train" / task.train_key,
        seed=task.seed,
        device=dev,
        log=lambda step, values: log.append((int(step), dict(values))),
        home=Path(task.home),
        data_root=Path(task.data_root),
    )
    seed_everything(task.seed)
    meth.fit(ctx)  # type: ignore[attr-defined]
    meth.save_weights(task.weights_path)  # type: ignore[attr-defined]
    return TrainOutcome(
        task.weights_path, sha256_file(Path(task.weights_path)), meth.provenance(), log
    )


def worker_info() -> dict[str, Any]:
    """Where a task ran (for provenance and tests)."""
    import socket

    return {"host": socket.gethostname(), "pid": os.getpid(), "threads": torch.get_num_threads()}
