"""Training a method on a dataset's training split, once per training key.

The training key hashes the method and version, its effective config, the training dataset and
the manifest of its training split, and the seed. A finished training's weights
(``<home>/weights/<method>-<dataset>-<key>.pt``) are reused by every later run with that key (any
test dataset); an interrupted one resumes from its checkpoint in ``<home>/train/<key>/``. A
training that waits for people (:class:`~llbench.errors.WaitingForInput`) is stored as
``waiting``. Two processes asking for one training key train once: the second waits for the
claim (:mod:`llbench.engine.claims`) and then reuses the result.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from llbench.api.datasets import Sample
from llbench.api.methods import Method, TrainableMethod, TrainContext
from llbench.engine.claims import holding
from llbench.engine.plan import RunPlan, hash_json
from llbench.engine.provenance import base_provenance
from llbench.engine.weights import Weights
from llbench.errors import DatasetError, LLBenchError, WaitingForInput
from llbench.io.hashing import sha256_file
from llbench.io.manifests import samples_manifest_hash
from llbench.progress import Progress
from llbench.store.database import Store


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Training:
    """What identifies one training and where its files go."""

    key: str
    method: str
    dataset: str
    samples: list[Sample]
    manifest: str
    weights_path: Path
    workdir: Path

    def info(self) -> dict:
        return {
            "key": self.key,
            "dataset": self.dataset,
            "train_manifest": self.manifest,
            "n_images": len(self.samples),
        }


def training_for(plan: RunPlan) -> Training:
    """The training ``plan`` needs (its key, samples and files); errors say what is missing."""
    spec, dspec, ds = plan.method, plan.training_spec, plan.training_data
    ds.prepare()
    try:
        samples = ds.samples("train")
    except DatasetError as exc:
        raise DatasetError(
            f"method {spec.name!r} trains on the training split, which dataset {dspec.name!r} "
            f"lacks here ({exc}). Place the training data, train on another dataset "
            "(--train-dataset NAME, --protocol paper), or pass --weights PATH / --weights official."
        ) from exc
    if not samples:
        raise DatasetError(f"dataset {dspec.name!r} has an empty training split")
    manifest = samples_manifest_hash(ds.root, samples, plan.home)
    key = hash_json(
        {
            "method": spec.name,
            "version": spec.version,
            "source": plan.source_hash,
            "config": plan.config,
            "dataset": dspec.name,
            "manifest": manifest,
            "seed": plan.seed,
        }
    )[:20]
    return Training(
        key,
        spec.name,
        dspec.name,
        samples,
        manifest,
        plan.home / "weights" / f"{spec.name}-{dspec.name}-{key}.pt",
        plan.home / "train" / key,
    )


def finished(store: Store, t: Training) -> Weights | None:
    """The weights of a finished training with this key, or None."""
    row = store.get_training(t.key)
    if row is None or row["status"] != "finished" or not t.weights_path.is_file():
        return None
    trained = json.loads(row["provenance"] or "{}").get("method_provenance", {})
    return Weights(
        t.weights_path,
        sha256_file(t.weights_path),
        {**t.info(), "reused": True, "method_provenance": trained},
    )


def forget(store: Store, t: Training) -> None:
    """``--force``: drop a training's checkpoint and weights so it starts over."""
    shutil.rmtree(t.workdir, ignore_errors=True)
    t.weights_path.unlink(missing_ok=True)
    store.upsert_training(t.key, method=t.method, dataset=t.dataset, status="forgotten")


def record_start(store: Store, t: Training, plan: RunPlan) -> None:
    store.upsert_training(
        t.key,
        method=t.method,
        dataset=t.dataset,
        status="running",
        config=plan.config,
        seed=plan.seed,
        provenance=base_provenance(),
        started=time.time(),
        error=None,
    )


def record_finish(store: Store, t: Training, digest: str, trained: dict) -> Weights:
    store.upsert_training(
        t.key,
        status="finished",
        weights=str(t.weights_path),
        weights_hash=digest,
        finished=time.time(),
        error=None,
        provenance={**base_provenance(), "method_provenance": trained},
    )
    return Weights(t.weights_path, digest, {**t.info(), "method_provenance": trained})


def train(plan: RunPlan, meth: Method, store: Store, force: bool, bar: Progress) -> Weights:
    """Weights of ``meth`` trained on ``plan``'s training dataset (reused when already trained)."""
    if not isinstance(meth, TrainableMethod):
        raise LLBenchError(
            f"method {plan.method.name!r} declares trains=True but is not a TrainableMethod"
        )
    t = training_for(plan)
    with holding(store, t.key):
        if force:
            forget(store, t)
        done = finished(store, t)
        if done is not None:
            meth.load_weights(t.weights_path)
            return done
        record_start(store, t, plan)
        task = bar.task(f"train {t.method} on {t.dataset}", total=None)
        ctx = TrainContext(
            dataset=plan.training_data,
            samples=t.samples,
            workdir=t.workdir,
            seed=plan.seed,
            device=plan.device,
            log=lambda step, values: store.log_training(t.key, step, values),
            progress=lambda done, total: bar.update(task, done, total),
            home=plan.home,
            data_root=plan.data_root,
        )
        try:
            seed_everything(plan.seed)
            meth.fit(ctx)
        except WaitingForInput as exc:
            store.upsert_training(t.key, status="waiting", error=str(exc))
            raise
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            store.upsert_training(t.key, status=status, error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            bar.done(task)
        meth.save_weights(t.weights_path)
        return record_finish(store, t, sha256_file(t.weights_path), meth.provenance())
