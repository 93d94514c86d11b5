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
from dataclasses import dataclass, field
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
from llbench.store.database import Store


@dataclass
class ItemRecord:
    """One image's outcome: what the driver stores in ``items`` and ``scores``."""

    image: str
    status: str
    scores: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    output: str | None = None
    sha256: str | None = None
    seconds: float | None = None
    merge_scores: bool = False  # rescoring keeps the metrics it did not recompute


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
    contexts: dict[str, str] = field(default_factory=dict)  # of split-level metrics

    @property
    def per_image(self) -> dict[str, Metric]:
        return {n: m for n, m in self.metrics.items() if isinstance(m, Metric)}


def execute(job: Job, bar: Progress, title: str) -> None:
    """Enhance and score every sample not done yet, then the split-level metrics."""
    enhance_and_score(job, bar, title)
    score_split(job)


def pending(job: Job, metric_names: list[str] | None = None) -> tuple[list[Sample], list[Sample]]:
    """Samples to enhance, and samples whose saved output only lacks some of ``metric_names``
    (default: the job's per-image metrics)."""
    wanted = set(job.per_image if metric_names is None else metric_names)
    done = job.store.done_items(job.key)
    have = job.store.metrics_by_image(job.key)
    todo: list[Sample] = []
    again: list[Sample] = []
    for s in job.samples:
        row = done.get(s.key)
        if row is None or row["status"] != "ok" or not row["output"]:
            todo.append(s)
        elif not (job.home / row["output"]).is_file():
            todo.append(s)
        elif not wanted <= have.get(s.key, set()):
            again.append(s)
    return todo, again


def enhance_and_score(job: Job, bar: Progress, title: str) -> None:
    todo, again = pending(job)
    done = job.store.done_items(job.key)
    task = bar.task(
        title, total=len(job.samples), completed=len(job.samples) - len(todo) - len(again)
    )
    for s in again:  # saved output, missing metrics: score without enhancing again
        row = done[s.key]
        record(
            job.store, job.key, [rescore(job.per_image, s, row["output"], row["sha256"], job.home)]
        )
        bar.advance(task)
    for batch in batches(todo, job.batch_size):
        process_batch(job, batch)
        bar.advance(task, len(batch))
    bar.done(task)


def process_batch(job: Job, batch: list[Sample]) -> None:
    """Compute one batch and record it (the in-process path; executors record shards)."""
    record(
        job.store, job.key, compute_batch(job.method, job.per_image, batch, job.out_dir, job.home)
    )


def record(store: Store, key: str, records: list[ItemRecord]) -> None:
    """Commit item records (the driver's side of a worker's computation)."""
    for r in records:
        scores = r.scores
        if r.merge_scores:
            scores = {**store.image_scores(key, r.image), **r.scores}
        store.record_item(
            key,
            r.image,
            r.status,
            scores,
            error=r.error,
            output=r.output,
            sha256=r.sha256,
            seconds=r.seconds,
        )


def compute_batch(
    meth: Method,
    metrics: dict[str, Metric],
    batch: list[Sample],
    out_dir: Path,
    home: Path,
) -> list[ItemRecord]:
    """Read, enhance (images of one size together), save and score ``batch``."""
    records: list[ItemRecord] = []
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
            records.append(ItemRecord(s.key, "failed", error=str(exc)))
    groups: dict[tuple[int, ...], list] = {}
    for item in loaded:
        groups.setdefault(tuple(item[1].shape), []).append(item)
    for items in groups.values():
        t0 = time.perf_counter()
        lows = torch.cat([low for _, low, _ in items]).to(meth.device)
        try:
            out = checked_enhance(meth, lows)
        except LLBenchError as exc:
            records += [ItemRecord(s.key, "failed", error=f"{s.low}: {exc}") for s, _, _ in items]
            continue
        except Exception as exc:  # noqa: BLE001 - a method's bug fails its items, not the run
            msg = f"{type(exc).__name__} in the method: {exc}\n{traceback.format_exc(limit=3)}"
            records += [ItemRecord(s.key, "failed", error=f"{s.low}: {msg}") for s, _, _ in items]
            continue
        seconds = (time.perf_counter() - t0) / len(items)
        for i, (s, low, ref) in enumerate(items):
            path = Path(out_dir) / "images" / f"{s.key}.png"
            write_png(path, to_uint8(out[i]))
            pred = quantize(out[i : i + 1])
            scores, errors = score_images(metrics, pred, _on(ref, pred), _on(low, pred))
            records.append(
                ItemRecord(
                    s.key,
                    "ok",
                    scores,
                    error="; ".join(errors) or None,
                    output=str(path.relative_to(home)),
                    sha256=sha256_file(path),
                    seconds=seconds,
                )
            )
    return records


def rescore(
    metrics: dict[str, Metric], s: Sample, output: str, sha256: str | None, home: Path
) -> ItemRecord:
    """Score a saved output again (for metrics asked for after the run) without enhancing."""
    t0 = time.perf_counter()
    try:
        pred, ref, low = load_triplet(s, Path(home) / output)
        scores, errors = score_images(metrics, pred, ref, low)
    except LLBenchError as exc:
        scores, errors = {}, [str(exc)]
    return ItemRecord(
        s.key,
        "ok",
        scores,
        error="; ".join(errors) or None,
        output=output,
        sha256=sha256,
        seconds=time.perf_counter() - t0,
        merge_scores=True,
    )


#: How far outside [0, 1] a method's float output may stray: half an 8-bit level, so every
#: accepted value rounds to a level in 0..255 without clamping (float rounding noise passes).
OUTPUT_TOLERANCE = 0.5 / 255.0


def checked_enhance(meth: Method, lows: torch.Tensor) -> torch.Tensor:
    """``meth.enhance`` under inference mode; wrong types, dtypes, shapes, NaN/inf and values
    outside ``[0, 1]`` (beyond :data:`OUTPUT_TOLERANCE`) are errors naming the method.

    A uint8 tensor (levels 0..255) is refused rather than rescaled: the contract is a float image
    in ``[0, 1]``, and guessing a scale would hide a method's bug.
    """
    name = getattr(meth, "name", None) or type(meth).__name__
    with torch.inference_mode():
        out = meth.enhance(lows)
    if not isinstance(out, torch.Tensor):
        raise MethodOutputError(f"method {name} returned {type(out).__name__}, not a tensor")
    if out.shape != lows.shape:
        raise MethodOutputError(
            f"method {name} returned shape {tuple(out.shape)} for input {tuple(lows.shape)}"
        )
    if not out.is_floating_point():
        lo, hi = (out.amin().item(), out.amax().item()) if out.numel() else (0, 0)
        raise MethodOutputError(
            f"method {name} returned a {out.dtype} tensor (values {lo}..{hi}); methods must "
            "return float images in [0, 1] (divide 8-bit levels by 255)"
        )
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).sum())
        raise MethodOutputError(f"method {name} returned {bad} NaN/inf values")
    if out.numel():
        lo, hi = out.amin().item(), out.amax().item()
        if lo < -OUTPUT_TOLERANCE or hi > 1.0 + OUTPUT_TOLERANCE:
            raise MethodOutputError(
                f"method {name} returned values in [{lo:.4g}, {hi:.4g}], outside [0, 1]: "
                "methods must return images in [0, 1]"
            )
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
        job.store.record_split_scores(job.key, values, job.contexts)


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
