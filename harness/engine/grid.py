"""Benchmark grids: methods x test datasets x seeds, each method trained once, fanned out to an
executor (a local process pool, Slurm through submitit, Ray, or a third party's).

The driver (this module) plans every cell, trains what needs training (one task per training
key, shared by every cell that uses those weights), cuts each cell's pending images into shards
and submits them as :func:`llbench.engine.worker.run_shard` tasks. Workers compute and return
records; only the driver writes the database, as results arrive. A shard whose worker dies is
retried (``retries`` times) and then reported as failed; a failing cell never stops the others.
Killing the driver loses nothing finished: running the same command again reuses finished cells
and images and redoes only the shards that were in flight.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llbench import paths
from llbench.api.executors import Executor, Handle, wait_any
from llbench.engine.claims import HOLDER, holding
from llbench.engine.contexts import split_contexts
from llbench.engine.execute import Job, pending, record, score_split
from llbench.engine.plan import RunPlan, plan_run
from llbench.engine.references import record_references
from llbench.engine.runner import (
    RunResult,
    is_complete,
    run_provenance,
    start_run_row,
    summarise,
)
from llbench.engine.training import (
    Training,
    finished,
    forget,
    record_finish,
    record_start,
    training_for,
)
from llbench.engine.weights import Weights, load_weights, resolve_weights
from llbench.engine.worker import ShardTask, TrainTask, run_shard, run_training
from llbench.errors import ConfigError, LLBenchError
from llbench.pluginhost.host import PluginHost, get_host
from llbench.progress import Progress
from llbench.store.database import Store


@dataclass
class Cell:
    """One (method, test dataset, seed) of a grid and what happened to it."""

    method: str
    dataset: str
    seed: int
    plan: RunPlan | None = None
    training: Training | None = None
    weights: Weights | None = None
    key: str | None = None
    status: str = "planned"
    error: str | None = None
    to_enhance: int = 0
    to_rescore: int = 0
    result: RunResult | None = None
    shards_left: int = 0

    @property
    def label(self) -> str:
        return f"{self.method} on {self.dataset} (seed {self.seed})"


@dataclass
class GridResult:
    cells: list[Cell]
    executor: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(
            c.status in ("finished", "reused") and c.result and c.result.ok for c in self.cells
        )

    def failed(self) -> list[Cell]:
        return [c for c in self.cells if c.status == "failed"]


def run_grid(
    methods: Sequence[str],
    datasets: Sequence[str],
    seeds: Sequence[int] = (0,),
    *,
    executor: str = "local",
    workers: int = 1,
    executor_options: dict[str, Any] | None = None,
    shard_size: int | None = None,
    retries: int = 2,
    dry_run: bool = False,
    force: bool = False,
    progress: bool = True,
    home: str | Path | None = None,
    data_root: str | Path | None = None,
    host: PluginHost | None = None,
    **run_options: Any,
) -> GridResult:
    """Plan and run every (method, dataset, seed); ``run_options`` as :func:`llbench.run`
    (split, metrics, config, preset, device, weights, limit, batch_size, segmenter,
    efficiency_size, train_dataset, protocol). With ``dry_run`` nothing is computed: the cells
    say what would train, what is reused and how many images remain.

    In a grid of several methods, ``preset`` and ``train_dataset`` apply to the methods they
    can: a method without that preset runs its defaults and a method that does not train ignores
    ``train_dataset`` (one method alone still gets the error), so ``-m zero-dce,lime --preset
    quick`` shortens Zero-DCE's training and runs LIME as it is."""
    if not methods or not datasets or not seeds:
        raise ConfigError("a grid needs at least one method, one dataset and one seed")
    home_dir = paths.home(home)
    droot = paths.data_root(data_root, home_dir)
    host = host or get_host(home_dir, droot)
    store = Store(home_dir)
    cells = [Cell(m, d, int(s)) for m in methods for d in datasets for s in seeds]
    for cell in cells:
        try:
            options = (
                _applicable(host, cell.method, run_options) if len(methods) > 1 else run_options
            )
            cell.plan = plan_run(
                cell.method, cell.dataset, seed=cell.seed, home=home_dir, data_root=droot,
                host=host, **options,
            )  # fmt: skip
            if cell.plan.method.trains and cell.plan.weights is None:
                cell.training = training_for(cell.plan)
        except LLBenchError as exc:
            cell.status, cell.error = "failed", str(exc)
    _look_up(cells, store, force)
    if dry_run:
        return GridResult(cells)
    spec = host.registry("executor").get(executor)
    missing = spec.available()
    if missing:
        raise ConfigError(f"executor {executor!r} is unavailable here: {missing}")
    options = {"workers": workers, "home": str(home_dir), **(executor_options or {})}
    with spec.build(options) as ex:
        ex.check_reachable([home_dir, droot])
        bar = Progress(enabled=progress)
        _train_all(cells, ex, store, force, retries, bar)
        _evaluate_all(cells, ex, store, host, force, retries, shard_size, bar)
        return GridResult(cells, ex.describe())


