"""``llbench run``: plan, obtain weights (training when needed), execute, record, summarise.

A run is identified by a key hashing what determines its outputs (:meth:`RunPlan.key`): method
and version, effective config, dataset and the manifest of the split, the weights, the seed and
``--limit``. Metrics are not part of the key: asking for another metric later scores the saved
images without enhancing them again. Each image's outcome and scores are committed as soon as
they exist, so an interrupted run resumes where it stopped, and a finished run is reused unless
``force``.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llbench.api.methods import Method
from llbench.device import describe_device
from llbench.engine.claims import holding
from llbench.engine.contexts import split_contexts
from llbench.engine.execute import Job, execute
from llbench.engine.plan import RunPlan, plan_run
from llbench.engine.provenance import base_provenance
from llbench.engine.references import record_references
from llbench.engine.training import seed_everything, train
from llbench.engine.weights import Weights, load_weights
from llbench.pluginhost.host import PluginHost, get_host
from llbench.progress import Progress
from llbench.store.database import DATASET_ROW, Store


@dataclass
class RunResult:
    """What :func:`run` returns: the run's key, status, counts, outputs and mean scores."""

    key: str
    method: str
    dataset: str
    split: str
    status: str
    n_images: int
    n_failed: int
    out_dir: Path
    scores: dict[str, float] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)
    reused: bool = False

    @property
    def ok(self) -> bool:
        return self.n_failed == 0 and self.status == "finished"


def run(
    method: str,
    dataset: str,
    *,
    split: str = "test",
    metrics: Sequence[str] | None = None,
    config: str | Path | dict[str, Any] | None = None,
    preset: str | None = None,
    seed: int = 0,
    device: str = "auto",
    weights: str | Path | None = None,
    limit: int | None = None,
    force: bool = False,
    batch_size: int = 1,
    segmenter: str | None = None,
    efficiency_size: str | None = None,
    home: str | Path | None = None,
    data_root: str | Path | None = None,
    train_dataset: str | None = None,
    protocol: str | None = None,
    wait: bool = True,
    progress: bool = True,
    host: PluginHost | None = None,
) -> RunResult:
    """Run ``method`` on ``dataset``'s ``split``; see the module docstring and ``llbench run``.

    ``train_dataset`` / ``protocol`` choose where a method that trains is trained (see
    :func:`~llbench.engine.plan.plan_run`). Another process already computing the same run is
    waited for (``wait=False``: an error naming it).
    """
    host = host or get_host(home, data_root)
    plan = plan_run(
        method,
        dataset,
        split=split,
        metrics=metrics,
        config=config,
        preset=preset,
        seed=seed,
        device=device,
        weights=weights,
        limit=limit,
        batch_size=batch_size,
        segmenter=segmenter,
        efficiency_size=efficiency_size,
        home=home,
        data_root=data_root,
        train_dataset=train_dataset,
        protocol=protocol,
        host=host,
    )
    store = Store(plan.home)
    bar = Progress(enabled=progress)
    seed_everything(plan.seed)
    meth = plan.method.build(plan.config, plan.device)
    got = obtain_weights(plan, meth, store, force, bar)
    key = plan.key(got.sha256)
    with holding(store, key, wait=wait, on_wait=lambda other: _tell_waiting(key, other)):
        return _execute(plan, meth, got, key, store, force, bar, host)


def _tell_waiting(key: str, other: dict) -> None:
    from llbench.cli.common import err_console

    err_console.print(
        f"run {key} is being computed by process {other['pid']} on {other['host']}; "
        "waiting for it to finish",
        markup=False,
    )


def _execute(
    plan: RunPlan,
    meth: Method,
    got: Weights,
    key: str,
    store: Store,
    force: bool,
    bar: Progress,
    host: PluginHost,
) -> RunResult:
    out_dir = plan.out_dir(key)
    existing = store.get_run(key)
    kept: list[tuple[str, str, float | None]] = []
    hashes: dict[str, str | None] = {}
    if force and existing is not None:
        kept, hashes = prepare_force(plan, store, key, host)
        shutil.rmtree(out_dir, ignore_errors=True)
        existing = store.get_run(key)
    contexts = split_contexts(plan)
    if not force and is_complete(store, existing, plan.metric_names, contexts):
        return summarise(store, plan, key, reused=True)
    if existing is not None and not force:
        _say_stale(store, key, contexts)
    start_run_row(
        store, plan, key, got, run_provenance(plan, meth.provenance(), got, host), existing
    )
    try:
        built = {s.name: s.build(plan.device, plan.options) for s in plan.metrics}
        job = Job(
            key, store, meth, built, plan.samples, plan.home, out_dir, plan.batch_size, contexts
        )
        execute(job, bar, f"{plan.method.name} on {plan.dataset.name}")
        record_references(plan, store, plan.device)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.finish_run(key, status, error=f"{type(exc).__name__}: {exc}")
        raise
    if kept:
        restore_after_force(store, key, kept, hashes)
    failures = [r for r in store.done_items(key).values() if r["error"]]
    store.finish_run(
        key,
        "finished",
        n_failed=len(failures),
        error=f"{len(failures)} image(s) failed" if failures else None,
    )
    return summarise(store, plan, key, reused=False)


