"""``llbench run``: train when needed, enhance a split, score it, store everything.

A run is identified by a key hashing what determines its outputs: method and version, effective
config, dataset and the manifest of the split, the weights, the seed and ``--limit``. Metrics are
not part of the key: asking for another metric later scores the saved images without enhancing
them again. Each image's outcome and scores are committed as soon as they exist, so an
interrupted run resumes where it stopped, and a finished run is reused unless ``force``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import socket
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llbench import paths
from llbench.api.datasets import Dataset, Sample, file_manifest, sha256_file
from llbench.api.methods import Method, TrainableMethod, TrainContext
from llbench.api.metrics import DatasetMetric, EfficiencyMetric, Metric
from llbench.api.specs import DatasetSpec, MethodSpec, MetricSpec
from llbench.config import effective_config, load_config_file
from llbench.device import describe_device, resolve_device
from llbench.engine.provenance import base_provenance
from llbench.errors import (
    ConfigError,
    DatasetError,
    ImageError,
    LLBenchError,
    MethodOutputError,
    WaitingForInput,
)
from llbench.io.images import quantize, read_image, read_mask, to_tensor, to_uint8, write_png
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
    progress: bool = True,
    host: PluginHost | None = None,
) -> RunResult:
    """Run ``method`` on ``dataset``'s ``split``; see the module docstring and ``llbench run``."""
    host = host or get_host()
    mspec = host.method(method)
    dspec = host.dataset(dataset)
    home_dir = paths.home(home)
    droot = paths.data_root(data_root, home_dir)
    store = Store(home_dir)
    dev = resolve_device(device)
    if limit is not None and limit < 1:
        raise ConfigError("--limit must be at least 1")
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")

    user_cfg = load_config_file(config) if isinstance(config, (str, Path)) else (config or {})
    cfg = effective_config(mspec.default_config, mspec.presets, preset, user_cfg)
    options: dict[str, Any] = {}
    if segmenter:
        options["segmenter"] = segmenter
    if efficiency_size:
        options["size"] = efficiency_size
    metric_specs = select_metrics(host, dspec, metrics)

    ds = dspec.build(droot)
    ds.prepare()
    samples = ds.samples(split)
    if not samples:
        raise DatasetError(f"dataset {dataset!r} has no images in its {split!r} split")
    if limit is not None:
        samples = samples[:limit]
    manifest_hash = _manifest_hash(ds, samples, home_dir)

    bar = Progress(enabled=progress)
    _seed_everything(seed)
    meth = mspec.build(cfg, dev)
    weights_path, weights_hash, training = _prepare_weights(
        meth, mspec, dspec, ds, cfg, seed, weights, force, store, home_dir, droot, dev, bar
    )

    key = _hash_json(
        {
            "method": mspec.name,
            "method_version": mspec.version,
            "config": cfg,
            "dataset": dspec.name,
            "dataset_version": dspec.version,
            "split": split,
            "manifest": manifest_hash,
            "weights": weights_hash,
            "seed": seed,
            "limit": limit,
        }
    )[:20]
    out_dir = home_dir / "runs" / mspec.name / dspec.name / key
    existing = store.get_run(key)
    wanted = [m.name for m in metric_specs]
    if force and existing is not None:
        store.delete_run(key)
        shutil.rmtree(out_dir, ignore_errors=True)
        existing = None
    if (
        existing is not None
        and existing["status"] == "finished"
        and _has_scores(store, key, wanted)
    ):
        return _result(store, key, mspec.name, dspec.name, split, out_dir, wanted, reused=True)

    provenance = {
        **base_provenance(),
        "plugin": _plugin_origin(host, "method", mspec.name),
        "dataset_plugin": _plugin_origin(host, "dataset", dspec.name),
        "device": describe_device(dev),
        "seed": seed,
        "limit": limit,
        "preset": preset,
        "manifest_hash": manifest_hash,
        "weights": str(weights_path) if weights_path else None,
        "weights_hash": weights_hash,
        "training": training,
        "method_provenance": meth.provenance(),
        "metrics": wanted,
        "options": options,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    started = time.time() if existing is None else existing["started"]
    store.start_run(
        key,
        method=mspec.name,
        dataset=dspec.name,
        split=split,
        n_images=len(samples),
        config=cfg,
        seed=seed,
        weights=str(weights_path) if weights_path else None,
        weights_hash=weights_hash,
        manifest_hash=manifest_hash,
        out_dir=str(out_dir.relative_to(home_dir)),
        provenance=provenance,
        started=started,
    )
    if weights_path is not None:
        kind = "trained-weights" if training else "weights"
        store.add_artifact(key, kind, str(weights_path), weights_hash)
    try:
        built = {s.name: s.build(dev, options) for s in metric_specs}
        _enhance_and_score(
            store,
            key,
            ds,
            samples,
            meth,
            built,
            metric_specs,
            home_dir,
            out_dir,
            batch_size,
            bar,
            f"{mspec.name} on {dspec.name}",
        )
        _dataset_level(store, key, ds, samples, meth, built, home_dir, out_dir)
        _segmentation_bounds(
            store, dspec.name, split, manifest_hash, samples, metric_specs, options, dev
        )
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.finish_run(key, status, error=f"{type(exc).__name__}: {exc}")
        raise
    failures = [(r["image"], r["error"]) for r in store.done_items(key).values() if r["error"]]
    store.finish_run(
        key,
        "finished",
        n_failed=len(failures),
        error=f"{len(failures)} image(s) failed" if failures else None,
    )
    return _result(store, key, mspec.name, dspec.name, split, out_dir, wanted, reused=False)


# -- metrics -------------------------------------------------------------------------------------
def select_metrics(
    host: PluginHost, dspec: DatasetSpec, names: Sequence[str] | None
) -> list[MetricSpec]:
    """The metrics to compute: the named ones (checked against the dataset), or every default
    metric that applies to the dataset and can run here."""
    registry = host.registry("metric")
    if names:
        chosen = [registry.get(n) for n in names]
        for spec in chosen:
            problem = _applicability(spec, dspec)
            if problem:
                raise ConfigError(
                    f"metric {spec.name!r} cannot score dataset {dspec.name!r}: {problem}"
                )
            missing = spec.available()
            if missing:
                raise ConfigError(f"metric {spec.name!r} is unavailable here: {missing}")
        return chosen
    return [
        s
        for s in registry
        if s.default
        and s.kind != "efficiency"
        and not _applicability(s, dspec)
        and s.available() is None
    ]


def _applicability(spec: MetricSpec, dspec: DatasetSpec) -> str | None:
    if "reference" in spec.needs and not dspec.paired:
        return "it needs reference images and the dataset is unpaired"
    if "masks" in spec.needs and not dspec.masks:
        return "it needs segmentation masks and the dataset has none"
    return None


def _has_scores(store: Store, key: str, wanted: Sequence[str]) -> bool:
    rows = store.query("SELECT DISTINCT metric FROM scores WHERE run_key = ?", (key,))
    return set(wanted) <= {r["metric"] for r in rows}


# -- weights and training ------------------------------------------------------------------------
def _prepare_weights(
    meth: Method,
    mspec: MethodSpec,
    dspec: DatasetSpec,
    ds: Dataset,
    cfg: dict,
    seed: int,
    weights: str | Path | None,
    force: bool,
    store: Store,
    home_dir: Path,
    data_root: Path,
    device: torch.device,
    bar: Progress,
) -> tuple[Path | None, str | None, dict | None]:
    if weights is not None:
        if not isinstance(meth, TrainableMethod):
            raise ConfigError(f"method {mspec.name!r} has no weights; drop --weights")
        if str(weights) == "official":
            path = _official_weights(mspec, home_dir)
        else:
            path = Path(weights).expanduser().resolve()
        meth.load_weights(path)
        return path, sha256_file(path), None
    if not mspec.trains:
        return None, None, None
    if not isinstance(meth, TrainableMethod):
        raise LLBenchError(
            f"method {mspec.name!r} declares trains=True but is not a TrainableMethod"
        )
    try:
        train_samples = ds.samples("train")
    except DatasetError as exc:
        raise DatasetError(
            f"method {mspec.name!r} trains on the training split, which dataset {dspec.name!r} "
            f"lacks here ({exc}). Place the training data, train on another dataset, or pass "
            "--weights PATH / --weights official."
        ) from exc
    if not train_samples:
        raise DatasetError(f"dataset {dspec.name!r} has an empty training split")
    train_manifest = _manifest_hash(ds, train_samples, home_dir)
    tkey = _hash_json(
        {
            "method": mspec.name,
            "version": mspec.version,
            "config": cfg,
            "dataset": dspec.name,
            "manifest": train_manifest,
            "seed": seed,
        }
    )[:20]
    weights_path = home_dir / "weights" / f"{mspec.name}-{dspec.name}-{tkey}.pt"
    workdir = home_dir / "train" / tkey
    row = store.get_training(tkey)
    if force:
        shutil.rmtree(workdir, ignore_errors=True)
        weights_path.unlink(missing_ok=True)
        row = None
    info = {
        "key": tkey,
        "dataset": dspec.name,
        "train_manifest": train_manifest,
        "n_images": len(train_samples),
    }
    if row is not None and row["status"] == "finished" and weights_path.is_file():
        meth.load_weights(weights_path)
        trained = json.loads(row["provenance"] or "{}").get("method_provenance", {})
        return (
            weights_path,
            sha256_file(weights_path),
            {**info, "reused": True, "method_provenance": trained},
        )
    store.upsert_training(
        tkey,
        method=mspec.name,
        dataset=dspec.name,
        status="running",
        config=cfg,
        seed=seed,
        provenance=base_provenance(),
        started=time.time(),
    )
    task = bar.task(f"train {mspec.name} on {dspec.name}", total=None)
    ctx = TrainContext(
        dataset=ds,
        samples=train_samples,
        workdir=workdir,
        seed=seed,
        device=device,
        log=lambda step, values: store.log_training(tkey, step, values),
        progress=lambda done, total: bar.update(task, done, total),
        home=home_dir,
        data_root=data_root,
    )
    try:
        _seed_everything(seed)
        meth.fit(ctx)
    except WaitingForInput as exc:
        store.upsert_training(tkey, status="waiting", error=str(exc))
        raise
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.upsert_training(tkey, status=status, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        bar.done(task)
    meth.save_weights(weights_path)
    digest = sha256_file(weights_path)
    trained = meth.provenance()
    store.upsert_training(
        tkey,
        status="finished",
        weights=str(weights_path),
        weights_hash=digest,
        finished=time.time(),
        error=None,
        provenance={**base_provenance(), "method_provenance": trained},
    )
    return weights_path, digest, {**info, "method_provenance": trained}


def _official_weights(mspec: MethodSpec, home_dir: Path) -> Path:
    ref = mspec.official_weights
    if ref is None:
        raise ConfigError(f"method {mspec.name!r} has no official released weights")
    from llbench.io.download import fetch_weights

    return fetch_weights(ref, paths.cache_dir(home_dir) / "weights" / mspec.name)


# -- the image loop ------------------------------------------------------------------------------
def _enhance_and_score(
    store: Store,
    key: str,
    ds: Dataset,
    samples: list[Sample],
    meth: Method,
    built: dict[str, Any],
    specs: list[MetricSpec],
    home_dir: Path,
    out_dir: Path,
    batch_size: int,
    bar: Progress,
    title: str,
) -> None:
    per_image = {n: m for n, m in built.items() if isinstance(m, Metric)}
    done = store.done_items(key)
    have = _scores_by_image(store, key)
    todo: list[Sample] = []
    rescore: list[Sample] = []
    for s in samples:
        row = done.get(s.key)
        if row is None or row["status"] != "ok" or not row["output"]:
            todo.append(s)
        elif (
            not set(per_image) <= have.get(s.key, set()) or not (home_dir / row["output"]).is_file()
        ):
            rescore.append(s) if (home_dir / row["output"]).is_file() else todo.append(s)
    task = bar.task(title, total=len(samples), completed=len(samples) - len(todo) - len(rescore))
    for s in rescore:  # saved output, missing metrics: score without enhancing again
        t0 = time.perf_counter()
        path = home_dir / done[s.key]["output"]
        try:
            pred, ref, low = _load_triplet(s, path)
            scores, errors = _score(per_image, pred, ref, low)
        except LLBenchError as exc:
            scores, errors = {}, [str(exc)]
        old = {
            r["metric"]: r["value"]
            for r in store.query(
                "SELECT metric, value FROM scores WHERE run_key = ? AND image = ?", (key, s.key)
            )
        }
        store.record_item(
            key,
            s.key,
            "ok",
            {**old, **scores},
            error="; ".join(errors) or None,
            output=done[s.key]["output"],
            sha256=done[s.key]["sha256"],
            seconds=time.perf_counter() - t0,
        )
        bar.advance(task)
    for batch in _batches(todo, batch_size):
        _process_batch(store, key, batch, meth, per_image, home_dir, out_dir)
        bar.advance(task, len(batch))
    bar.done(task)


def _process_batch(
    store: Store,
    key: str,
    batch: list[Sample],
    meth: Method,
    per_image: dict[str, Metric],
    home_dir: Path,
    out_dir: Path,
) -> None:
    loaded: list[tuple[Sample, torch.Tensor, torch.Tensor | None]] = []
    for s in batch:
        try:
            low = to_tensor(read_image(s.low))
            ref = to_tensor(read_image(s.high)) if s.high is not None else None
            if ref is not None and ref.shape != low.shape:
                raise ImageError(
                    f"pair {s.key!r} has mismatched sizes: {s.low} is "
                    f"{low.shape[3]}x{low.shape[2]}, {s.high} is {ref.shape[3]}x{ref.shape[2]}"
                )
            loaded.append((s, low, ref))
        except LLBenchError as exc:
            store.record_item(key, s.key, "failed", error=str(exc))
    groups: dict[tuple[int, ...], list] = {}
    for item in loaded:
        groups.setdefault(tuple(item[1].shape), []).append(item)
    for items in groups.values():
        t0 = time.perf_counter()
        lows = torch.cat([low for _, low, _ in items]).to(meth.device)
        try:
            out = _checked_enhance(meth, lows)
        except LLBenchError as exc:
            for s, _, _ in items:
                store.record_item(key, s.key, "failed", error=f"{s.low}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - a method's bug fails its items, not the run
            msg = f"{type(exc).__name__} in the method: {exc}"
            for s, _, _ in items:
                store.record_item(
                    key, s.key, "failed", error=f"{s.low}: {msg}\n{traceback.format_exc(limit=3)}"
                )
            continue
        seconds = (time.perf_counter() - t0) / len(items)
        for i, (s, low, ref) in enumerate(items):
            arr = to_uint8(out[i])
            path = out_dir / "images" / f"{s.key}.png"
            write_png(path, arr)
            pred = quantize(out[i : i + 1])
            scores, errors = _score(per_image, pred, _dev(ref, pred), _dev(low, pred))
            store.record_item(
                key,
                s.key,
                "ok",
                scores,
                error="; ".join(errors) or None,
                output=str(path.relative_to(home_dir)),
                sha256=sha256_file(path),
                seconds=seconds,
            )


def _checked_enhance(meth: Method, lows: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        out = meth.enhance(lows)
    if not isinstance(out, torch.Tensor):
        raise MethodOutputError(f"the method returned {type(out).__name__}, not a tensor")
    if out.shape != lows.shape:
        raise MethodOutputError(
            f"the method returned shape {tuple(out.shape)} for input {tuple(lows.shape)}"
        )
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).sum())
        raise MethodOutputError(f"the method returned {bad} NaN/inf values")
    return out.float()


def _score(
    metrics: dict[str, Metric],
    pred: torch.Tensor,
    ref: torch.Tensor | None,
    low: torch.Tensor | None,
) -> tuple[dict[str, float], list[str]]:
    scores: dict[str, float] = {}
    errors: list[str] = []
    for name, metric in metrics.items():
        try:
            value = float(metric(pred, ref, low).reshape(-1)[0])
        except Exception as exc:  # noqa: BLE001 - one metric failing must not lose the others
            errors.append(f"metric {name}: {type(exc).__name__}: {exc}")
            continue
        if math.isnan(value):
            errors.append(f"metric {name} returned NaN")
        scores[name] = value
    return scores, errors


def _dataset_level(
    store: Store,
    key: str,
    ds: Dataset,
    samples: list[Sample],
    meth: Method,
    built: dict[str, Any],
    home_dir: Path,
    out_dir: Path,
) -> None:
    """Split-level metrics (one confusion matrix, efficiency) from the saved outputs."""
    split_metrics = {n: m for n, m in built.items() if isinstance(m, DatasetMetric)}
    efficiency = {n: m for n, m in built.items() if isinstance(m, EfficiencyMetric)}
    values: dict[str, float] = {}
    if split_metrics:
        for m in split_metrics.values():
            m.reset()
        done = store.done_items(key)
        for s in samples:
            row = done.get(s.key)
            if row is None or not row["output"]:
                continue
            pred, ref, low = _load_triplet(s, home_dir / row["output"])
            mask = torch.from_numpy(read_mask(s.mask)).unsqueeze(0) if s.mask is not None else None
            for m in split_metrics.values():
                m.update(pred, ref, low, mask)
        values.update({n: m.compute() for n, m in split_metrics.items()})
    if efficiency:
        first = read_image(samples[0].low)
        size = (first.shape[0], first.shape[1])
        for n, m in efficiency.items():
            values[n] = m.measure(meth, size)
    if values:
        store.record_scores(key, DATASET_ROW, values)


BOUND_ROWS = {"input": "(dark input)", "reference": "(normal light)"}


def _segmentation_bounds(
    store: Store,
    dataset: str,
    split: str,
    manifest_hash: str,
    samples: list[Sample],
    specs: list[MetricSpec],
    options: dict[str, Any],
    device: torch.device,
) -> None:
    """Store the task metrics of the un-enhanced dark inputs and of the normal-light images as
    two extra table rows, so a report shows the gap an enhancement method closes (the
    downstream protocol of SLLEN Sec. IV and SGZ Sec. 4.3)."""
    names = [s.name for s in specs if s.kind == "task" and "segmenter" in s.needs]
    if not names or any(s.mask is None for s in samples):
        return
    from llbench.metrics.task import DEFAULT_SEGMENTER, reference_scores

    segmenter = options.get("segmenter") or DEFAULT_SEGMENTER
    keys = {
        which: _hash_json(
            {
                "bound": which,
                "dataset": dataset,
                "split": split,
                "manifest": manifest_hash,
                "segmenter": segmenter,
            }
        )[:20]
        for which in BOUND_ROWS
    }
    if all(_has_scores(store, k, names) for k in keys.values()):
        return
    bounds = reference_scores(samples, segmenter, device)
    for which, values in bounds.items():
        key = keys[which]
        store.start_run(
            key,
            method=BOUND_ROWS[which],
            dataset=dataset,
            split=split,
            n_images=len(samples),
            manifest_hash=manifest_hash,
            provenance={**base_provenance(), "segmenter": segmenter, "bound": which},
            started=time.time(),
        )
        store.record_scores(key, DATASET_ROW, {n: values[n] for n in names if n in values})
        store.finish_run(key, "finished")


def _load_triplet(s: Sample, output: Path):
    pred = to_tensor(read_image(output))
    ref = to_tensor(read_image(s.high)) if s.high is not None else None
    low = to_tensor(read_image(s.low))
    return pred, ref, low


def _scores_by_image(store: Store, key: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in store.query("SELECT image, metric FROM scores WHERE run_key = ?", (key,)):
        out.setdefault(r["image"], set()).add(r["metric"])
    return out


def _batches(samples: list[Sample], size: int):
    for i in range(0, len(samples), size):
        yield samples[i : i + size]


def _dev(t: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if t is None else t.to(like.device)


# -- results -------------------------------------------------------------------------------------
def _result(
    store: Store,
    key: str,
    method: str,
    dataset: str,
    split: str,
    out_dir: Path,
    wanted: Sequence[str],
    reused: bool,
) -> RunResult:
    row = store.get_run(key)
    items = store.done_items(key)
    failures = [(r["image"], r["error"]) for r in items.values() if r["error"]]
    means: dict[str, float] = {}
    for r in store.query(
        "SELECT metric, AVG(value) AS v FROM scores WHERE run_key = ? AND image != ? "
        "GROUP BY metric",
        (key, DATASET_ROW),
    ):
        means[r["metric"]] = r["v"]
    for r in store.query(
        "SELECT metric, value FROM scores WHERE run_key = ? AND image = ?", (key, DATASET_ROW)
    ):
        means[r["metric"]] = r["value"]
    ordered = {m: means[m] for m in wanted if m in means}
    return RunResult(
        key,
        method,
        dataset,
        split,
        row["status"],
        int(row["n_images"] or 0),
        len(failures),
        out_dir,
        ordered,
        failures,
        reused,
    )


# -- helpers -------------------------------------------------------------------------------------
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _hash_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _manifest_hash(ds: Dataset, samples: list[Sample], home_dir: Path) -> str:
    """Hash of the samples' keys and file contents (file hashes cached in the home)."""
    files = [p for s in samples for p in (s.low, s.high, s.mask) if p is not None]
    cache = (
        home_dir
        / "cache"
        / "hashes"
        / f"{hashlib.sha256(str(ds.root).encode()).hexdigest()[:16]}.json"
    )
    manifest = file_manifest(ds.root, files, cache)
    return _hash_json({"keys": [s.key for s in samples], "files": manifest})


def _plugin_origin(host: PluginHost, kind: str, name: str) -> dict[str, str]:
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