# -- planning ----------------------------------------------------------------------------------
def _applicable(host: PluginHost, method: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without the preset or training dataset ``method`` cannot use (see
    :func:`run_grid`); unknown method names are left for :func:`plan_run` to report."""
    if method not in host.registry("method"):
        return options
    spec = host.method(method)
    out = dict(options)
    if out.get("preset") and out["preset"] not in (spec.presets or {}):
        out.pop("preset")
    if out.get("train_dataset") and not spec.trains:
        out.pop("train_dataset")
    return out


def _look_up(cells: list[Cell], store: Store, force: bool) -> None:
    """Fill in what is already done: finished trainings, finished runs, pending images."""
    for cell in cells:
        if cell.plan is None:
            continue
        if cell.training is not None:
            cell.weights = None if force else finished(store, cell.training)
            if cell.weights is None:
                cell.status = "needs training"
                cell.to_enhance = len(cell.plan.samples)
                continue
        elif cell.plan.weights is not None:
            cell.weights = resolve_weights(cell.plan.method, cell.plan.weights, cell.plan.home)
        else:
            cell.weights = Weights()
        _look_up_run(cell, store, force)


def _look_up_run(cell: Cell, store: Store, force: bool) -> None:
    plan = cell.plan
    assert plan is not None and cell.weights is not None
    cell.key = plan.key(cell.weights.sha256)
    existing = store.get_run(cell.key)
    if not force and is_complete(store, existing, plan.metric_names, split_contexts(plan)):
        cell.status = "reused"
        cell.result = summarise(store, plan, cell.key, reused=True)
        return
    todo, again = (
        pending(_job(cell, store), per_image_names(plan)) if not force else (plan.samples, [])
    )
    cell.to_enhance, cell.to_rescore = len(todo), len(again)
    cell.status = "to run"


def per_image_names(plan: RunPlan) -> list[str]:
    """The plan's metrics scored per image (task and efficiency metrics are split-level)."""
    return [s.name for s in plan.metrics if s.kind not in ("task", "efficiency")]


def _job(cell: Cell, store: Store, method: Any = None, metrics: dict | None = None) -> Job:
    plan = cell.plan
    assert plan is not None and cell.key is not None
    return Job(
        cell.key, store, method, metrics or {}, plan.samples, plan.home, plan.out_dir(cell.key),
        plan.batch_size, split_contexts(plan),
    )  # fmt: skip


# -- training ----------------------------------------------------------------------------------
def _train_all(
    cells: list[Cell], ex: Executor, store: Store, force: bool, retries: int, bar: Progress
) -> None:
    todo: dict[str, tuple[Training, RunPlan, list[Cell]]] = {}
    for cell in cells:
        if cell.status == "needs training":
            assert cell.training is not None and cell.plan is not None
            entry = todo.setdefault(cell.training.key, (cell.training, cell.plan, []))
            entry[2].append(cell)
    if not todo:
        return
    task = bar.task(f"train {len(todo)} model(s)", total=len(todo))
    handles: dict[str, tuple[Handle, int]] = {}
    for tkey, (t, plan, _) in todo.items():
        if force:
            forget(store, t)
        record_start(store, t, plan)
        handles[tkey] = (ex.submit(run_training, _train_task(t, plan, ex)), 0)
    while handles:
        keys = list(handles)
        for i in wait_any([handles[k][0] for k in keys], poll=ex.poll_seconds):
            tkey = keys[i]
            handle, tries = handles.pop(tkey)
            t, plan, users = todo[tkey]
            try:
                outcome = handle.result()
            except Exception as exc:  # noqa: BLE001 - a failed training fails its cells
                if tries < retries and not isinstance(exc, LLBenchError):
                    handles[tkey] = (ex.submit(run_training, _train_task(t, plan, ex)), tries + 1)
                    continue
                msg = f"training failed: {type(exc).__name__}: {exc}"
                store.upsert_training(tkey, status="failed", error=msg)
                for cell in users:
                    cell.status, cell.error = "failed", msg
                bar.advance(task)
                continue
            for step, values in outcome.log:
                store.log_training(tkey, step, values)
            weights = record_finish(store, t, outcome.sha256, outcome.provenance)
            for cell in users:
                cell.weights = weights
                _look_up_run(cell, store, force)
            bar.advance(task)
    bar.done(task)


def _train_task(t: Training, plan: RunPlan, ex: Executor) -> TrainTask:
    return TrainTask(
        train_key=t.key,
        method=plan.method.name,
        config=plan.config,
        dataset=plan.training_spec.name,
        seed=plan.seed,
        device=str(plan.device),
        home=str(plan.home),
        data_root=str(plan.data_root),
        weights_path=str(t.weights_path),
        torch_threads=int(getattr(ex, "threads", 0)),
    )


# -- evaluation --------------------------------------------------------------------------------
def _evaluate_all(
    cells: list[Cell],
    ex: Executor,
    store: Store,
    host: PluginHost,
    force: bool,
    retries: int,
    shard_size: int | None,
    bar: Progress,
) -> None:
    active = [c for c in cells if c.status == "to run"]
    rows = {id(c): bar.task(c.label, total=len(c.plan.samples)) for c in active}  # type: ignore[union-attr]
    handles: list[tuple[Handle, ShardTask, Cell, int]] = []
    for cell in list(active):
        try:
            _start(cell, store, host, force)
        except LLBenchError as exc:
            cell.status, cell.error = "failed", str(exc)
            active.remove(cell)
            bar.done(rows[id(cell)])
            continue
        done = len(cell.plan.samples) - cell.to_enhance - cell.to_rescore  # type: ignore[union-attr]
        bar.update(rows[id(cell)], done)
        for shard in _shards(cell, store, ex, shard_size):
            handles.append((ex.submit(run_shard, shard), shard, cell, 0))
            cell.shards_left += 1
        if cell.shards_left == 0:
            _finish(cell, store, host, bar, rows)
    last_beat = time.monotonic()
    while handles:
        for i in sorted(wait_any([h for h, *_ in handles], poll=ex.poll_seconds), reverse=True):
            handle, shard, cell, tries = handles.pop(i)
            try:
                records = handle.result()
            except Exception as exc:  # noqa: BLE001 - retried, then reported per cell
                if tries < retries:
                    handles.append((ex.submit(run_shard, shard), shard, cell, tries + 1))
                    continue
                cell.error = f"a shard of {len(shard.samples)} image(s) failed {tries + 1} times: {type(exc).__name__}: {exc}"
                records = []
            record(store, cell.key, records)  # type: ignore[arg-type]
            bar.advance(rows[id(cell)], len(records))
            cell.shards_left -= 1
            if cell.shards_left == 0:
                _finish(cell, store, host, bar, rows)
        if time.monotonic() - last_beat > 30:
            for cell in active:
                if cell.shards_left:
                    store.heartbeat(cell.key, HOLDER)  # type: ignore[arg-type]
            last_beat = time.monotonic()


def _start(cell: Cell, store: Store, host: PluginHost, force: bool) -> None:
    plan, key = cell.plan, cell.key
    assert plan is not None and key is not None and cell.weights is not None
    other = store.claim(key, HOLDER, *_me())
    if other is not None:
        raise ConfigError(
            f"{cell.label}: run {key} is being computed by process {other['pid']} on "
            f"{other['host']}; run the grid again when it is done"
        )
    existing = store.get_run(key)
    if force and existing is not None:
        store.delete_run(key)
        existing = None
    # the driver does not build the method: workers do (the weights identify it)
    provenance = run_provenance(plan, {"built_by": "worker"}, cell.weights, host)
    start_run_row(store, plan, key, cell.weights, provenance, existing)


def _me() -> tuple[str, int]:
    import os
    import socket

    return socket.gethostname(), os.getpid()


def _shards(cell: Cell, store: Store, ex: Executor, shard_size: int | None) -> list[ShardTask]:
    plan = cell.plan
    assert plan is not None and cell.key is not None and cell.weights is not None
    per_image = per_image_names(plan)
    todo, again = pending(_job(cell, store), per_image)
    done = store.done_items(cell.key)
    items = [(s, None) for s in todo] + [(s, done[s.key]["output"]) for s in again]
    if not items:
        return []
    size = shard_size or max(1, math.ceil(len(items) / (ex.workers * 2)))
    shards = []
    for i in range(0, len(items), size):
        chunk = items[i : i + size]
        shards.append(
            ShardTask(
                run_key=cell.key,
                method=plan.method.name,
                config=plan.config,
                weights=str(cell.weights.path) if cell.weights.path else None,
                device=str(plan.device),
                metrics=tuple(per_image),
                options=dict(plan.options),
                samples=tuple(s for s, _ in chunk),
                home=str(plan.home),
                data_root=str(plan.data_root),
                out_dir=str(plan.out_dir(cell.key)),
                batch_size=plan.batch_size,
                rescore=tuple((s.key, out) for s, out in chunk if out is not None),
                torch_threads=int(getattr(ex, "threads", 0)),
            )
        )
    return shards


def _finish(cell: Cell, store: Store, host: PluginHost, bar: Progress, rows: dict) -> None:
    """Split-level metrics and reference rows in the driver, then the run's final status."""
    plan, key = cell.plan, cell.key
    assert plan is not None and key is not None
    try:
        split_level = [s for s in plan.metrics if s.kind in ("task", "efficiency")]
        if split_level:
            built = {s.name: s.build(plan.device, plan.options) for s in split_level}
            method = None
            if any(s.kind == "efficiency" for s in split_level):
                method = plan.method.build(plan.config, plan.device)
                if cell.weights and cell.weights.path:
                    load_weights(method, plan.method, cell.weights.path, plan.home)
            score_split(_job(cell, store, method, built))
            record_references(plan, store, plan.device)
    except Exception as exc:  # noqa: BLE001 - reported on the cell
        cell.error = (cell.error + "; " if cell.error else "") + f"{type(exc).__name__}: {exc}"
    failures = [r for r in store.done_items(key).values() if r["error"]]
    if cell.error:
        store.finish_run(key, "failed", error=cell.error)
        cell.status = "failed"
    else:
        store.finish_run(
            key,
            "finished",
            n_failed=len(failures),
            error=f"{len(failures)} image(s) failed" if failures else None,
        )
        cell.status = "finished"
    store.release(key, HOLDER)
    cell.result = summarise(store, plan, key, reused=False)
    bar.done(rows[id(cell)])


def plan_rows(result: GridResult) -> list[dict[str, Any]]:
    """One row per cell for ``--dry-run`` and the summary: what trains, what is reused."""
    rows = []
    for c in result.cells:
        training = "-"
        if c.training is not None:
            training = (
                f"{c.training.dataset} ({c.training.key[:8]}, "
                + ("reused" if c.weights is not None else f"trains on {len(c.training.samples)}")
                + ")"
            )
        elif c.plan is not None and c.plan.weights is not None:
            training = f"weights {c.plan.weights}"
        rows.append(
            {
                "method": c.method,
                "dataset": c.dataset,
                "seed": c.seed,
                "status": c.status,
                "training": training,
                "images": len(c.plan.samples) if c.plan else 0,
                "to enhance": c.to_enhance,
                "to rescore": c.to_rescore,
                "key": c.key or "-",
                "error": c.error or "",
            }
        )
    return rows


__all__ = ["Cell", "GridResult", "holding", "plan_rows", "run_grid"]