def _say_stale(store: Store, key: str, contexts: Mapping[str, str]) -> None:
    """Tell the user when stored split-level scores are recomputed because they were made in
    another context (another segmenter, its weights, or other options)."""
    stale = sorted(
        (set(contexts) & store.scored_metrics(key)) - store.scored_metrics(key, contexts)
    )
    if stale:
        from llbench.cli.common import err_console

        err_console.print(
            f"{', '.join(stale)}: the stored values were made with another segmenter, other "
            "segmenter weights or other options; scoring the saved outputs again",
            markup=False,
        )


def prepare_force(
    plan: RunPlan, store: Store, key: str, host: PluginHost
) -> tuple[list[tuple[str, str, float | None]], dict[str, str | None]]:
    """``--force`` on a stored run: every image is enhanced again and scored with the asked
    metrics and with every other metric the run has stored that can run here, so no stored
    score is deleted without being recomputed. Scores of metrics that cannot run here are
    returned, to be put back for images whose output came out identical
    (:func:`restore_after_force`)."""
    hashes = {r["image"]: r["sha256"] for r in store.done_items(key).values()}
    stored = store.score_rows(key)
    registry = host.registry("metric")
    asked = set(plan.metric_names)
    for name in sorted({r["metric"] for r in stored} - asked):
        if name in registry and registry.get(name).available() is None:
            plan.metrics.append(registry.get(name))
    recomputed = set(plan.metric_names)
    kept = [(r["image"], r["metric"], r["value"]) for r in stored if r["metric"] not in recomputed]
    store.forget_outputs(key)
    return kept, hashes


def restore_after_force(
    store: Store,
    key: str,
    kept: list[tuple[str, str, float | None]],
    hashes: dict[str, str | None],
) -> None:
    """Put back the scores :func:`prepare_force` could not recompute, for images whose output
    has the same sha256 as before (split-level ones when every output is unchanged)."""
    now = {r["image"]: r["sha256"] for r in store.done_items(key).values()}
    same = {img for img, h in hashes.items() if h is not None and now.get(img) == h}
    all_same = bool(hashes) and same == set(hashes) == set(now)
    back = [(img, m, v) for img, m, v in kept if img in same or (img == DATASET_ROW and all_same)]
    store.restore_scores(key, back)


def is_complete(
    store: Store, row: Any, metrics: Sequence[str], contexts: Mapping[str, str] | None = None
) -> bool:
    """A stored run (``row``, or None) that finished and has every metric asked for, the
    split-level ones in the ``contexts`` asked for (:func:`~llbench.engine.contexts.split_contexts`):
    reused."""
    return (
        row is not None
        and row["status"] == "finished"
        and set(metrics) <= store.scored_metrics(row["key"], contexts)
    )


def start_run_row(
    store: Store,
    plan: RunPlan,
    key: str,
    got: Weights,
    provenance: dict[str, Any],
    existing: Any = None,
) -> None:
    """Create (or mark running again) the run's row, and record the weights it uses."""
    store.start_run(
        key,
        method=plan.method.name,
        dataset=plan.dataset.name,
        split=plan.split,
        n_images=len(plan.samples),
        config=plan.config,
        seed=plan.seed,
        weights=str(got.path) if got.path else None,
        weights_hash=got.sha256,
        manifest_hash=plan.manifest_hash,
        out_dir=str(plan.out_dir(key).relative_to(plan.home)),
        provenance=provenance,
        started=time.time() if existing is None else existing["started"],
    )
    if got.path is not None:
        kind = "trained-weights" if got.training else "weights"
        store.add_artifact(key, kind, str(got.path), got.sha256)


def obtain_weights(
    plan: RunPlan, meth: Method, store: Store, force: bool, bar: Progress
) -> Weights:
    """The run's weights: ``--weights`` when given, else a (reused) training, else none."""
    if plan.weights is not None:
        return load_weights(meth, plan.method, plan.weights, plan.home)
    if not plan.method.trains:
        return Weights()
    return train(plan, meth, store, force, bar)


def run_provenance(
    plan: RunPlan, method_provenance: dict[str, Any], got: Weights, host: PluginHost
) -> dict[str, Any]:
    """Everything besides the key that determines or explains the run's numbers."""
    return {
        **base_provenance(),
        "plugin": plugin_origin(host, "method", plan.method.name),
        "dataset_plugin": plugin_origin(host, "dataset", plan.dataset.name),
        "device": describe_device(plan.device),
        "seed": plan.seed,
        "limit": plan.limit,
        "preset": plan.preset,
        "manifest_hash": plan.manifest_hash,
        "weights": str(got.path) if got.path else None,
        "weights_hash": got.sha256,
        "training": got.training,
        "method_provenance": method_provenance,
        "metrics": plan.metric_names,
        "options": plan.options,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def plugin_origin(host: PluginHost, kind: str, name: str) -> dict[str, str]:
    origin = host.registry(kind).origin(name)
    info = host.infos.get(origin)
    if info is None:
        return {"plugin": origin}
    return {
        "plugin": origin,
        "module": info.module,
        "distribution": info.distribution,
        "version": info.version,
    }


def summarise(store: Store, plan: RunPlan, key: str, reused: bool) -> RunResult:
    row = store.get_run(key)
    failures = [(r["image"], r["error"]) for r in store.done_items(key).values() if r["error"]]
    means = store.summary_scores(key)
    return RunResult(
        key,
        plan.method.name,
        plan.dataset.name,
        plan.split,
        row["status"],
        int(row["n_images"] or 0),
        len(failures),
        plan.out_dir(key),
        {m: means[m] for m in plan.metric_names if m in means},
        failures,
        reused,
    )
