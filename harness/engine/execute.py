"""Executing a planned run over objects: enhance each image, save it, score it, record it.

A :class:`Job` holds the objects a run needs (the built method and metrics, the samples, where
outputs go, the store that records them). Each image's outcome and scores are committed as soon
as they exist, so an interrupted run resumes where it stopped; images whose output is saved but
which lack a metric are scored again without enhancing them. A failure (unreadable file,
mismatched pair, NaN or wrongly shaped output, a metric error) fails that image only.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from llbench.api.datasets import Sample
from llbench.api.methods import Method
from llbench.api.metrics import DatasetMetric, EfficiencyMetric, Metric
from llbench.errors import ImageError, LLBenchError, MethodOutputError
from llbench.io.hashing import sha256_file
from llbench.io.images import quantize, read_image, read_mask, to_tensor, to_uint8, write_png
from llbench.progress import Progress
from llbench.store.database import DATASET_ROW, Store


@dataclass
class Job:
    """The objects one run executes with."""

    key: str
    store: Store
    method: Method
    metrics: dict[str, Any]
    samples: list[Sample]
    home: Path
    out_dir: Path
    batch_size: int = 1

    @property
    def per_image(self) -> dict[str, Metric]:
        return {n: m for n, m in self.metrics.items() if isinstance(m, Metric)}


def execute(job: Job, bar: Progress, title: str) -> None:
    """Enhance and score every sample not done yet, then the split-level metrics."""
    enhance_and_score(job, bar, title)
    score_split(job)


def enhance_and_score(job: Job, bar: Progress, title: str) -> None:
    per_image = job.per_image
    done = job.store.done_items(job.key)
    have = job.store.metrics_by_image(job.key)
    todo: list[Sample] = []
    rescore: list[Sample] = []
    for s in job.samples:
        row = done.get(s.key)
        if row is None or row["status"] != "ok" or not row["output"]:
            todo.append(s)
        elif not (job.home / row["output"]).is_file():
            todo.append(s)
        elif not set(per_image) <= have.get(s.key, set()):
            rescore.append(s)
    task = bar.task(
        title, total=len(job.samples), completed=len(job.samples) - len(todo) - len(rescore)
    )
    for s in rescore:  # saved output, missing metrics: score without enhancing again
        t0 = time.perf_counter()
        row = done[s.key]
        try:
            pred, ref, low = load_triplet(s, job.home / row["output"])
            scores, errors = score_images(per_image, pred, ref, low)
        except LLBenchError as exc:
            scores, errors = {}, [str(exc)]
        old = job.store.image_scores(job.key, s.key)
        job.store.record_item(
            job.key,
            s.key,
            "ok",
            {**old, **scores},
            error="; ".join(errors) or None,
            output=row["output"],
            sha256=row["sha256"],
            seconds=time.perf_counter() - t0,
        )
        bar.advance(task)
    for batch in batches(todo, job.batch_size):
        process_batch(job, batch)
        bar.advance(task, len(batch))
    bar.done(task)


def process_batch(job: Job, batch: list[Sample]) -> None:
    """Read, enhance (images of one size together), save and score one batch of samples."""
    store, key = job.store, job.key
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
    per_image = job.per_image
    for items in groups.values():
        t0 = time.perf_counter()
        lows = torch.cat([low for _, low, _ in items]).to(job.method.device)
        try:
            out = checked_enhance(job.method, lows)
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
            path = job.out_dir / "images" / f"{s.key}.png"
            write_png(path, to_uint8(out[i]))
            pred = quantize(out[i : i + 1])
            scores, errors = score_images(per_image, pred, _on(ref, pred), _on(low, pred))
            store.record_item(
                key,
                s.key,
                "ok",
                scores,
                error="; ".join(errors) or None,
                output=str(path.relative_to(job.home)),
                sha256=sha256_file(path),
                seconds=seconds,
            )


def checked_enhance(meth: Method, lows: torch.Tensor) -> torch.Tensor:
    """``meth.enhance`` under inference mode; wrong types, shapes and NaN/inf are errors."""
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


def score_images(
    metrics: dict[str, Metric],
    pred: torch.Tensor,
    ref: torch.Tensor | None,
    low: torch.Tensor | None,
) -> tuple[dict[str, float], list[str]]:
    """Each metric's value for one image; a failing metric is an error string, not a crash."""
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


def score_split(job: Job) -> None:
    """Split-level metrics (one confusion matrix, efficiency) from the saved outputs."""
    split_metrics = {n: m for n, m in job.metrics.items() if isinstance(m, DatasetMetric)}
    efficiency = {n: m for n, m in job.metrics.items() if isinstance(m, EfficiencyMetric)}
    values: dict[str, float] = {}
    if split_metrics:
        for m in split_metrics.values():
            m.reset()
        done = job.store.done_items(job.key)
        for s in job.samples:
            row = done.get(s.key)
            if row is None or not row["output"]:
                continue
            pred, ref, low = load_triplet(s, job.home / row["output"])
            mask = torch.from_numpy(read_mask(s.mask)).unsqueeze(0) if s.mask is not None else None
            for m in split_metrics.values():
                m.update(pred, ref, low, mask)
        values.update({n: m.compute() for n, m in split_metrics.items()})
    if efficiency:
        first = read_image(job.samples[0].low)
        size = (first.shape[0], first.shape[1])
        for n, m in efficiency.items():
            values[n] = m.measure(job.method, size)
    if values:
        job.store.record_scores(job.key, DATASET_ROW, values)


def load_triplet(s: Sample, output: Path):
    pred = to_tensor(read_image(output))
    ref = to_tensor(read_image(s.high)) if s.high is not None else None
    low = to_tensor(read_image(s.low))
    return pred, ref, low


def batches(samples: list[Sample], size: int) -> Iterator[list[Sample]]:
    for i in range(0, len(samples), size):
        yield samples[i : i + size]


def _on(t: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if t is None else t.to(like.device)
